package onnxexport

import (
	"slices"
	"strings"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layers"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
)

func build(t *testing.T, src string) *network.Net[float32] {
	t.Helper()
	np, err := prototxt.ParseNet("t", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := layers.Standard()
	if err != nil {
		t.Fatal(err)
	}
	n, err := network.New[float32](np, &caffepb.NetState{Phase: caffepb.Phase_TEST.Enum()}, reg, network.WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestGraphOfLeNetLikeNet checks the graph's structure; the numbers are
// checked against onnxruntime in python/tests/test_export_onnx.py.
func TestGraphOfLeNetLikeNet(t *testing.T) {
	n := build(t, `name: "small"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 1 dim: 9 dim: 9 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 3 kernel_size: 3 pad: 1 weight_filler { type: "xavier" } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip" type: "InnerProduct" bottom: "pool" top: "ip" inner_product_param { num_output: 4 weight_filler { type: "xavier" } } }
layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }`)
	m, err := Export(n, Options{Outputs: []string{"conv"}})
	if err != nil {
		t.Fatal(err)
	}
	g := m.GetGraph()
	var ops []string
	for _, nd := range g.GetNode() {
		ops = append(ops, nd.GetOpType())
	}
	if want := []string{"Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Softmax"}; !slices.Equal(ops, want) {
		t.Errorf("ops %v, want %v", ops, want)
	}
	// The in-place ReLU writes a new value; the extra output is the blob's latest value.
	var outs []string
	for _, o := range g.GetOutput() {
		outs = append(outs, o.GetName())
	}
	if want := []string{"prob", "conv@relu"}; !slices.Equal(outs, want) {
		t.Errorf("outputs %v, want %v", outs, want)
	}
	// Caffe pools 9×9 by 2 with ceil rounding to 5×5: one extra row and column of padding.
	for _, nd := range g.GetNode() {
		if nd.GetOpType() == "MaxPool" {
			for _, a := range nd.GetAttribute() {
				if a.GetName() == "pads" && !slices.Equal(a.GetInts(), []int64{0, 0, 1, 1}) {
					t.Errorf("MaxPool pads %v, want [0 0 1 1]", a.GetInts())
				}
			}
		}
	}
	if in := g.GetInput()[0].GetType().GetTensorType().GetShape().GetDim(); in[0].GetDimParam() != "batch" || in[1].GetDimValue() != 1 {
		t.Errorf("input shape %v: want a symbolic batch", in)
	}
	if m.GetOpsetImport()[0].GetVersion() != Opset || m.GetIrVersion() != irVersion {
		t.Errorf("opset %v ir %d", m.GetOpsetImport(), m.GetIrVersion())
	}
	if _, err := Export(n, Options{Outputs: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown output: %v", err)
	}
}

func TestLayerOnnxCannotExpressIsNamed(t *testing.T) {
	n := build(t, `name: "withloss"
layer { name: "data" type: "Input" top: "data" top: "label" input_param { shape { dim: 2 dim: 4 } shape { dim: 2 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 3 } }
layer { name: "the_loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }`)
	_, err := Export(n, Options{})
	if err == nil || !strings.Contains(err.Error(), `layer "the_loss" (type SoftmaxWithLoss): ONNX cannot express this layer: a loss layer`) {
		t.Errorf("err = %v", err)
	}
	n = build(t, `name: "stoch"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }
layer { name: "sp" type: "Pooling" bottom: "data" top: "p" pooling_param { pool: STOCHASTIC kernel_size: 2 stride: 2 } }`)
	if _, err := Export(n, Options{}); err == nil || !strings.Contains(err.Error(), `layer "sp" (type Pooling): ONNX cannot express this layer: STOCHASTIC`) {
		t.Errorf("err = %v", err)
	}
}
