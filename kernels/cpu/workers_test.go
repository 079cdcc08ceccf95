package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWorkerPool runs ParallelDynamic and ParallelN on the persistent pool
// (GOCAFFE_CPU_SPIN_US) with polling long enough to catch every loop and
// short enough that workers block between loops, at 2 to 32 workers, from
// several goroutines at once (all but one fall back to fresh goroutines)
// and nested in another loop: every index exactly once, worker indices in
// range and never shared by two goroutines at the same time.
func TestWorkerPool(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	defer spinFor.Store(spinFor.Load())
	check := func(t *testing.T, workers, n, grain int, static bool) {
		seen := make([]int32, n)
		busy := make([]atomic.Int32, workers)
		fn := func(w, lo, hi int) {
			if w < 0 || w >= workers {
				t.Errorf("worker %d of %d", w, workers)
				return
			}
			if busy[w].Add(1) != 1 {
				t.Errorf("worker index %d used by two goroutines at once", w)
			}
			for i := lo; i < hi; i++ {
				atomic.AddInt32(&seen[i], 1)
			}
			busy[w].Add(-1)
		}
		if static {
			ParallelN(workers, n, fn)
		} else {
			ParallelDynamic(workers, n, grain, fn)
		}
		for i, c := range seen {
			if c != 1 {
				t.Fatalf("workers %d n %d: index %d visited %d times", workers, n, i, c)
			}
		}
	}
	for _, spin := range []time.Duration{time.Millisecond, time.Microsecond} {
		spinFor.Store(int64(spin))
		for _, procs := range []int{2, 8, 32} {
			runtime.GOMAXPROCS(procs)
			for rep := 0; rep < 20; rep++ {
				check(t, procs, 1000, 7, false)
				check(t, procs, 100, 0, true)
				check(t, min(3, procs), 50, 1, false)
				if rep%5 == 0 {
					time.Sleep(200 * time.Microsecond) // let short-spin workers block
				}
			}
			var wg sync.WaitGroup
			for g := 0; g < 3; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for rep := 0; rep < 10; rep++ {
						check(t, procs, 500, 3, rep%2 == 0)
					}
				}()
			}
			wg.Wait()
			// A loop inside a loop: the inner one finds the pool busy.
			var inner atomic.Int64
			ParallelDynamic(procs, 8, 1, func(_, lo, hi int) {
				ParallelN(2, 10, func(_, a, b int) { inner.Add(int64(b - a)) })
			})
			if inner.Load() != 80 {
				t.Fatalf("nested loops covered %d, want 80", inner.Load())
			}
		}
	}
}

func TestSpinSetting(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"": defaultSpin, "x": defaultSpin, "0": 0, "-5": 0, "50": 50 * time.Microsecond, "9000000": time.Second,
	} {
		if got := spinSetting(v); got != want {
			t.Errorf("%s=%q: %v, want %v", SpinEnv, v, got, want)
		}
	}
}
