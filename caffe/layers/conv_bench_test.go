package layers

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/caffe/layer/layertest"
	"github.com/gocaffe/gocaffe/kernels"
)

// visionBench is one layer of LeNet or CIFAR-10 quick at a batch size.
type visionBench struct {
	name  string
	text  string
	shape []int // bottom shape
	// propagate is false for layers fed by the data layer (no bottom diff).
	propagate bool
}

func visionBenches() []visionBench {
	var bs []visionBench
	for _, n := range []int{64, 512} {
		bs = append(bs,
			visionBench{"lenet/conv1", `type: "Convolution" convolution_param { num_output: 20 kernel_size: 5 stride: 1 weight_filler { type: "xavier" } }`, []int{n, 1, 28, 28}, false},
			visionBench{"lenet/pool1", `type: "Pooling" pooling_param { pool: MAX kernel_size: 2 stride: 2 }`, []int{n, 20, 24, 24}, true},
			visionBench{"lenet/conv2", `type: "Convolution" convolution_param { num_output: 50 kernel_size: 5 stride: 1 weight_filler { type: "xavier" } }`, []int{n, 20, 12, 12}, true},
			visionBench{"lenet/pool2", `type: "Pooling" pooling_param { pool: MAX kernel_size: 2 stride: 2 }`, []int{n, 50, 8, 8}, true},
			visionBench{"lenet/ip1", `type: "InnerProduct" inner_product_param { num_output: 500 weight_filler { type: "xavier" } }`, []int{n, 50, 4, 4}, true},
			visionBench{"lenet/ip2", `type: "InnerProduct" inner_product_param { num_output: 10 weight_filler { type: "xavier" } }`, []int{n, 500}, true},
		)
	}
	const n = 100
	bs = append(bs,
		visionBench{"cifar/conv1", `type: "Convolution" convolution_param { num_output: 32 pad: 2 kernel_size: 5 stride: 1 weight_filler { type: "gaussian" std: 0.0001 } }`, []int{n, 3, 32, 32}, false},
		visionBench{"cifar/pool1", `type: "Pooling" pooling_param { pool: MAX kernel_size: 3 stride: 2 }`, []int{n, 32, 32, 32}, true},
		visionBench{"cifar/conv2", `type: "Convolution" convolution_param { num_output: 32 pad: 2 kernel_size: 5 stride: 1 weight_filler { type: "gaussian" std: 0.01 } }`, []int{n, 32, 16, 16}, true},
		visionBench{"cifar/pool2", `type: "Pooling" pooling_param { pool: AVE kernel_size: 3 stride: 2 }`, []int{n, 32, 16, 16}, true},
		visionBench{"cifar/conv3", `type: "Convolution" convolution_param { num_output: 64 pad: 2 kernel_size: 5 stride: 1 weight_filler { type: "gaussian" std: 0.01 } }`, []int{n, 32, 8, 8}, true},
		visionBench{"cifar/pool3", `type: "Pooling" pooling_param { pool: AVE kernel_size: 3 stride: 2 }`, []int{n, 64, 8, 8}, true},
		visionBench{"cifar/ip1", `type: "InnerProduct" inner_product_param { num_output: 64 weight_filler { type: "gaussian" std: 0.1 } }`, []int{n, 64, 4, 4}, true},
	)
	return bs
}

// BenchmarkVision times Forward and Backward of LeNet's and CIFAR-10
// quick's heavy layers in float32, one line per layer, pass and batch.
func BenchmarkVision(b *testing.B) {
	r, err := Standard()
	if err != nil {
		b.Fatal(err)
	}
	for _, vb := range visionBenches() {
		b.Run(fmt.Sprintf("%s/b%d", vb.name, vb.shape[0]), func(b *testing.B) {
			p := parse(b, vb.text)
			l, err := layer.New[float32](r, layer.Context{Param: p, Phase: caffepb.Phase_TRAIN, Rand: layertest.NewRand(1)})
			if err != nil {
				b.Fatal(err)
			}
			bottom := []*blob.Blob[float32]{layertest.Gaussian[float32](layertest.NewRand(2), 0, 1, vb.shape...)}
			top := layertest.Tops[float32](1)
			if err := layertest.SetupReshape(l, bottom, top); err != nil {
				b.Fatal(err)
			}
			layertest.FillGaussian(top[0], layertest.NewRand(3), 0, 1)
			copy(top[0].Diff(), top[0].Data())
			b.Run("fwd", func(b *testing.B) {
				for b.Loop() {
					if err := l.Forward(bottom, top); err != nil {
						b.Fatal(err)
					}
				}
			})
			bwd := func(b *testing.B) {
				prop := []bool{vb.propagate}
				for b.Loop() {
					if err := l.Backward(top, prop, bottom); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.Run("bwd", bwd)
			// The other data gradient's time beside the chosen one: col2im
			// where the flipped convolution runs, and the other way round
			// where stride 1 allows it.
			if c, ok := l.(*convolution[float32]); ok && vb.propagate {
				defer func(m int) { flipMode = m }(flipMode)
				if c.flippedDataGrad() {
					flipMode = flipNever
					b.Run("bwd-col2im", bwd)
				} else if flipMode = flipAlways; c.flippedDataGrad() {
					b.Run("bwd-flipped", bwd)
				}
			}
		})
	}
}

// BenchmarkConvRoutes times Forward and Backward (weight, bias and data
// gradients) of 3×3 "same" convolutions of VGG-16, ResNet-50 and GoogLeNet
// in float32 with each route forced (Winograd F(2,3) and F(4,3)), and with auto, at batch 2 (GOCAFFE_BENCH_CONV_N sets another) (an image
// per core on the 2-core development VM: the figure is the time of two
// images, one on each core). The weight gradient's path is the same on
// every route.
func BenchmarkConvRoutes(b *testing.B) {
	r, err := Standard()
	if err != nil {
		b.Fatal(err)
	}
	shapes := []struct {
		name    string
		c, k, h int
	}{
		{"vgg-resnet/64x56", 64, 64, 56},
		{"vgg-resnet/128x28", 128, 128, 28},
		{"vgg-resnet/256x14", 256, 256, 14},
		{"vgg-resnet/512x7", 512, 512, 7},
		{"googlenet-3a/96-128x28", 96, 128, 28},
	}
	n := benchConvN()
	for _, s := range shapes {
		text := fmt.Sprintf(`type: "Convolution" convolution_param { num_output: %d kernel_size: 3 pad: 1 weight_filler { type: "gaussian" std: 0.01 } }`, s.k)
		for _, route := range []kernels.ConvRoute{kernels.RouteGemm, kernels.RouteImplicit, kernels.RouteWinograd, kernels.RouteWinograd4, kernels.RouteAuto} {
			b.Run(fmt.Sprintf("%s/%v", s.name, route), func(b *testing.B) {
				dev := newRouteDevice(route, nil)
				l, err := layer.New[float32](r, layer.Context{Param: parse(b, text), Phase: caffepb.Phase_TRAIN, Rand: layertest.NewRand(1), Device: dev})
				if err != nil {
					b.Fatal(err)
				}
				bottom := []*blob.Blob[float32]{layertest.Gaussian[float32](layertest.NewRand(2), 0, 1, n, s.c, s.h, s.h)}
				top := layertest.Tops[float32](1)
				if err := layertest.SetupReshape(l, bottom, top); err != nil {
					b.Fatal(err)
				}
				layertest.FillGaussian(top[0], layertest.NewRand(3), 0, 1)
				copy(top[0].Diff(), top[0].Data())
				// The first passes choose the routes (auto measures).
				if err := l.Forward(bottom, top); err != nil {
					b.Fatal(err)
				}
				if err := l.Backward(top, []bool{true}, bottom); err != nil {
					b.Fatal(err)
				}
				c := l.(*convolution[float32])
				b.Logf("routes: forward %v, data %v", c.routing.route[kernels.PassForward], c.routing.route[kernels.PassData])
				b.Run("fwd", func(b *testing.B) {
					for b.Loop() {
						if err := l.Forward(bottom, top); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.Run("bwd", func(b *testing.B) {
					for b.Loop() {
						if err := l.Backward(top, []bool{true}, bottom); err != nil {
							b.Fatal(err)
						}
					}
				})
			})
		}
	}
}

// benchConvN is BenchmarkConvRoutes' batch: 2 (an image per core on the
// development VM), or GOCAFFE_BENCH_CONV_N.
func benchConvN() int {
	if n, err := strconv.Atoi(os.Getenv("GOCAFFE_BENCH_CONV_N")); err == nil && n > 0 {
		return n
	}
	return 2
}
