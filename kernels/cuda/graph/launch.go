//go:build cuda

package graph

/*
#include <cuda.h>
#include <stdint.h>

// launch makes ctx current on this thread and launches fn with n 8-byte
// argument slots, in one cgo call: a goroutine cannot move to another
// thread between the two.
static CUresult gocaffe_launch(CUcontext ctx, CUfunction fn, unsigned gx, unsigned gy, unsigned block,
                               CUstream stream, uint64_t *args, int n) {
	void *params[32];
	CUresult r = cuCtxSetCurrent(ctx);
	if (r != CUDA_SUCCESS) return r;
	for (int i = 0; i < n && i < 32; i++) params[i] = &args[i];
	return cuLaunchKernel(fn, gx, gy, 1, block, 1, 1, 0, stream, params, NULL);
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Launch runs kernel fn (a CUfunction) of context ctx on stream with a
// gx×gy grid of block threads; args are the kernel's parameters, each
// widened to an 8-byte slot (at most 32).
func Launch(ctx, fn unsafe.Pointer, gx, gy, block int, stream Stream, args []uint64) error {
	if len(args) > 32 {
		return fmt.Errorf("cuLaunchKernel: %d parameters, at most 32", len(args))
	}
	var p *C.uint64_t
	if len(args) > 0 {
		p = (*C.uint64_t)(unsafe.Pointer(&args[0]))
	}
	return check("cuLaunchKernel", C.gocaffe_launch(C.CUcontext(ctx), C.CUfunction(fn), C.uint(gx), C.uint(gy),
		C.uint(block), C.CUstream(stream), p, C.int(len(args))))
}
