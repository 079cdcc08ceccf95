//go:build cuda

package graph

// #cgo LDFLAGS: -lcuda
// #include <stdint.h>
// #include <stdlib.h>
// #include <cuda.h>
//
// // lastCaptured returns the node the last operation captured on stream
// // added (the capture's one current dependency).
// static CUresult lastCaptured(CUstream stream, CUgraphNode* node) {
// 	CUstreamCaptureStatus st;
// 	const CUgraphNode* deps = NULL;
// 	size_t n = 0;
// 	CUresult r = cuStreamGetCaptureInfo(stream, &st, NULL, NULL, &deps, &n);
// 	if (r != CUDA_SUCCESS) return r;
// 	if (st != CU_STREAM_CAPTURE_STATUS_ACTIVE || n != 1) return CUDA_ERROR_ILLEGAL_STATE;
// 	*node = deps[0];
// 	return CUDA_SUCCESS;
// }
//
// // setKernelArgs gives kernel node `node` of exec new argument values (8
// // bytes each, as the launch passed them), its kernel and grid kept.
// static CUresult setKernelArgs(CUgraphExec exec, CUgraphNode node, uint64_t* args, int n) {
// 	CUDA_KERNEL_NODE_PARAMS p;
// 	CUresult r = cuGraphKernelNodeGetParams(node, &p);
// 	if (r != CUDA_SUCCESS) return r;
// 	void* ptrs[64];
// 	if (n > 64) return CUDA_ERROR_INVALID_VALUE;
// 	for (int i = 0; i < n; i++) ptrs[i] = &args[i];
// 	p.kernelParams = ptrs;
// 	p.extra = NULL;
// 	return cuGraphExecKernelNodeSetParams(exec, node, &p);
// }
import "C"

import (
	"fmt"
	"unsafe"
)

// Stream is a CUDA stream handle (gorgonia.org/cu's Stream.C() value).
type Stream = unsafe.Pointer

// Exec is an instantiated graph, ready to launch.
type Exec struct {
	g    C.CUgraph
	exec C.CUgraphExec
}

func check(what string, r C.CUresult) error {
	if r == C.CUDA_SUCCESS {
		return nil
	}
	var s *C.char
	if C.cuGetErrorString(r, &s) == C.CUDA_SUCCESS && s != nil {
		return fmt.Errorf("%s: CUDA error %d: %s", what, int(r), C.GoString(s))
	}
	return fmt.Errorf("%s: CUDA error %d", what, int(r))
}

// BeginCapture starts capturing the work issued to stream into a graph
// (thread-local mode: other threads' CUDA calls are not disturbed).
func BeginCapture(stream Stream) error {
	return check("cuStreamBeginCapture", C.cuStreamBeginCapture(C.CUstream(stream), C.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL))
}

// EndCapture ends the capture started on stream and instantiates the graph.
func EndCapture(stream Stream) (*Exec, error) {
	var g C.CUgraph
	if err := check("cuStreamEndCapture", C.cuStreamEndCapture(C.CUstream(stream), &g)); err != nil {
		return nil, err
	}
	var ex C.CUgraphExec
	if err := check("cuGraphInstantiate", C.cuGraphInstantiateWithFlags(&ex, g, 0)); err != nil {
		C.cuGraphDestroy(g)
		return nil, err
	}
	return &Exec{g: g, exec: ex}, nil
}

// Nodes returns the number of nodes in the captured graph.
func (e *Exec) Nodes() (int, error) {
	var n C.size_t
	if err := check("cuGraphGetNodes", C.cuGraphGetNodes(e.g, nil, &n)); err != nil {
		return 0, err
	}
	return int(n), nil
}

// Launch replays the graph on stream.
func (e *Exec) Launch(stream Stream) error {
	return check("cuGraphLaunch", C.cuGraphLaunch(e.exec, C.CUstream(stream)))
}

// Destroy releases the graph and its instance.
func (e *Exec) Destroy() {
	if e.exec != nil {
		C.cuGraphExecDestroy(e.exec)
		e.exec = nil
	}
	if e.g != nil {
		C.cuGraphDestroy(e.g)
		e.g = nil
	}
}

// Node is a node of a captured graph.
type Node struct{ n C.CUgraphNode }

// LastCaptured returns the node that the last operation issued to stream,
// which is capturing, added to its graph.
func LastCaptured(stream Stream) (Node, error) {
	var n C.CUgraphNode
	if err := check("cuStreamGetCaptureInfo", C.lastCaptured(C.CUstream(stream), &n)); err != nil {
		return Node{}, err
	}
	return Node{n}, nil
}

// SetKernelArgs replaces the arguments of kernel node nd in e with args
// (each widened to 8 bytes, as the launch passed them); the next Launch
// uses them.
func (e *Exec) SetKernelArgs(nd Node, args []uint64) error {
	if len(args) == 0 {
		return fmt.Errorf("SetKernelArgs: no arguments")
	}
	c := (*C.uint64_t)(C.malloc(C.size_t(8 * len(args))))
	defer C.free(unsafe.Pointer(c))
	copy(unsafe.Slice((*uint64)(unsafe.Pointer(c)), len(args)), args)
	return check("cuGraphExecKernelNodeSetParams", C.setKernelArgs(e.exec, nd.n, c, C.int(len(args))))
}

// IsCapturing reports whether stream is capturing into a graph.
func IsCapturing(stream Stream) (bool, error) {
	var st C.CUstreamCaptureStatus
	if err := check("cuStreamIsCapturing", C.cuStreamIsCapturing(C.CUstream(stream), &st)); err != nil {
		return false, err
	}
	return st != C.CU_STREAM_CAPTURE_STATUS_NONE, nil
}

// Invalidated reports whether stream's capture has been invalidated: an
// operation issued while capturing could not be captured, and the capture
// will fail when it ends.
func Invalidated(stream Stream) (bool, error) {
	var st C.CUstreamCaptureStatus
	if err := check("cuStreamIsCapturing", C.cuStreamIsCapturing(C.CUstream(stream), &st)); err != nil {
		return false, err
	}
	return st == C.CU_STREAM_CAPTURE_STATUS_INVALIDATED, nil
}

// AllocHost returns bytes of page-locked host memory (the current
// context's), from which the device copies without staging.
func AllocHost(bytes int) (unsafe.Pointer, error) {
	var p unsafe.Pointer
	if err := check("cuMemAllocHost", C.cuMemAllocHost(&p, C.size_t(bytes))); err != nil {
		return nil, err
	}
	return p, nil
}

// FreeHost releases memory from AllocHost.
func FreeHost(p unsafe.Pointer) error { return check("cuMemFreeHost", C.cuMemFreeHost(p)) }
