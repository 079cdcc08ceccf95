package layers

import (
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
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
		{typ: "AbsVal", onDevice: true, engine: "CAFFE", device: "cpu", fallback: true},
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

// Every layer of the nets the CUDA backend is built for (LeNet, CIFAR-10
// quick and full, AlexNet, CaffeNet, GoogLeNet, VGG-16, ResNet-50), but
// their data layers, is placed on a device: none falls back to the CPU,
// so a training iteration can be recorded as one CUDA graph. (Split,
// which nets insert, is in the same list.)
func TestIssueNetsPlacedOnDevice(t *testing.T) {
	r, err := Standard()
	if err != nil {
		t.Fatal(err)
	}
	dev := simdev.New()
	data := map[string]bool{"Data": true, "Input": true, "ImageData": true, "MemoryData": true, "HDF5Data": true}
	for _, f := range []string{"lenet_train_test", "cifar10_quick_train_test", "cifar10_full_train_test", "alexnet_train_val",
		"caffenet_train_val", "googlenet_deploy", "vgg16_deploy", "resnet50_deploy"} {
		p, err := prototxt.ParseNetFile(filepath.Join("..", "testdata", "nets", f+".prototxt"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, lp := range append(p.GetLayer(), &caffepb.LayerParameter{Name: proto.String("split"), Type: proto.String("Split")}) {
			if data[lp.GetType()] {
				continue
			}
			pl, err := r.Place(layer.Context{Param: lp, Device: dev})
			if err != nil {
				t.Fatalf("%s: layer %q: %v", f, lp.GetName(), err)
			}
			if pl.Fallback {
				t.Errorf("%s: layer %q (%s) falls back to the CPU", f, lp.GetName(), lp.GetType())
			}
			n++
		}
		if n < 4 {
			t.Errorf("%s: only %d layers checked", f, n)
		}
	}
}
