// Package cpu implements the CPU math that GoCaffe's layers run on: a fast
// float32 SGEMM and vector helpers, and plain generic references for
// float64 and for tests. The fast paths use all cores (runtime.GOMAXPROCS).
package cpu

import (
	"runtime"
	"sync"
)

// Float is the element type the kernels compute in.
type Float interface{ ~float32 | ~float64 }

// Workers returns how many chunks Parallel splits n items into: the
// smaller of runtime.GOMAXPROCS(0) and n (at least 1).
func Workers(n int) int {
	w := runtime.GOMAXPROCS(0)
	if n < w {
		w = n
	}
	if w < 1 {
		w = 1
	}
	return w
}

// Parallel runs fn over [0, n) split into Workers(n) contiguous chunks of
// nearly equal size, one goroutine per chunk, and returns when all are done.
// chunk is the chunk's index in [0, Workers(n)), so callers can keep one
// scratch buffer per chunk. With one chunk fn runs on the calling goroutine.
func Parallel(n int, fn func(chunk, lo, hi int)) {
	ParallelN(Workers(n), n, fn)
}

// ParallelN is Parallel with an explicit number of chunks (clamped to [1, n]).
func ParallelN(workers, n int, fn func(chunk, lo, hi int)) {
	if n <= 0 {
		return
	}
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		fn(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		lo, hi := w*n/workers, (w+1)*n/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(w, lo, hi)
		}()
	}
	fn(0, 0, n/workers)
	wg.Wait()
}
