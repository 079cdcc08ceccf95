package network

import "github.com/gocaffe/gocaffe/kernels"

// ParamSegment is one learnable parameter's place in the net's contiguous
// buffers: elements [Offset, Offset+Count) of ParamBuffer and GradBuffer.
type ParamSegment struct {
	Offset, Count int
	// LrMult and DecayMult are the param's multipliers (ParamSpec).
	LrMult, DecayMult float64
}

// layoutParams places every learnable param's data and diff in one buffer
// each, in learnable order, as Caffe's parallel.cpp lays out its gradient
// buffer. Shared params (Caffe's param owners) share their owner's memory
// already, so they need no place of their own. Values (the fillers'
// weights) are kept.
func (n *Net[T]) layoutParams() {
	total := 0
	n.segs = n.segs[:0]
	for li, id := range n.table.Learnable {
		c := n.params[id].Count()
		n.segs = append(n.segs, ParamSegment{Offset: total, Count: c, LrMult: n.table.LrMult[li], DecayMult: n.table.DecayMult[li]})
		total += c
	}
	n.paramBuf, n.gradBuf = make([]T, total), make([]T, total)
	for li, id := range n.table.Learnable {
		sg, p := n.segs[li], n.params[id]
		p.DataMem().UseHost(n.paramBuf[sg.Offset : sg.Offset+sg.Count])
		p.DiffMem().UseHost(n.gradBuf[sg.Offset : sg.Offset+sg.Count])
	}
}

// Device returns the device the net's layers compute on.
func (n *Net[T]) Device() kernels.Device { return n.device }

// ParamSegments returns each learnable param's place in ParamBuffer and
// GradBuffer, in LearnableParams order.
func (n *Net[T]) ParamSegments() []ParamSegment { return n.segs }

// ParamBuffer returns the values of all learnable params in one host slice
// (see ParamSegments), current on the host: writing it writes the params.
// On a device net it first brings each param's values to the host and
// marks the device copies stale.
func (n *Net[T]) ParamBuffer() []T {
	for _, id := range n.table.Learnable {
		n.params[id].MutableHostData()
	}
	return n.paramBuf
}

// GradBuffer returns the gradients of all learnable params in one host
// slice (see ParamSegments), current on the host: an all-reduce or an
// average works on it in place, and the solver's update reads it. On a
// device net it first brings each diff to the host and marks the device
// copies stale.
func (n *Net[T]) GradBuffer() []T {
	for _, id := range n.table.Learnable {
		n.params[id].MutableHostDiff()
	}
	return n.gradBuf
}

// ParamBufferOn returns the values of all learnable params as one Vec in
// be's memory (see ParamSegments), current there: a device solver updates
// it in place. On host memory it is ParamBuffer. On a device, the first
// call lays the params' device copies out in one allocation (their values
// kept); later calls only bring a param up if the host wrote it since.
func (n *Net[T]) ParamBufferOn(be kernels.Backend[T]) kernels.Vec[T] {
	if be.HostMemory() {
		return kernels.HostVec(n.ParamBuffer())
	}
	n.layoutDevice(be)
	for _, id := range n.table.Learnable {
		n.params[id].MutableDataOn(be)
	}
	return n.paramDev
}

// GradBufferOn is ParamBufferOn for the gradients.
func (n *Net[T]) GradBufferOn(be kernels.Backend[T]) kernels.Vec[T] {
	if be.HostMemory() {
		return kernels.HostVec(n.GradBuffer())
	}
	n.layoutDevice(be)
	for _, id := range n.table.Learnable {
		n.params[id].MutableDiffOn(be)
	}
	return n.gradDev
}

// layoutDevice places every learnable param's device data and diff in one
// allocation each on be, in ParamSegments order, once.
func (n *Net[T]) layoutDevice(be kernels.Backend[T]) {
	if n.devOf == be {
		return
	}
	total := len(n.paramBuf)
	n.paramDev, n.gradDev, n.devOf = be.Alloc(total), be.Alloc(total), be
	for li, id := range n.table.Learnable {
		sg, p := n.segs[li], n.params[id]
		p.DataMem().UseDevice(be, n.paramDev.Slice(sg.Offset, sg.Offset+sg.Count))
		p.DiffMem().UseDevice(be, n.gradDev.Slice(sg.Offset, sg.Offset+sg.Count))
	}
}
