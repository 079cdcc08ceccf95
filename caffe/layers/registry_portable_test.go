package layers

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/kernels/simdev"
)

// Layers are placed by type and engine: a portable layer runs on the net's
// device, a host layer falls back to the CPU there, a device engine wins on
// its device, and on the CPU every layer is the CAFFE one.
func TestPlacement(t *testing.T) {
	r, err := Standard()
	if err != nil {
		t.Fatal(err)
	}
	dev := simdev.New()
	// A device implementation of ReLU for the simulated device's engine.
	if err := r.RegisterEngine("ReLU", dev.Engine(), newReLU[float32], newReLU[float64]); err != nil {
		t.Fatal(err)
	}
	cudnn := &caffepb.LayerParameter{Name: proto.String("c"), Type: proto.String("Convolution"),
		ConvolutionParam: &caffepb.ConvolutionParameter{Engine: caffepb.ConvolutionParameter_CUDNN.Enum()}}
	if got := layer.RequestedEngine(cudnn); got != "CUDNN" {
		t.Fatalf("requested engine %q, want CUDNN", got)
	}
	for _, c := range []struct {
		typ      string
		param    *caffepb.LayerParameter
		onDevice bool
		engine   string
		device   string
		fallback bool
	}{
		{typ: "Convolution", onDevice: true, engine: "CAFFE", device: "simdev"},
		{param: cudnn, onDevice: true, engine: "CAFFE", device: "simdev"}, // no CUDNN implementation: the portable one
		{typ: "TanH", onDevice: true, engine: "CAFFE", device: "cpu", fallback: true},
		{typ: "SoftmaxWithLoss", onDevice: true, engine: "CAFFE", device: "simdev"},
		{typ: "ReLU", onDevice: true, engine: "SIMDEV", device: "simdev"},
		{typ: "ReLU", engine: "CAFFE", device: "cpu"},
		{param: cudnn, engine: "CAFFE", device: "cpu"},
		{typ: "SoftmaxWithLoss", engine: "CAFFE", device: "cpu"},
	} {
		lp := c.param
		if lp == nil {
			lp = &caffepb.LayerParameter{Name: proto.String("l"), Type: proto.String(c.typ)}
		}
		ctx := layer.Context{Param: lp}
		if c.onDevice {
			ctx.Device = dev
		}
		pl, err := r.Place(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if pl.Engine != c.engine || pl.Device.Name() != c.device || pl.Fallback != c.fallback {
			t.Errorf("%s on device %v: placed %s on %s (fallback %v), want %s on %s (fallback %v)",
				lp.GetType(), c.onDevice, pl.Engine, pl.Device.Name(), pl.Fallback, c.engine, c.device, c.fallback)
		}
	}
	if err := r.RegisterEngine("ReLU", dev.Engine(), newReLU[float32], newReLU[float64]); err == nil {
		t.Error("registering ReLU's SIMDEV engine twice gave no error")
	}
}
