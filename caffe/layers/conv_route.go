package layers

import (
	"fmt"
	"slices"
	"time"

	"github.com/gocaffe/gocaffe/kernels"
)

// The host convolution's routes. Each pass (forward, data gradient) of a
// shape runs one of: Im2col and a GEMM (RouteGemm; for the data gradient
// Wᵀ·dY and col2im, or the flipped convolution through Im2col, see
// flippedDataGrad), the implicit product (RouteImplicit; the data gradient
// as the flipped convolution), or Winograd F(2,3) or F(4,3)
// (RouteWinograd, RouteWinograd4; 3×3, stride 1, the data gradient
// flipped with padding 2-pad). A backend with a
// ConvRouter says which: by default the fixed rule (ruleRoute, the same in
// every process), a route its setting forces, or under auto the fastest of
// the eligible routes timed on the layer's own buffers at the pass's first
// run, kept by the backend per shape for every net on it. The weight gradient
// keeps its path (the implicit ConvWeightsT, or the columns and a GEMM).

// routeSamples is how many times each eligible route is timed; the
// fastest time of each counts.
const routeSamples = 5

// convRouting is a layer's routes for the shape they were chosen for.
type convRouting struct {
	shape kernels.ConvShape
	set   [2]bool
	route [2]kernels.ConvRoute
}

// convShape is the layer's current shape in the backend's terms.
func (l *convBase[T]) convShape() kernels.ConvShape {
	return kernels.ConvShape{N: l.num, C: l.imC, H: l.imH, W: l.imW, K: l.outC, Groups: l.spec.group,
		OH: l.colH, OW: l.colW, Geom: l.kgeom()}
}

// winograd returns the backend's Winograd kernels, or nil where they do
// not take the layer's window.
func (l *convolution[T]) winograd() kernels.WinogradConv[T] {
	wc, ok := l.be.(kernels.WinogradConv[T])
	if !ok || l.deconv || !wc.WinogradTakes(l.kgeom()) {
		return nil
	}
	return wc
}

// routeCandidates returns the routes that can run pass p at the layer's
// shape, RouteGemm first.
func (l *convolution[T]) routeCandidates(p kernels.ConvPass) []kernels.ConvRoute {
	rs := []kernels.ConvRoute{kernels.RouteGemm}
	if l.implicit() != nil && (p == kernels.PassForward || l.flippable()) {
		rs = append(rs, kernels.RouteImplicit)
	}
	if g := l.spec.geom; l.winograd() != nil && (p == kernels.PassForward || g.ph <= 2 && g.pw <= 2) {
		rs = append(rs, kernels.RouteWinograd, kernels.RouteWinograd4)
	}
	return rs
}

// fixedRoute is pass p's route by the fixed rule, for backends without a
// ConvRouter and for a forced route that does not take the shape: the
// implicit product where its K (kdim, or the flipped num_output·kh·kw) is
// at least implicitForwardMin, else the GEMM.
func (l *convolution[T]) fixedRoute(p kernels.ConvPass) kernels.ConvRoute {
	if l.implicit() == nil {
		return kernels.RouteGemm
	}
	if p == kernels.PassForward {
		if l.kdim >= implicitForwardMin {
			return kernels.RouteImplicit
		}
		return kernels.RouteGemm
	}
	g := l.spec.geom
	if l.flippedDataGrad() && l.outC/l.spec.group*g.kh*g.kw >= implicitForwardMin {
		return kernels.RouteImplicit
	}
	return kernels.RouteGemm
}

// winogradRuleMinPlane is the smallest output plane (positions) at which
// the rule takes Winograd F(2,3) for a 3×3 stride-1 pass. Measured at one
// image a core on the development VM (AVX2; BENCHMARKS.md), Winograd beat
// the implicit product 1.07–1.49× at 64×56², 128×28², 256×14² and 96×28²;
// at 7×7 planes measured choices went both ways (GoogLeNet's two 7×7
// layers took the implicit product), and the portable level's Winograd
// lost 2× at 512×7², so smaller planes keep the fixed rule.
const winogradRuleMinPlane = 14 * 14

// winograd4RuleMinPlane is the smallest output plane at which the rule
// takes Winograd F(4,3) over F(2,3). Measured the same way, F(4,3) beat
// F(2,3) 1.3–1.5× at 64×56², 128×28² and 96×28² on AVX2 and 1.4–2.8× on
// the portable level; at 256×14² it gained 0–15 % on AVX2 but lost 2.1× on
// the portable level, and at 512×7² (4 tiles of 4×4 a plane: too few
// columns for the GEMMs) it lost 3× on AVX2.
const winograd4RuleMinPlane = 28 * 28

// ruleRoute is pass p's route by RouteRule, from the shape alone: Winograd
// where it is a candidate and the pass's output plane has at least
// winogradRuleMinPlane positions (F(4,3) from winograd4RuleMinPlane, else
// F(2,3)), else fixedRoute.
func (l *convolution[T]) ruleRoute(p kernels.ConvPass, cands []kernels.ConvRoute) kernels.ConvRoute {
	plane := l.colH * l.colW
	if p == kernels.PassData {
		plane = l.imH * l.imW
	}
	switch {
	case plane >= winograd4RuleMinPlane && slices.Contains(cands, kernels.RouteWinograd4):
		return kernels.RouteWinograd4
	case plane >= winogradRuleMinPlane && slices.Contains(cands, kernels.RouteWinograd):
		return kernels.RouteWinograd
	}
	return l.fixedRoute(p)
}

// routeFor returns pass p's route at the layer's shape: the one chosen
// before for this shape, else the forced one, else the one the backend
// keeps, else the fastest of the candidates by measure (one timed run of
// a route), which the backend then keeps.
func (l *convolution[T]) routeFor(p kernels.ConvPass, measure func(kernels.ConvRoute) time.Duration) (kernels.ConvRoute, error) {
	shape := l.convShape()
	if l.routing.shape != shape {
		l.routing = convRouting{shape: shape}
	}
	if l.routing.set[p] {
		return l.routing.route[p], nil
	}
	r, err := l.chooseRoute(p, shape, measure)
	if err != nil {
		return r, err
	}
	l.routing.set[p], l.routing.route[p] = true, r
	return r, nil
}

func (l *convolution[T]) chooseRoute(p kernels.ConvPass, shape kernels.ConvShape, measure func(kernels.ConvRoute) time.Duration) (kernels.ConvRoute, error) {
	rt, ok := l.be.(kernels.ConvRouter)
	if !ok {
		return l.fixedRoute(p), nil
	}
	mode, err := rt.ConvRouteMode()
	if err != nil {
		return kernels.RouteGemm, err
	}
	cands := l.routeCandidates(p)
	if mode == kernels.RouteRule {
		return l.ruleRoute(p, cands), nil
	}
	if mode != kernels.RouteAuto {
		for _, c := range cands {
			if c == mode {
				return c, nil
			}
		}
		return l.fixedRoute(p), nil
	}
	if len(cands) == 1 {
		return cands[0], nil
	}
	key := kernels.ConvRouteKey{Shape: shape, Pass: p}
	if r, ok := rt.ConvRoute(key); ok {
		return r, nil
	}
	best := map[kernels.ConvRoute]time.Duration{}
	for range routeSamples {
		for _, c := range cands {
			d := measure(c)
			if b, ok := best[c]; !ok || d < b {
				best[c] = d
			}
		}
	}
	r := cands[0]
	times := make(map[kernels.ConvRoute]float64, len(best))
	for _, c := range cands {
		times[c] = best[c].Seconds()
		if best[c] < best[r] {
			r = c
		}
	}
	rt.SetConvRoute(key, r, times)
	return r, nil
}

// timePass returns the time of a pass by one route, prep (the weights'
// packing, once a pass) and fn (one image) over the batch, from timing
// prep once and fn over the batch's first images, one per worker.
func (l *convolution[T]) timePass(workers int, prep func(), fn func(wk, n int)) time.Duration {
	t0 := time.Now()
	prep()
	tp := time.Since(t0)
	s := max(1, min(l.num, workers))
	t0 = time.Now()
	l.be.ParallelDynamic(workers, s, 1, func(wk, lo, hi int) {
		for n := lo; n < hi; n++ {
			fn(wk, n)
		}
	})
	return tp + time.Since(t0)*time.Duration(max(1, l.num))/time.Duration(s)
}

// prepForward makes what route r's forward pass reads from the weights w:
// the implicit product's packing (wPack) or the Winograd transform (wgPack).
func (l *convolution[T]) prepForward(r kernels.ConvRoute, w kernels.Vec[T]) {
	switch r {
	case kernels.RouteImplicit:
		l.packWeights(w, 0)
	case kernels.RouteWinograd, kernels.RouteWinograd4:
		l.wgPack = l.packWinograd(r.WinogradTile(), w, l.outC/l.spec.group, l.imC/l.spec.group, l.wgPack)
	}
}

// packWinograd transforms each group's oc×c×3×3 weights of w for output
// tiles of m×m into dst (reallocated when short) and returns it.
func (l *convolution[T]) packWinograd(m int, w kernels.Vec[T], oc, c int, dst kernels.Vec[T]) kernels.Vec[T] {
	wc := l.winograd()
	G, n := l.spec.group, wc.WinogradPackLen(m, oc, c)
	dst = l.sized(dst, G*n, false)
	for g := 0; g < G; g++ {
		wc.WinogradPack(m, w.Slice(g*oc*c*9, (g+1)*oc*c*9), oc, c, dst.Slice(g*n, (g+1)*n))
	}
	return dst
}

// forwardImage overwrites yn with image xn's convolution by route r (no
// bias), from what prepForward made; the GEMM route lays its columns out
// in col.
func (l *convolution[T]) forwardImage(r kernels.ConvRoute, w, xn, yn, col kernels.Vec[T]) {
	switch r {
	case kernels.RouteImplicit:
		l.implicitForward(l.implicit(), xn, yn)
	case kernels.RouteWinograd, kernels.RouteWinograd4:
		l.winogradImage(r.WinogradTile(), xn, l.imC, l.imH, l.imW, l.spec.geom.ph, l.spec.geom.pw, l.colH, l.colW, l.outC, l.wgPack, yn)
	default:
		l.gemmForward(xn, w, yn, col)
	}
}

// winogradImage overwrites out (oc×oh×ow) with the 3×3 stride-1
// convolution of one image im (c×h×w, padding ph, pw), per group, by the
// weights u that packWinograd transformed for output tiles of m×m.
func (l *convolution[T]) winogradImage(m int, im kernels.Vec[T], c, h, w, ph, pw, oh, ow, oc int, u, out kernels.Vec[T]) {
	wc := l.winograd()
	G := l.spec.group
	cg, og := c/G, oc/G
	n := wc.WinogradPackLen(m, og, cg)
	for g := 0; g < G; g++ {
		wc.WinogradForward(m, im.Slice(g*cg*h*w, (g+1)*cg*h*w), cg, h, w, ph, pw, oh, ow, u.Slice(g*n, (g+1)*n), og,
			out.Slice(g*og*oh*ow, (g+1)*og*oh*ow))
	}
}

// prepData makes what route r's data gradient reads from the weights w,
// for workers workers: Wᵀ (col2im) or the flipped weights (Im2col), their
// implicit packing (fPack), or their Winograd transform (wgFPack).
func (l *convolution[T]) prepData(r kernels.ConvRoute, w kernels.Vec[T], workers int) {
	switch r {
	case kernels.RouteImplicit:
		l.packFlipped(l.flipWeights(w), 0)
	case kernels.RouteWinograd, kernels.RouteWinograd4:
		G := l.spec.group
		l.wgFPack = l.packWinograd(r.WinogradTile(), l.flipWeights(w), l.imC/G, l.outC/G, l.wgFPack)
	default:
		if l.flippedDataGrad() {
			l.flipWeights(w)
			l.flipBuffers(workers)
		} else {
			l.transposeWeights(w)
		}
	}
}

// dataImage overwrites dxn with the data gradient of one image's top diff
// dyn by route r, from what prepData made, on worker wk's buffers.
func (l *convolution[T]) dataImage(r kernels.ConvRoute, dyn, dxn kernels.Vec[T], wk int) {
	switch r {
	case kernels.RouteImplicit:
		l.implicitBackwardFlipped(l.implicit(), dyn, dxn)
	case kernels.RouteWinograd, kernels.RouteWinograd4:
		g := l.spec.geom
		l.winogradImage(r.WinogradTile(), dyn, l.outC, l.colH, l.colW, 2-g.ph, 2-g.pw, l.imH, l.imW, l.imC, l.wgFPack, dxn)
	default:
		if l.flippedDataGrad() {
			l.gemmBackwardFlipped(dyn, l.wT, dxn, l.fcols[wk])
		} else {
			l.gemmBackwardT(dyn, l.wT, dxn, l.cols[wk])
		}
	}
}

// routeError wraps a route setting's error with the layer's name.
func (l *convolution[T]) routeError(err error) error {
	return fmt.Errorf("convolution %q: %w", l.ctx.Param.GetName(), err)
}
