//go:build cuda

package graph

// #cgo LDFLAGS: -lcuda
// #include <cuda.h>
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
