// Package cpu implements the CPU math that GoCaffe's layers run on: a fast
// float32 SGEMM and vector helpers, and plain generic references for
// float64 and for tests. The fast paths use all cores (runtime.GOMAXPROCS).
package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
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

// Parallel runs fn over [0, n) on Workers(n) goroutines that take pieces
// of about n/(8·workers) items in turn (ParallelDynamic), and returns when
// all are done. fn may run many times per worker; worker is the goroutine's
// index in [0, Workers(n)), so callers can keep one scratch buffer per
// worker. With one worker fn runs once, on the calling goroutine.
func Parallel(n int, fn func(worker, lo, hi int)) {
	w := Workers(n)
	ParallelDynamic(w, n, (n+8*w-1)/(8*w), fn)
}

// ParallelDynamic runs fn over [0, n) in pieces of grain items, which
// workers goroutines (the caller is worker 0) take in turn until none are
// left, and returns when all are done. A worker that starts late or loses
// its core to other load takes fewer pieces instead of holding the others
// up, as a fixed split would. fn may run many times per worker, each time
// with the worker's index in [0, workers) and a piece [lo, hi).
func ParallelDynamic(workers, n, grain int, fn func(worker, lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	pieces := (n + grain - 1) / grain
	workers = min(workers, pieces)
	if workers <= 1 {
		fn(0, 0, n)
		return
	}
	var next atomic.Int64
	run := func(w int) {
		for {
			p := int(next.Add(1)) - 1
			if p >= pieces {
				return
			}
			lo := p * grain
			fn(w, lo, min(lo+grain, n))
		}
	}
	if runPool(workers, run) {
		return
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(w)
		}()
	}
	run(0)
	wg.Wait()
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
	if runPool(workers, func(w int) { fn(w, w*n/workers, (w+1)*n/workers) }) {
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

// elemGrain is the smallest piece of an elementwise loop worth handing to
// another core: 32K elements (128 KiB of float32), about ten microseconds of
// work against the microsecond or so of starting and waking a goroutine.
const elemGrain = 1 << 15

// ParallelElems runs fn over [0, n) of an elementwise (or row-wise) loop:
// on the calling goroutine when n is under two pieces of grain items or
// only one core is set, otherwise in equal pieces of about grain items or more over
// up to runtime.GOMAXPROCS(0) workers, four pieces a worker where n
// allows (so that 16 or 32 workers get work and a slowed one does less).
// The pieces are fixed by n and the worker count, so a loop whose pieces
// write disjoint outputs gives the same result on any schedule.
func ParallelElems(n, grain int, fn func(lo, hi int)) {
	grain = max(grain, 1)
	w := runtime.GOMAXPROCS(0)
	if w <= 1 || n < 2*grain {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	w = min(w, n/grain)
	// Equal pieces of at least about grain: no short tail piece.
	pieces := max(1, min(4*w, n/grain))
	piece := (n + pieces - 1) / pieces
	ParallelDynamic(w, n, piece, func(_, lo, hi int) { fn(lo, hi) })
}

// elemsParallel reports whether ParallelElems would split n elements at
// elemGrain, so that callers can run small loops inline without making
// the closure.
func elemsParallel(n int) bool {
	return n >= 2*elemGrain && runtime.GOMAXPROCS(0) > 1
}
