package cpu

import (
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// SpinEnv names the variable that sets the persistent worker pool's
// polling time in microseconds (default 200; 0 turns the pool off):
// GOMAXPROCS-1 worker goroutines that, after each parallel loop, wait that
// long for the next one by polling before they block (as OpenMP runtimes
// do). A training step runs 20–40 parallel loops; without the pool each
// starts its goroutines afresh, and on idle cores every start waits for
// the scheduler to wake a parked thread. On the 2-vCPU development VM the
// pool made a LeNet b64 step 12 % and a CIFAR-10 quick b100 step 5 %
// faster at the same CPU time (BENCHMARKS.md).
const SpinEnv = "GOCAFFE_CPU_SPIN_US"

// defaultSpin is the polling time without SpinEnv.
const defaultSpin = 200 * time.Microsecond

// spinFor is how long pool workers poll for the next loop, in
// nanoseconds; 0 disables the pool. Atomic so that tests may change it.
var spinFor atomic.Int64

func init() {
	spinFor.Store(int64(spinSetting(os.Getenv(SpinEnv))))
}

// spinSetting parses SpinEnv's value: microseconds, at most one second;
// empty or unparsable gives defaultSpin, 0 or less turns the pool off.
func spinSetting(v string) time.Duration {
	us, err := strconv.Atoi(v)
	switch {
	case err != nil:
		return defaultSpin
	case us <= 0:
		return 0
	}
	return time.Duration(min(us, 1_000_000)) * time.Microsecond
}

// poolJob is one parallel loop handed to the pool: run(w) for each w in
// [1, workers) on the pool's workers (the caller runs w = 0).
type poolJob struct {
	run     func(w int)
	workers int
	pending atomic.Int64 // pool participants not yet done
}

// workerPool is the persistent pool (see SpinEnv). One loop at a time
// owns it (mu.TryLock); a loop that finds it busy (a nested or concurrent
// loop) starts goroutines as without the pool.
type workerPool struct {
	mu       sync.Mutex
	cur      atomic.Pointer[poolJob]
	size     int             // workers started (indices 1..size), under mu
	wake     []chan struct{} // per worker, buffered 1
	sleeping []*atomic.Bool  // per worker: blocked on wake
}

var pool workerPool

// runPool runs run(w) for w in [0, workers) on the pool, the caller taking
// w = 0, and reports false (running nothing) when the pool is off or busy.
func runPool(workers int, run func(w int)) bool {
	if spinFor.Load() == 0 || !pool.mu.TryLock() {
		return false
	}
	defer pool.mu.Unlock()
	pool.grow(workers - 1)
	j := &poolJob{run: run, workers: workers}
	j.pending.Store(int64(workers - 1))
	pool.cur.Store(j)
	for i := 1; i < workers; i++ {
		if pool.sleeping[i].Swap(false) {
			select {
			case pool.wake[i] <- struct{}{}:
			default:
			}
		}
	}
	run(0)
	for spins := 0; j.pending.Load() != 0; spins++ {
		if spins&255 == 255 {
			runtime.Gosched()
		}
	}
	return true
}

// grow starts workers up to index n (under mu).
func (p *workerPool) grow(n int) {
	if p.size == 0 {
		p.wake = append(p.wake, nil)
		p.sleeping = append(p.sleeping, nil)
	}
	for p.size < n {
		p.size++
		i := p.size
		p.wake = append(p.wake, make(chan struct{}, 1))
		p.sleeping = append(p.sleeping, new(atomic.Bool))
		go p.worker(i, p.cur.Load(), p.wake[i], p.sleeping[i])
	}
}

// worker i runs its share of every loop published after last: it polls
// for a new loop for spinFor, then blocks until a loop that includes it
// wakes it.
func (p *workerPool) worker(i int, last *poolJob, wake chan struct{}, sleeping *atomic.Bool) {
	for {
		j := p.cur.Load()
		if j == last {
			j = p.await(last, wake, sleeping)
		}
		last = j
		if i < j.workers {
			j.run(i)
			j.pending.Add(-1)
		}
	}
}

// await returns the next loop after last, polling, then blocking.
func (p *workerPool) await(last *poolJob, wake chan struct{}, sleeping *atomic.Bool) *poolJob {
	start := time.Now()
	for spins := 0; ; spins++ {
		if j := p.cur.Load(); j != last {
			return j
		}
		if spins&63 != 63 {
			continue
		}
		if time.Since(start) < time.Duration(spinFor.Load()) {
			runtime.Gosched()
			continue
		}
		// Block: announce it, then look once more, so that a loop
		// published in between is not missed (its caller either saw
		// sleeping and sends, or published before this load).
		sleeping.Store(true)
		if j := p.cur.Load(); j != last {
			sleeping.Store(false)
			return j
		}
		<-wake
		start = time.Now()
	}
}
