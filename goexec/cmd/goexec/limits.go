package main

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/rs/zerolog"
)

// runtimeLimits are the Go runtime limits 'goexec serve' runs under; the
// Spark executor sets them from spark.gocaffe.goexec.memoryLimit and
// spark.gocaffe.goexec.threads.
type runtimeLimits struct {
	memoryLimit int64
	threads     int
}

func (l *runtimeLimits) register(fs *flag.FlagSet) {
	fs.Int64Var(&l.memoryLimit, "memory-limit", 0, "soft memory limit in bytes (debug.SetMemoryLimit); 0 keeps Go's (GOMEMLIMIT, else none)")
	fs.IntVar(&l.threads, "threads", 0, "threads to compute with (GOMAXPROCS); 0 keeps Go's default")
}

// check returns one message per bad limit.
func (l *runtimeLimits) check() []string {
	var p []string
	if l.memoryLimit < 0 {
		p = append(p, fmt.Sprintf("-memory-limit %d: must be 0 or more bytes", l.memoryLimit))
	}
	if l.threads < 0 {
		p = append(p, fmt.Sprintf("-threads %d: must be 0 or more", l.threads))
	}
	return p
}

// apply sets the limits that are non-zero and returns a function that
// restores the previous ones (serve runs inside tests' processes too).
func (l runtimeLimits) apply() (restore func()) {
	prevMem, prevProcs := int64(-1), 0
	if l.memoryLimit > 0 {
		prevMem = debug.SetMemoryLimit(l.memoryLimit)
	}
	if l.threads > 0 {
		prevProcs = runtime.GOMAXPROCS(l.threads)
	}
	return func() {
		if prevMem >= 0 {
			debug.SetMemoryLimit(prevMem)
		}
		if prevProcs > 0 {
			runtime.GOMAXPROCS(prevProcs)
		}
	}
}

// log records the limits in force (the memory limit in bytes, math.MaxInt64
// when none, and GOMAXPROCS): at info level when a flag set one, else at
// debug level.
func (l runtimeLimits) log(log zerolog.Logger) {
	ev := log.Debug()
	if l.memoryLimit > 0 || l.threads > 0 {
		ev = log.Info()
	}
	ev.Int64("memory_limit", debug.SetMemoryLimit(-1)).Int("gomaxprocs", runtime.GOMAXPROCS(0)).Msg("runtime limits")
}
