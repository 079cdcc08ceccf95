package network

import (
	"fmt"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// SetBatch sets the batch size of every data, Input and DummyData layer of p.
func SetBatch(p *caffepb.NetParameter, n int) {
	b := uint32(n)
	for _, lp := range p.GetLayer() {
		if x := lp.GetMemoryDataParam(); x != nil {
			x.BatchSize = proto.Uint32(b)
		}
		if x := lp.GetDataParam(); x != nil {
			x.BatchSize = proto.Uint32(b)
		}
		if x := lp.GetCosDataParam(); x != nil {
			x.BatchSize = proto.Uint32(b)
		}
		if x := lp.GetImageDataParam(); x != nil {
			x.BatchSize = proto.Uint32(b)
		}
		if x := lp.GetHdf5DataParam(); x != nil {
			x.BatchSize = proto.Uint32(b)
		}
		for _, s := range lp.GetInputParam().GetShape() {
			if len(s.Dim) > 0 {
				s.Dim[0] = int64(n)
			}
		}
		for _, s := range lp.GetDummyDataParam().GetShape() {
			if len(s.Dim) > 0 {
				s.Dim[0] = int64(n)
			}
		}
		if x := lp.GetDummyDataParam(); x != nil {
			for i := range x.Num {
				x.Num[i] = b
			}
		}
	}
}

// DeclaredBatch returns the largest batch size a data, Input or DummyData
// layer of p declares (0 when none does).
func DeclaredBatch(p *caffepb.NetParameter) int {
	b := 0
	for _, lp := range p.GetLayer() {
		for _, v := range []uint32{lp.GetMemoryDataParam().GetBatchSize(), lp.GetDataParam().GetBatchSize(),
			lp.GetCosDataParam().GetBatchSize(), lp.GetImageDataParam().GetBatchSize(), lp.GetHdf5DataParam().GetBatchSize()} {
			b = max(b, int(v))
		}
		for _, s := range append(lp.GetInputParam().GetShape(), lp.GetDummyDataParam().GetShape()...) {
			if len(s.Dim) > 0 {
				b = max(b, int(s.Dim[0]))
			}
		}
		for _, v := range lp.GetDummyDataParam().GetNum() {
			b = max(b, int(v))
		}
	}
	return b
}

// BlobSize is one activation blob of a MemoryEstimate.
type BlobSize struct {
	Name   string
	Shape  []int
	Values int64
}

// MemoryEstimate is the memory a net needs, estimated from shapes alone.
type MemoryEstimate struct {
	Batch       int   // the net's declared batch size (0: none declared)
	Params      int64 // parameter values
	Activations int64 // activation values (in-place tops counted once)
	Largest     []BlobSize
}

// EstimateMemory returns the parameter and activation counts of the net
// param describes at its declared batch size without allocating its
// activations: it builds the net at batch 1 and 2 and extrapolates every
// blob linearly (Caffe blobs grow linearly with the batch), so a batch of
// 10⁹ costs what a batch of 2 costs. Fillers are not run and the
// parameters are never allocated, so a net too large for the machine is
// estimated (and refused by the caller) instead of crashing the estimate.
func EstimateMemory(param *caffepb.NetParameter, state *caffepb.NetState, reg *layer.Registry) (MemoryEstimate, error) {
	filtered, err := Filter(param, state) // only this phase's data layers set the batch
	if err != nil {
		return MemoryEstimate{}, err
	}
	batch := DeclaredBatch(filtered)
	build := func(b int) (*Net[float32], error) {
		p := param
		if b > 0 {
			p = proto.CloneOf(param)
			SetBatch(p, b)
		}
		return New[float32](p, state, reg, ShapesOnly())
	}
	est := MemoryEstimate{Batch: batch}
	var sizes []BlobSize
	if batch <= 2 {
		n, err := build(0)
		if err != nil {
			return est, err
		}
		for i, b := range n.Blobs() {
			sizes = append(sizes, BlobSize{Name: n.BlobNames()[i], Shape: append([]int(nil), b.Shape()...), Values: int64(b.Count())})
		}
		est.Params = n.Stats().Params
	} else {
		n1, err := build(1)
		if err != nil {
			return est, err
		}
		n2, err := build(2)
		if err != nil {
			return est, err
		}
		b1, b2 := n1.Blobs(), n2.Blobs()
		if len(b1) != len(b2) {
			return est, fmt.Errorf("memory estimate: the net has %d blobs at batch 1 and %d at batch 2", len(b1), len(b2))
		}
		for i := range b1 {
			c1, c2 := int64(b1[i].Count()), int64(b2[i].Count())
			shape := append([]int(nil), b2[i].Shape()...)
			if len(shape) > 0 && b1[i].NumAxes() == len(shape) && b1[i].Dim(0) == 1 && shape[0] == 2 {
				shape[0] = batch
			}
			sizes = append(sizes, BlobSize{Name: n1.BlobNames()[i], Shape: shape, Values: c1 + (c2-c1)*int64(batch-1)})
		}
		est.Params = n1.Stats().Params
	}
	for _, s := range sizes {
		est.Activations += s.Values
	}
	sort.SliceStable(sizes, func(i, j int) bool { return sizes[i].Values > sizes[j].Values })
	est.Largest = sizes[:min(3, len(sizes))]
	return est, nil
}
