package layers

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/caffe/layer/layertest"
	"github.com/gocaffe/gocaffe/kernels"
)

// routeDevice is the CPU device with a route mode and a route cache of its
// own (a test's; the CPU's own router is tested in kernels/cpu).
type routeDevice struct {
	kernels.Device
	f32 kernels.Backend[float32]
	f64 kernels.Backend[float64]
}

func (d routeDevice) Float32() kernels.Backend[float32] { return d.f32 }
func (d routeDevice) Float64() kernels.Backend[float64] { return d.f64 }

// newRouteDevice returns a routeDevice forcing mode, or failing every
// route choice with err.
func newRouteDevice(mode kernels.ConvRoute, err error) routeDevice {
	d := layer.Context{}.DeviceOrCPU()
	return routeDevice{Device: d, f32: newRouteBackend(d.Float32(), mode, err), f64: newRouteBackend(d.Float64(), mode, err)}
}

// routeBackend is a CPU backend with its own ConvRouter.
type routeBackend[T blob.Float] struct {
	kernels.Backend[T]
	kernels.WinogradConv[T]
	ic   kernels.ImplicitConv[T] // not embedded: its method ImplicitConv would be hidden by the field's name
	mode kernels.ConvRoute
	err  error
	kept map[kernels.ConvRouteKey]kernels.ConvRoute
}

func newRouteBackend[T blob.Float](be kernels.Backend[T], mode kernels.ConvRoute, err error) *routeBackend[T] {
	return &routeBackend[T]{Backend: be, ic: be.(kernels.ImplicitConv[T]), WinogradConv: be.(kernels.WinogradConv[T]),
		mode: mode, err: err, kept: map[kernels.ConvRouteKey]kernels.ConvRoute{}}
}

func (b *routeBackend[T]) ImplicitConv() bool { return b.ic.ImplicitConv() }
func (b *routeBackend[T]) ConvWeightsT(im kernels.Vec[T], c, h, w int, g kernels.ConvGeom, oh, ow int, dy kernels.Vec[T], oc int, dwT kernels.Vec[T], ldc int, beta T) {
	b.ic.ConvWeightsT(im, c, h, w, g, oh, ow, dy, oc, dwT, ldc, beta)
}
func (b *routeBackend[T]) ConvPackLen(oc, kdim int) int { return b.ic.ConvPackLen(oc, kdim) }
func (b *routeBackend[T]) ConvPack(w kernels.Vec[T], oc, kdim int, packed kernels.Vec[T]) {
	b.ic.ConvPack(w, oc, kdim, packed)
}
func (b *routeBackend[T]) ConvForward(im kernels.Vec[T], c, h, w int, g kernels.ConvGeom, oh, ow int, packed kernels.Vec[T], oc int, out kernels.Vec[T]) {
	b.ic.ConvForward(im, c, h, w, g, oh, ow, packed, oc, out)
}

func (b *routeBackend[T]) ConvRouteMode() (kernels.ConvRoute, error) { return b.mode, b.err }
func (b *routeBackend[T]) ConvRoute(k kernels.ConvRouteKey) (kernels.ConvRoute, bool) {
	r, ok := b.kept[k]
	return r, ok
}
func (b *routeBackend[T]) SetConvRoute(k kernels.ConvRouteKey, r kernels.ConvRoute, _ map[kernels.ConvRoute]float64) {
	b.kept[k] = r
}

// routeCases are the convolutions each forced route is checked at: the
// shared convCases and 3×3 stride-1 ones at odd sizes (Winograd's last
// tiles half outside the output, every padding it takes in both passes,
// groups, many channels).
func routeCases() []convCase {
	return append(convCases(),
		convCase{"num_output: 5 kernel_size: 3", 2, 3, 7, 5, 5, 1, convGeom{3, 3, 1, 1, 0, 0, 1, 1}, true},
		convCase{"num_output: 5 kernel_size: 3 pad: 1", 2, 3, 7, 5, 5, 1, convGeom{3, 3, 1, 1, 1, 1, 1, 1}, true},
		convCase{"num_output: 4 kernel_size: 3 pad: 2 bias_term: false", 1, 2, 5, 4, 4, 1, convGeom{3, 3, 1, 1, 2, 2, 1, 1}, false},
		convCase{"num_output: 4 kernel_h: 3 kernel_w: 3 pad_h: 0 pad_w: 2", 2, 3, 6, 3, 4, 1, convGeom{3, 3, 1, 1, 0, 2, 1, 1}, true},
		convCase{"num_output: 6 kernel_size: 3 pad: 1 group: 3", 2, 6, 5, 5, 6, 3, convGeom{3, 3, 1, 1, 1, 1, 1, 1}, true},
		convCase{"num_output: 7 kernel_size: 3 pad: 1", 2, 40, 5, 3, 7, 1, convGeom{3, 3, 1, 1, 1, 1, 1, 1}, true},
	)
}

// routeOf returns the route a layer took for pass p (RouteAuto if none).
func routeOf[T blob.Float](l any, p kernels.ConvPass) kernels.ConvRoute {
	c := l.(*convolution[T])
	if !c.routing.set[p] {
		return kernels.RouteAuto
	}
	return c.routing.route[p]
}

// TestConvolutionForcedRoutes runs the finite-difference gradient check
// (float64) and the float32-against-float64 comparison with each route
// forced on a device of its own; where the forced route does not take a
// shape the fixed rule runs. It checks that Winograd (F(2,3) and F(4,3))
// runs both passes of every 3×3 stride-1 case (the data gradient where
// pad ≤ 2).
func TestConvolutionForcedRoutes(t *testing.T) {
	for _, r := range []kernels.ConvRoute{kernels.RouteGemm, kernels.RouteImplicit, kernels.RouteWinograd, kernels.RouteWinograd4, kernels.RouteAuto, kernels.RouteRule} {
		dev := newRouteDevice(r, nil)
		o := opts{device: dev}
		for i, cc := range routeCases() {
			name := fmt.Sprintf("%v %s", r, cc.param)
			x := gauss(uint64(300+i), cc.n, cc.c, cc.h, cc.w)
			t.Run(name, func(t *testing.T) {
				gradCheck(t, layertest.Checker{Seed: uint64(i)}, cc.text("Convolution"), bl(x), 1, o)
				precision(t, layertest.Precision{Seed: uint64(20 + i)}, cc.text("Convolution"), bl(x), 1, o)
				l, top := setup(t, cc.text("Convolution"), bl(x), 1, o)
				if err := l.Forward(bl(x), top); err != nil {
					t.Fatal(err)
				}
				copy(top[0].Diff(), top[0].Data())
				if err := l.Backward(top, []bool{true}, bl(x)); err != nil {
					t.Fatal(err)
				}
				g := cc.g
				w3 := g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1
				if r.WinogradTile() > 0 && w3 {
					if got := routeOf[float64](l, kernels.PassForward); got != r {
						t.Errorf("forward route %v, want %v", got, r)
					}
					// Forced F(4,3) takes the weight gradient too, which
					// the gradient check above covered.
					if got, want := l.(*convolution[float64]).winogradWeightTile(1), 4*b2i(r == kernels.RouteWinograd4); got != want {
						t.Errorf("weight-gradient tile %d, want %d", got, want)
					}
					if got := routeOf[float64](l, kernels.PassData); got != r && g.ph <= 2 && g.pw <= 2 {
						t.Errorf("data route %v, want %v", got, r)
					}
				}
				if r == kernels.RouteGemm {
					if got := routeOf[float64](l, kernels.PassForward); got != r {
						t.Errorf("forward route %v, want %v", got, r)
					}
				}
				// float64 has no implicit products; float32 does on AVX2 and
				// AVX-512.
				if r == kernels.RouteImplicit {
					l32 := build[float32](t, cc.text("Convolution"), o).(*convolution[float32])
					x32 := []*blob.Blob[float32]{blob.New[float32](x.Shape()...)}
					for i, v := range x.Data() {
						x32[0].Data()[i] = float32(v)
					}
					top32 := layertest.Tops[float32](1)
					if err := layertest.SetupReshape(l32, x32, top32); err != nil {
						t.Fatal(err)
					}
					if err := l32.Forward(x32, top32); err != nil {
						t.Fatal(err)
					}
					if got := routeOf[float32](l32, kernels.PassForward); l32.implicit() != nil && got != r {
						t.Errorf("float32 forward route %v, want %v", got, r)
					}
				}
			})
		}
	}
}

// TestConvolutionRuleRoute checks RouteRule, the default: Winograd for
// 3×3 stride-1 passes whose output plane has at least
// winogradRuleMinPlane positions (F(4,3) from winograd4RuleMinPlane),
// the fixed rule for smaller planes and
// other kernels, the same on two devices (no timing involved), and the
// same outputs bit for bit.
func TestConvolutionRuleRoute(t *testing.T) {
	for _, c := range []struct {
		text          string
		n, c, h, w    int
		forward, data kernels.ConvRoute
	}{
		{`num_output: 8 kernel_size: 3 pad: 1`, 2, 8, 14, 14, kernels.RouteWinograd, kernels.RouteWinograd},
		{`num_output: 8 kernel_size: 3 pad: 1`, 2, 8, 28, 28, kernels.RouteWinograd4, kernels.RouteWinograd4},
		{`num_output: 8 kernel_size: 3 pad: 0`, 2, 8, 29, 29, kernels.RouteWinograd, kernels.RouteWinograd4},
		{`num_output: 8 kernel_size: 3 pad: 0`, 2, 8, 15, 15, kernels.RouteRule, kernels.RouteWinograd},
		{`num_output: 8 kernel_size: 3 pad: 1`, 2, 8, 7, 7, kernels.RouteRule, kernels.RouteRule},
		{`num_output: 8 kernel_size: 5 pad: 2`, 2, 8, 16, 16, kernels.RouteRule, kernels.RouteRule},
		{`num_output: 8 kernel_size: 3 stride: 2 pad: 1`, 2, 8, 30, 30, kernels.RouteRule, kernels.RouteRule},
	} {
		text := `type: "Convolution" convolution_param { ` + c.text + ` weight_filler { type: "gaussian" std: 0.1 } }`
		t.Run(fmt.Sprintf("%s %dx%d", c.text, c.h, c.w), func(t *testing.T) {
			var outs [2][]float64
			for i := range outs {
				o := opts{device: newRouteDevice(kernels.RouteRule, nil)}
				x := bl(gauss(9, c.n, c.c, c.h, c.w))
				l, top := forward(t, text, x, 1, o)
				copy(top[0].Diff(), top[0].Data())
				if err := l.Backward(top, []bool{true}, x); err != nil {
					t.Fatal(err)
				}
				cl := l.(*convolution[float64])
				if got, want := cl.winogradWeightTile(1), 4*b2i(c.forward == kernels.RouteWinograd4); got != want {
					t.Errorf("weight-gradient tile %d, want %d", got, want)
				}
				for p, want := range map[kernels.ConvPass]kernels.ConvRoute{kernels.PassForward: c.forward, kernels.PassData: c.data} {
					if want == kernels.RouteRule {
						want = cl.fixedRoute(p)
					}
					if got := routeOf[float64](l, p); got != want {
						t.Errorf("%v route %v, want %v", p, got, want)
					}
				}
				outs[i] = append(append(append([]float64{}, top[0].Data()...), x[0].Diff()...), cl.weight.Diff()...)
			}
			if !slices.Equal(outs[0], outs[1]) {
				t.Errorf("two devices computed different results")
			}
		})
	}
}

// TestConvolutionRouteKeptPerShape checks that a measured route is kept by
// the backend: a second layer of the same shape on the same device takes
// it without measuring, and a layer reshaped to another batch chooses
// again.
func TestConvolutionRouteKeptPerShape(t *testing.T) {
	dev := newRouteDevice(kernels.RouteAuto, nil)
	o := opts{device: dev}
	text := `type: "Convolution" convolution_param { num_output: 8 kernel_size: 3 pad: 1 weight_filler { type: "gaussian" std: 0.1 } }`
	x := bl(gauss(5, 2, 8, 9, 9))
	l1, _ := forward(t, text, x, 1, o)
	r1 := routeOf[float64](l1, kernels.PassForward)
	key := kernels.ConvRouteKey{Shape: l1.(*convolution[float64]).convShape(), Pass: kernels.PassForward}
	kept, ok := kernels.For[float64](dev).(kernels.ConvRouter).ConvRoute(key)
	if !ok || kept != r1 {
		t.Fatalf("backend keeps %v (%v), layer took %v", kept, ok, r1)
	}
	l2, _ := forward(t, text, x, 1, o)
	if r2 := routeOf[float64](l2, kernels.PassForward); r2 != r1 {
		t.Fatalf("second layer took %v, want the kept %v", r2, r1)
	}
	x3 := bl(gauss(6, 3, 8, 9, 9))
	top := layertest.Tops[float64](1)
	if err := l2.Reshape(x3, top); err != nil {
		t.Fatal(err)
	}
	if err := l2.Forward(x3, top); err != nil {
		t.Fatal(err)
	}
	key.Shape.N = 3
	if _, ok := kernels.For[float64](dev).(kernels.ConvRouter).ConvRoute(key); !ok {
		t.Fatalf("no route kept for batch 3")
	}
}

// TestConvolutionRouteSettingError checks that the backend's route
// setting error fails the pass, with the layer's name.
func TestConvolutionRouteSettingError(t *testing.T) {
	o := opts{device: newRouteDevice(kernels.RouteAuto, errors.New("GOCAFFE_CPU_CONV=\"fastest\": want auto, gemm, implicit, winograd or winograd4"))}
	text := `name: "c3" type: "Convolution" convolution_param { num_output: 2 kernel_size: 3 }`
	x := bl(gauss(7, 1, 2, 5, 5))
	l, top := setup(t, text, x, 1, o)
	err := l.Forward(x, top)
	if err == nil || !strings.Contains(err.Error(), `"c3"`) || !strings.Contains(err.Error(), "fastest") {
		t.Fatalf("Forward: %v, want the setting's error with the layer's name", err)
	}
}

// b2i is 1 for true, 0 for false.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
