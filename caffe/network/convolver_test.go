package network

import (
	"sync/atomic"
	"testing"

	"github.com/gocaffe/gocaffe/kernels"
	"github.com/gocaffe/gocaffe/kernels/simdev"
)

// convDevice is the simulated device whose backends are also
// kernels.Convolvers, their plans written with the backend's own Im2col,
// Gemm and Col2im one image at a time: the path a convolution takes when
// a library (cuDNN) runs it, checked without a GPU.
type convDevice struct {
	*simdev.Device
	f32   convBackend[float32]
	f64   convBackend[float64]
	calls atomic.Int64
}

func newConvDevice() *convDevice {
	d := &convDevice{Device: simdev.New()}
	d.f32 = convBackend[float32]{d.Device.Float32(), d}
	d.f64 = convBackend[float64]{d.Device.Float64(), d}
	return d
}

func (d *convDevice) Float32() kernels.Backend[float32] { return d.f32 }
func (d *convDevice) Float64() kernels.Backend[float64] { return d.f64 }

type convBackend[T kernels.Float] struct {
	kernels.Backend[T]
	d *convDevice
}

func (b convBackend[T]) Device() kernels.Device { return b.d }

func (b convBackend[T]) ConvPlan(s kernels.ConvShape) (kernels.ConvPlan[T], string) {
	return refPlan[T]{b.Backend, s, b.d}, ""
}

// refPlan is kernels.ConvPlan's contract on the backend's primitives:
// Forward and BackwardData overwrite, BackwardFilter adds.
type refPlan[T kernels.Float] struct {
	be kernels.Backend[T]
	s  kernels.ConvShape
	d  *convDevice
}

func (p refPlan[T]) dims() (kg, kdim, sp, in, out int) {
	s := p.s
	return s.K / s.Groups, s.C / s.Groups * s.Geom.KH * s.Geom.KW, s.OH * s.OW, s.C * s.H * s.W, s.K * s.OH * s.OW
}

func (p refPlan[T]) Forward(x, w, y kernels.Vec[T]) {
	p.d.calls.Add(1)
	s, be := p.s, p.be
	kg, kdim, sp, in, out := p.dims()
	col := be.Alloc(kdim * s.Groups * sp)
	for n := 0; n < s.N; n++ {
		be.Im2col(x.Slice(n*in, (n+1)*in), s.C, s.H, s.W, s.Geom, s.OH, s.OW, col)
		for g := 0; g < s.Groups; g++ {
			be.Gemm(false, false, kg, sp, kdim, 1, w.From(g*kg*kdim), kdim, col.From(g*kdim*sp), sp, 0, y.From(n*out+g*kg*sp), sp)
		}
	}
}

func (p refPlan[T]) BackwardData(dy, w, dx kernels.Vec[T]) {
	p.d.calls.Add(1)
	s, be := p.s, p.be
	kg, kdim, sp, in, out := p.dims()
	col := be.Alloc(kdim * s.Groups * sp)
	for n := 0; n < s.N; n++ {
		for g := 0; g < s.Groups; g++ {
			be.Gemm(true, false, kdim, sp, kg, 1, w.From(g*kg*kdim), kdim, dy.From(n*out+g*kg*sp), sp, 0, col.From(g*kdim*sp), sp)
		}
		be.Col2im(col, s.C, s.H, s.W, s.Geom, s.OH, s.OW, dx.Slice(n*in, (n+1)*in))
	}
}

func (p refPlan[T]) BackwardFilter(x, dy, dw kernels.Vec[T]) {
	p.d.calls.Add(1)
	s, be := p.s, p.be
	kg, kdim, sp, in, out := p.dims()
	col := be.Alloc(kdim * s.Groups * sp)
	for n := 0; n < s.N; n++ {
		be.Im2col(x.Slice(n*in, (n+1)*in), s.C, s.H, s.W, s.Geom, s.OH, s.OW, col)
		for g := 0; g < s.Groups; g++ {
			be.Gemm(false, true, kg, kdim, sp, 1, dy.From(n*out+g*kg*sp), sp, col.From(g*kdim*sp), sp, 1, dw.From(g*kg*kdim), kdim)
		}
	}
}

// TestLeNetNumericsThroughConvolver runs LeNet's golden numerics with the
// convolutions handed to a kernels.Convolver's plans, as the CUDA backend
// hands them to cuDNN: the layer's side of that path (the bias pass and
// its fused ReLU after Forward, the filter gradient added to, the bottom
// gradient overwritten) must give the CPU's numbers.
func TestLeNetNumericsThroughConvolver(t *testing.T) {
	d := newConvDevice()
	checkLeNetGolden(t, lenetNumerics(t, WithDevice(d)))
	if f := d.Faults(); len(f) > 0 {
		t.Errorf("device operations got host operands: %v", f)
	}
	// Two convolutions, forward; backward filter for both, data for conv2.
	if n := d.calls.Load(); n < 5 {
		t.Fatalf("%d plan calls: the convolutions did not go through the Convolver", n)
	}
}
