package main

import (
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/caffe/solver"
	"github.com/gocaffe/gocaffe/goexec/memcheck"
)

// checkMemory estimates what training sp needs before anything is
// allocated and refuses a net that cannot fit (one line with both figures
// and the largest blobs, instead of the runtime's fatal out-of-memory).
func checkMemory(sp *caffepb.SolverParameter, reg *layer.Registry, solverPath string, src memcheck.Sources) error {
	need, err := solver.EstimateMemory(sp, reg, false)
	if err != nil {
		return nil // solver.New reports a bad net with its context
	}
	return memcheck.Check("training "+solverPath, need.Bytes, need.ParamBytes, need.Batch, need.Largest, src.Budget())
}

// checkNetMemory refuses a net that cannot fit before it is built, as
// checkMemory does for training: its parameters with their gradient buffer
// (the net lays out both) and its activations, with their gradients when
// backward passes run too, estimated from shapes alone.
func checkNetMemory(what string, np *caffepb.NetParameter, state *caffepb.NetState, reg *layer.Registry, backward bool, src memcheck.Sources) error {
	est, err := network.EstimateMemory(np, state, reg)
	if err != nil {
		return nil // building the net reports a bad net with its context
	}
	const f32 = 4
	params := f32 * 2 * est.Params
	acts := f32 * est.Activations
	if backward {
		acts *= 2
	}
	return memcheck.Check(what, params+acts, params, est.Batch, est.Largest, src.Budget())
}
