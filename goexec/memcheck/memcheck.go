// Package memcheck compares the memory a net needs, estimated before
// anything is allocated, with the memory goexec may use: its Go memory
// limit (spark.gocaffe.goexec.memoryLimit), its cgroup's memory.max and the
// machine's MemAvailable. A net that cannot fit is one clear error instead
// of the Go runtime's fatal "out of memory" and a goroutine dump.
package memcheck

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/gocaffe/gocaffe/caffe/network"
)

// Budget is the memory a process may use and what sets it.
type Budget struct {
	Bytes  int64  // math.MaxInt64 when nothing limits it
	Source string // "Go memory limit", "cgroup memory.max", "MemAvailable"
}

// Sources of a Budget; tests replace them.
type Sources struct {
	GoLimit   func() int64 // debug.SetMemoryLimit(-1)
	CgroupMax string       // path of the cgroup v2 memory.max file
	MemInfo   string       // path of /proc/meminfo
}

// System reads the real limits of this process.
func System() Sources {
	return Sources{GoLimit: func() int64 { return debug.SetMemoryLimit(-1) },
		CgroupMax: "/sys/fs/cgroup/memory.max", MemInfo: "/proc/meminfo"}
}

// Budget returns the smallest of the limits that are set. Unreadable files
// count as no limit.
func (s Sources) Budget() Budget {
	b := Budget{Bytes: math.MaxInt64}
	take := func(v int64, src string) {
		if v > 0 && v < b.Bytes {
			b = Budget{Bytes: v, Source: src}
		}
	}
	if s.GoLimit != nil {
		if v := s.GoLimit(); v != math.MaxInt64 {
			take(v, "Go memory limit")
		}
	}
	if data, err := os.ReadFile(s.CgroupMax); err == nil {
		if t := strings.TrimSpace(string(data)); t != "max" {
			if v, err := strconv.ParseInt(t, 10, 64); err == nil {
				take(v, "cgroup memory.max")
			}
		}
	}
	if f, err := os.Open(s.MemInfo); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
				fs := strings.Fields(rest)
				if len(fs) >= 1 {
					if kb, err := strconv.ParseInt(fs[0], 10, 64); err == nil {
						take(kb*1024, "MemAvailable")
					}
				}
			}
		}
	}
	return b
}

// Error says a net needs more memory than the process may use.
type Error struct {
	What    string // "train net of lenet_solver.prototxt"
	Need    int64
	Params  int64 // of Need, the parameters' bytes (with gradients and history), which no batch size changes
	Budget  Budget
	Batch   int
	Largest []network.BlobSize
}

func (e *Error) Error() string {
	var big []string
	for _, b := range e.Largest {
		big = append(big, fmt.Sprintf("%s %s (%s)", b.Name, shapeText(b.Shape), Bytes(4*b.Values)))
	}
	hint := "lower batch_size"
	if e.Params > e.Budget.Bytes {
		hint = fmt.Sprintf("the parameters alone need %s with their gradients and update history: no batch_size fits, the net must be smaller", Bytes(e.Params))
	}
	return fmt.Sprintf("%s needs about %s (batch %d) but this process may use %s (%s); largest blobs: %s; %s",
		e.What, Bytes(e.Need), e.Batch, Bytes(e.Budget.Bytes), e.Budget.Source, strings.Join(big, ", "), hint)
}

// Check returns an *Error when need bytes (of which params bytes are the
// parameters', whatever the batch) exceed the budget.
func Check(what string, need, params int64, batch int, largest []network.BlobSize, b Budget) error {
	if need <= b.Bytes {
		return nil
	}
	return &Error{What: what, Need: need, Params: params, Budget: b, Batch: batch, Largest: largest}
}

// Bytes formats a byte count with a binary unit ("1.5 GiB").
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, units := float64(n), []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := -1
	for v >= unit && i < len(units)-1 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

func shapeText(s []int) string {
	p := make([]string, len(s))
	for i, d := range s {
		p[i] = strconv.Itoa(d)
	}
	return "[" + strings.Join(p, "×") + "]"
}
