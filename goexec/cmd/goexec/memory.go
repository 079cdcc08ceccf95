package main

import (
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
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
