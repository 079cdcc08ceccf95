package network

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/filler"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// Tiny layers for testing the net without the real layer library.

// fakeInput shapes its tops from input_param and fills them from a source
// when one is attached (layer.Fed), else leaves them as they are.
type fakeInput[T blob.Float] struct {
	p   *caffepb.LayerParameter
	src layer.BatchSource[T]
}

func (l *fakeInput[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if len(l.p.GetInputParam().GetShape()) != len(top) {
		return fmt.Errorf("%d shapes for %d tops", len(l.p.GetInputParam().GetShape()), len(top))
	}
	return nil
}
func (l *fakeInput[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	for i, s := range l.p.GetInputParam().GetShape() {
		var d []int
		for _, v := range s.GetDim() {
			d = append(d, int(v))
		}
		top[i].Reshape(d...)
	}
	return nil
}
func (l *fakeInput[T]) Forward(bottom, top []*blob.Blob[T]) error {
	if l.src != nil {
		return l.src.Next(top)
	}
	return nil
}
func (l *fakeInput[T]) Backward(top []*blob.Blob[T], pd []bool, bottom []*blob.Blob[T]) error {
	return nil
}
func (l *fakeInput[T]) Blobs() []*blob.Blob[T]             { return nil }
func (l *fakeInput[T]) SetSource(src layer.BatchSource[T]) { l.src = src }

// fakeIP is an inner product over all but the first axis: y = W x + b.
type fakeIP[T blob.Float] struct {
	ctx   layer.Context
	blobs []*blob.Blob[T]
}

func (l *fakeIP[T]) Setup(bottom, top []*blob.Blob[T]) error {
	ip := l.ctx.Param.GetInnerProductParam()
	n, k := int(ip.GetNumOutput()), bottom[0].CountFrom(1)
	w, b := blob.New[T](n, k), blob.New[T](n)
	if err := filler.Fill(ip.GetWeightFiller(), l.ctx.Rand, w); err != nil {
		return err
	}
	if err := filler.Fill(ip.GetBiasFiller(), l.ctx.Rand, b); err != nil {
		return err
	}
	l.blobs = []*blob.Blob[T]{w, b}
	return nil
}
func (l *fakeIP[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	top[0].Reshape(bottom[0].Dim(0), l.blobs[0].Dim(0))
	return nil
}
func (l *fakeIP[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y := bottom[0].Data(), top[0].Data()
	w, b := l.blobs[0].Data(), l.blobs[1].Data()
	m, n, k := bottom[0].Dim(0), l.blobs[0].Dim(0), l.blobs[0].Dim(1)
	for i := range m {
		for j := range n {
			s := b[j]
			for c := range k {
				s += w[j*k+c] * x[i*k+c]
			}
			y[i*n+j] = s
		}
	}
	return nil
}
func (l *fakeIP[T]) Backward(top []*blob.Blob[T], pd []bool, bottom []*blob.Blob[T]) error {
	x, dy := bottom[0].Data(), top[0].Diff()
	w, dw, db := l.blobs[0].Data(), l.blobs[0].Diff(), l.blobs[1].Diff()
	m, n, k := bottom[0].Dim(0), l.blobs[0].Dim(0), l.blobs[0].Dim(1)
	for i := range m {
		for j := range n {
			db[j] += dy[i*n+j]
			for c := range k {
				dw[j*k+c] += dy[i*n+j] * x[i*k+c]
			}
		}
	}
	if pd[0] {
		dx := bottom[0].Diff()
		clear(dx)
		for i := range m {
			for j := range n {
				for c := range k {
					dx[i*k+c] += dy[i*n+j] * w[j*k+c]
				}
			}
		}
	}
	return nil
}
func (l *fakeIP[T]) Blobs() []*blob.Blob[T] { return l.blobs }

// fakeReLU works in place or not.
type fakeReLU[T blob.Float] struct{}

func (fakeReLU[T]) Setup(bottom, top []*blob.Blob[T]) error { return nil }
func (fakeReLU[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	top[0].ReshapeLike(bottom[0])
	return nil
}
func (fakeReLU[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y := bottom[0].Data(), top[0].Data()
	for i, v := range x {
		y[i] = max(v, 0)
	}
	return nil
}
func (fakeReLU[T]) Backward(top []*blob.Blob[T], pd []bool, bottom []*blob.Blob[T]) error {
	if !pd[0] {
		return nil
	}
	y, dy, dx := top[0].Data(), top[0].Diff(), bottom[0].Diff()
	for i := range dx {
		if y[i] <= 0 {
			dx[i] = 0
		} else {
			dx[i] = dy[i]
		}
	}
	return nil
}
func (fakeReLU[T]) Blobs() []*blob.Blob[T] { return nil }
func (fakeReLU[T]) BlobCounts() (int, int, int, int) {
	return 1, 1, 1, 1
}

// fakeSplit copies its bottom to every top and sums the top diffs back.
type fakeSplit[T blob.Float] struct{}

func (fakeSplit[T]) Setup(bottom, top []*blob.Blob[T]) error { return nil }
func (fakeSplit[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	for _, t := range top {
		t.ReshapeLike(bottom[0])
	}
	return nil
}
func (fakeSplit[T]) Forward(bottom, top []*blob.Blob[T]) error {
	for _, t := range top {
		copy(t.Data(), bottom[0].Data())
	}
	return nil
}
func (fakeSplit[T]) Backward(top []*blob.Blob[T], pd []bool, bottom []*blob.Blob[T]) error {
	if !pd[0] {
		return nil
	}
	d := bottom[0].Diff()
	clear(d)
	for _, t := range top {
		for i, v := range t.Diff() {
			d[i] += v
		}
	}
	return nil
}
func (fakeSplit[T]) Blobs() []*blob.Blob[T] { return nil }

// fakeLoss is 0.5·Σ(x−label)² over a batch; a second top, if any, copies x.
type fakeLoss[T blob.Float] struct{}

func (fakeLoss[T]) IsLoss()                                 {}
func (fakeLoss[T]) AllowForceBackward(bottom int) bool      { return bottom != 1 }
func (fakeLoss[T]) Setup(bottom, top []*blob.Blob[T]) error { return nil }
func (fakeLoss[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	if bottom[0].Count() != bottom[1].Count() {
		return fmt.Errorf("data count %d != label count %d", bottom[0].Count(), bottom[1].Count())
	}
	top[0].Reshape()
	if len(top) > 1 {
		top[1].ReshapeLike(bottom[0])
	}
	return nil
}
func (fakeLoss[T]) Forward(bottom, top []*blob.Blob[T]) error {
	var s T
	for i, v := range bottom[0].Data() {
		d := v - bottom[1].Data()[i]
		s += d * d / 2
	}
	top[0].Data()[0] = s
	if len(top) > 1 {
		copy(top[1].Data(), bottom[0].Data())
	}
	return nil
}
func (fakeLoss[T]) Backward(top []*blob.Blob[T], pd []bool, bottom []*blob.Blob[T]) error {
	g := top[0].Diff()[0]
	for k, sign := range []T{1, -1} {
		if !pd[k] {
			continue
		}
		for i, v := range bottom[0].Data() {
			bottom[k].Diff()[i] = sign * g * (v - bottom[1].Data()[i])
		}
	}
	return nil
}
func (fakeLoss[T]) Blobs() []*blob.Blob[T] { return nil }

func fakeRegistry(t testing.TB) *layer.Registry {
	t.Helper()
	r := layer.NewRegistry()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.Register("Input",
		func(c layer.Context) (layer.Layer[float32], error) { return &fakeInput[float32]{p: c.Param}, nil },
		func(c layer.Context) (layer.Layer[float64], error) { return &fakeInput[float64]{p: c.Param}, nil }))
	must(r.Register("InnerProduct",
		func(c layer.Context) (layer.Layer[float32], error) { return &fakeIP[float32]{ctx: c}, nil },
		func(c layer.Context) (layer.Layer[float64], error) { return &fakeIP[float64]{ctx: c}, nil }))
	must(r.Register("ReLU",
		func(c layer.Context) (layer.Layer[float32], error) { return fakeReLU[float32]{}, nil },
		func(c layer.Context) (layer.Layer[float64], error) { return fakeReLU[float64]{}, nil }))
	must(r.Register("Split",
		func(c layer.Context) (layer.Layer[float32], error) { return fakeSplit[float32]{}, nil },
		func(c layer.Context) (layer.Layer[float64], error) { return fakeSplit[float64]{}, nil }))
	must(r.Register("EuclideanLoss",
		func(c layer.Context) (layer.Layer[float32], error) { return fakeLoss[float32]{}, nil },
		func(c layer.Context) (layer.Layer[float64], error) { return fakeLoss[float64]{}, nil }))
	return r
}

// parseNet parses a net in protobuf text format (the `layer` form).
func parseNet(t testing.TB, text string) *caffepb.NetParameter {
	t.Helper()
	p := &caffepb.NetParameter{}
	if err := prototext.Unmarshal([]byte(text), p); err != nil {
		t.Fatalf("parse net: %v", err)
	}
	return p
}
