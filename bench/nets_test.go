package bench

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layers"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
)

// lenet is Caffe's examples/mnist/lenet_train_test.prototxt (TRAIN phase)
// with a DummyData source in place of the LMDB.
const lenet = `name: "LeNet"
layer { name: "mnist" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: %[1]d dim: 1 dim: 28 dim: 28 } shape { dim: %[1]d }
    data_filler { type: "uniform" min: 0 max: 1 } data_filler { type: "constant" value: 3 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 20 kernel_size: 5 stride: 1 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 50 kernel_size: 5 stride: 1 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1"
  param { lr_mult: 1 } param { lr_mult: 2 }
  inner_product_param { num_output: 500 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  param { lr_mult: 1 } param { lr_mult: 2 }
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
`

// cifarQuick is Caffe's examples/cifar10/cifar10_quick_train_test.prototxt
// (TRAIN phase) with a DummyData source.
const cifarQuick = `name: "CIFAR10_quick"
layer { name: "cifar" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: %[1]d dim: 3 dim: 32 dim: 32 } shape { dim: %[1]d }
    data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 7 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 32 pad: 2 kernel_size: 5 stride: 1 weight_filler { type: "gaussian" std: 0.0001 } bias_filler { type: "constant" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "relu1" type: "ReLU" bottom: "pool1" top: "pool1" }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  convolution_param { num_output: 32 pad: 2 kernel_size: 5 stride: 1 weight_filler { type: "gaussian" std: 0.01 } bias_filler { type: "constant" } } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param { pool: AVE kernel_size: 3 stride: 2 } }
layer { name: "conv3" type: "Convolution" bottom: "pool2" top: "conv3"
  convolution_param { num_output: 64 pad: 2 kernel_size: 5 stride: 1 weight_filler { type: "gaussian" std: 0.01 } bias_filler { type: "constant" } } }
layer { name: "relu3" type: "ReLU" bottom: "conv3" top: "conv3" }
layer { name: "pool3" type: "Pooling" bottom: "conv3" top: "pool3" pooling_param { pool: AVE kernel_size: 3 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool3" top: "ip1"
  inner_product_param { num_output: 64 weight_filler { type: "gaussian" std: 0.1 } bias_filler { type: "constant" } } }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param { num_output: 10 weight_filler { type: "gaussian" std: 0.1 } bias_filler { type: "constant" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
`

func buildNet(b *testing.B, text string, batch int) *network.Net[float32] {
	b.Helper()
	param, err := prototxt.ParseNet("bench", []byte(fmt.Sprintf(text, batch)))
	if err != nil {
		b.Fatal(err)
	}
	reg, err := layers.Standard()
	if err != nil {
		b.Fatal(err)
	}
	phase := caffepb.Phase_TRAIN
	n, err := network.New[float32](param, &caffepb.NetState{Phase: &phase}, reg, network.WithSeed(1))
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkNets times one forward+backward pass (no solver update, like
// `caffe time`) of LeNet at batch 64 and 512 and CIFAR-10 quick at batch
// 100, in float32 on all cores, and reports each layer's share in ms.
func BenchmarkNets(b *testing.B) {
	for _, c := range []struct {
		name  string
		text  string
		batch int
	}{
		{"lenet", lenet, 64},
		{"lenet", lenet, 512},
		{"cifar10_quick", cifarQuick, 100},
	} {
		b.Run(fmt.Sprintf("%s/b%d", c.name, c.batch), func(b *testing.B) {
			n := buildNet(b, c.text, c.batch)
			names := n.LayerNames()
			fwd := make([]time.Duration, len(names))
			bwd := make([]time.Duration, len(names))
			step := func() {
				n.ClearParamDiffs()
				for i := range names {
					t0 := time.Now()
					if _, err := n.ForwardLayer(i); err != nil {
						b.Fatal(err)
					}
					fwd[i] += time.Since(t0)
				}
				for i := len(names) - 1; i >= 0; i-- {
					t0 := time.Now()
					if err := n.BackwardLayer(i); err != nil {
						b.Fatal(err)
					}
					bwd[i] += time.Since(t0)
				}
			}
			for range 3 { // warm-up: allocate activations
				step()
			}
			clear(fwd)
			clear(bwd)
			cpu0 := processCPU()
			for b.Loop() {
				step()
			}
			// CPU time of the whole process per iteration: on a loaded
			// machine wall time says little, CPU time what the work costs.
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e6, "cpu_ms")
			for i, name := range names {
				b.ReportMetric(float64(fwd[i]+bwd[i])/float64(b.N)/1e6, name+"_ms")
			}
			b.ReportMetric(float64(c.batch)*float64(b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

// processCPU returns the user+system CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
