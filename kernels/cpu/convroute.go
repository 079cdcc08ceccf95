package cpu

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/gocaffe/gocaffe/kernels"
	"github.com/rs/zerolog"
)

// ConvRouteSetting is the environment variable that says how the CPU
// backends run a convolution pass: rule (the default: a fixed rule from
// the shape, so that every process rounds alike and a model saved by one
// predicts bit for bit the same in another), auto (each eligible route
// timed at the pass's first run for the shape and batch, the fastest kept
// for every net on the device; the choice, and so the last bits of the
// results, may differ between processes), or gemm, implicit, winograd
// (F(2,3)) or winograd4 (F(4,3)) (that route wherever it takes the shape,
// else the rule).
const ConvRouteSetting = "GOCAFFE_CPU_CONV"

// parseConvRouteSetting reads ConvRouteSetting's value.
func parseConvRouteSetting(v string) (kernels.ConvRoute, error) {
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "" {
		return kernels.RouteRule, nil
	}
	if r, ok := kernels.ParseConvRoute(v); ok {
		return r, nil
	}
	return kernels.RouteRule, fmt.Errorf("%s=%q: want rule, auto, gemm, implicit, winograd or winograd4", ConvRouteSetting, v)
}

// DeviceOption configures NewDevice.
type DeviceOption func(*convRoutes)

// WithConvRoute forces every convolution pass onto route r where r takes
// the shape (RouteAuto: measure; RouteRule: the fixed rule), in place of
// ConvRouteSetting.
func WithConvRoute(r kernels.ConvRoute) DeviceOption {
	return func(c *convRoutes) { c.mode, c.modeErr = r, nil }
}

// WithLogger makes the device log each measured route choice at debug
// level on l (by default nothing is logged).
func WithLogger(l zerolog.Logger) DeviceOption {
	return func(c *convRoutes) { c.log = l }
}

// NewDevice returns a CPU device with its own convolution route cache,
// shared by every net that computes on it; the route mode comes from
// ConvRouteSetting unless an option sets it.
func NewDevice(opts ...DeviceOption) kernels.Device {
	mode, err := parseConvRouteSetting(os.Getenv(ConvRouteSetting))
	mk := func() *convRoutes {
		c := &convRoutes{mode: mode, modeErr: err, log: zerolog.Nop(), kept: map[kernels.ConvRouteKey]kernels.ConvRoute{}}
		for _, o := range opts {
			o(c)
		}
		return c
	}
	return &device{f32: backend[float32]{routes: mk()}, f64: backend[float64]{routes: mk()}}
}

// convRoutes is a backend's route mode and the routes it keeps per
// convolution pass and shape.
type convRoutes struct {
	mode    kernels.ConvRoute
	modeErr error
	log     zerolog.Logger
	mu      sync.Mutex
	kept    map[kernels.ConvRouteKey]kernels.ConvRoute
}

func (b backend[T]) ConvRouteMode() (kernels.ConvRoute, error) {
	if b.routes == nil {
		return kernels.RouteRule, nil
	}
	return b.routes.mode, b.routes.modeErr
}

func (b backend[T]) ConvRoute(k kernels.ConvRouteKey) (kernels.ConvRoute, bool) {
	if b.routes == nil {
		return kernels.RouteAuto, false
	}
	b.routes.mu.Lock()
	defer b.routes.mu.Unlock()
	r, ok := b.routes.kept[k]
	return r, ok
}

func (b backend[T]) SetConvRoute(k kernels.ConvRouteKey, r kernels.ConvRoute, times map[kernels.ConvRoute]float64) {
	if b.routes == nil {
		return
	}
	b.routes.mu.Lock()
	b.routes.kept[k] = r
	b.routes.mu.Unlock()
	if ev := b.routes.log.Debug(); ev.Enabled() {
		ev = ev.Str("pass", k.Pass.String()).Str("route", r.String()).
			Str("shape", k.Shape.String())
		for route, t := range times {
			ev = ev.Float64(route.String()+"_ms", t*1e3)
		}
		ev.Msg("cpu convolution route measured")
	}
}

func (backend[T]) WinogradTakes(g kernels.ConvGeom) bool { return WinogradTakes(g) }
func (backend[T]) WinogradPackLen(m, oc, c int) int      { return WinogradPackLen(m, oc, c) }
func (backend[T]) WinogradPack(m int, w kernels.Vec[T], oc, c int, u kernels.Vec[T]) {
	WinogradPack(m, w.Host(), oc, c, u.Host())
}
func (backend[T]) WinogradForward(m int, im kernels.Vec[T], c, h, w, ph, pw, oh, ow int, u kernels.Vec[T], oc int, out kernels.Vec[T]) {
	WinogradForward(m, im.Host(), c, h, w, ph, pw, oh, ow, u.Host(), oc, out.Host())
}
func (backend[T]) WinogradWeightGradLen(m, oc, c int) int { return WinogradWeightGradLen(m, oc, c) }
func (backend[T]) WinogradWeightGrad(m int, im kernels.Vec[T], c, h, w, ph, pw int, dy kernels.Vec[T], oc, oh, ow int, acc kernels.Vec[T]) {
	WinogradWeightGrad(m, im.Host(), c, h, w, ph, pw, dy.Host(), oc, oh, ow, acc.Host())
}
func (backend[T]) WinogradWeightFinish(m int, acc kernels.Vec[T], oc, c int, dw kernels.Vec[T]) {
	WinogradWeightFinish(m, acc.Host(), oc, c, dw.Host())
}
