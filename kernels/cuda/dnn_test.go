//go:build cuda

package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gocaffe/gocaffe/kernels"
)

// cuDNN's convolutions (through kernels.Convolver, as the layer calls
// them) against a direct float64 convolution: forward, backward data and
// backward filter at odd sizes, with stride, padding, dilation, groups, a
// rectangular window and 1×1; float32 in true fp32 (FMA math) within
// 2e-5 (Winograd and FFT algorithms round differently from a direct sum),
// float64 within 1e-12, float32 with TF32 within 3e-3. Outputs that
// are overwritten start as NaN; the filter gradient starts nonzero (it is
// added to).
func TestDNNConvMatchesReference(t *testing.T) {
	need(t)
	if !dev.HasDNN() {
		t.Skipf("cuDNN not loaded, cuDNN tests skipped: %s", dev.DNN())
	}
	was, wasDirect := dev.UsesDNN(), dev.DirectConv()
	if !dev.UseDNN(true) {
		t.Fatalf("UseDNN(true) with cuDNN loaded: %s", dev.DNN())
	}
	dev.SetDirectConv(DirectOff) // cuDNN's algorithms alone (TestDirectConvMatchesReference tests the others)
	defer dev.SetDirectConv(wasDirect)
	defer dev.UseDNN(was)
	t.Log(dev.DNN())
	g := &GPU{D: dev}
	g.f32 = &backend[float32]{g: g, o: Ops[float32]{dev}}
	g.f64 = &backend[float64]{g: g, o: Ops[float64]{dev}}
	shapes := withOutputs([]kernels.ConvShape{
		{N: 3, C: 1, H: 28, W: 28, K: 20, Groups: 1, Geom: kernels.ConvGeom{KH: 5, KW: 5, SH: 1, SW: 1, DH: 1, DW: 1}},
		{N: 2, C: 3, H: 13, W: 11, K: 7, Groups: 1, Geom: kernels.ConvGeom{KH: 3, KW: 3, SH: 2, SW: 2, PH: 1, PW: 1, DH: 1, DW: 1}},
		{N: 2, C: 6, H: 9, W: 10, K: 4, Groups: 2, Geom: kernels.ConvGeom{KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, DH: 2, DW: 2}},
		{N: 3, C: 5, H: 7, W: 7, K: 6, Groups: 1, Geom: kernels.ConvGeom{KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1}},
		{N: 2, C: 4, H: 12, W: 15, K: 6, Groups: 2, Geom: kernels.ConvGeom{KH: 3, KW: 5, SH: 1, SW: 2, PH: 2, PW: 1, DH: 1, DW: 1}},
	})
	for i, s := range shapes {
		name := shapeName(i, s)
		t.Run(name+"/float32", func(t *testing.T) { checkDNNConv[float32](t, g.f32, s, 2e-5, uint64(i)) })
		t.Run(name+"/float64", func(t *testing.T) { checkDNNConv[float64](t, g.f64, s, 1e-12, uint64(i)) })
	}
	t.Run("tf32", func(t *testing.T) {
		if err := dev.SetTF32(true); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := dev.SetTF32(false); err != nil {
				t.Error(err)
			}
		}()
		checkDNNConv[float32](t, g.f32, shapes[1], 3e-3, 9)
	})
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
}

// withOutputs sets each shape's output size from its input and window.
func withOutputs(shapes []kernels.ConvShape) []kernels.ConvShape {
	for i := range shapes {
		s := &shapes[i]
		gm := s.Geom
		s.OH = (s.H+2*gm.PH-(gm.DH*(gm.KH-1)+1))/gm.SH + 1
		s.OW = (s.W+2*gm.PW-(gm.DW*(gm.KW-1)+1))/gm.SW + 1
	}
	return shapes
}

func shapeName(i int, s kernels.ConvShape) string {
	return fmt.Sprintf("%d:%dx%dx%dx%d_k%d_g%d_%dx%d_s%dx%d_p%dx%d_d%dx%d", i, s.N, s.C, s.H, s.W, s.K, s.Groups,
		s.Geom.KH, s.Geom.KW, s.Geom.SH, s.Geom.SW, s.Geom.PH, s.Geom.PW, s.Geom.DH, s.Geom.DW)
}

// checkDNNConv is checkConv, and no plan once cuDNN is not used.
func checkDNNConv[T Float](t *testing.T, b kernels.Backend[T], s kernels.ConvShape, tl float64, seed uint64) {
	checkConv(t, b, s, tl, seed)
	// Not used: the layer falls back to its own kernels.
	dev.UseDNN(false)
	if p2, why := b.(kernels.Convolver[T]).ConvPlan(s); p2 != nil || why == "" {
		t.Errorf("with UseDNN(false): a plan %v, reason %q (want none, with a reason)", p2, why)
	}
	dev.UseDNN(true)
}

// checkConv runs s's plan forward, backward data and backward filter
// against a direct float64 convolution, within tl (relative L2 error).
func checkConv[T Float](t *testing.T, b kernels.Backend[T], s kernels.ConvShape, tl float64, seed uint64) {
	cv, ok := b.(kernels.Convolver[T])
	if !ok {
		t.Fatal("the CUDA backend is not a kernels.Convolver")
	}
	p, why := cv.ConvPlan(s)
	if p == nil {
		t.Fatalf("no convolution plan: %s", why)
	}
	if c, _ := b.(*backend[T]).convs[convKey{s, dev.TF32(), dev.DNNChoice(), dev.UsesDNN(), dev.DirectConv()}]; c.c != nil {
		t.Log(c.c.Algorithms())
	}
	r := rand.New(rand.NewPCG(seed, 77))
	cg := s.C / s.Groups
	kg := s.K / s.Groups
	nx, nw, ny := s.N*s.C*s.H*s.W, s.K*cg*s.Geom.KH*s.Geom.KW, s.N*s.K*s.OH*s.OW
	x, w, dy, dw0 := rnd(r, nx), rnd(r, nw), rnd(r, ny), rnd(r, nw)
	dev64 := func(v []float64) kernels.Vec[T] {
		h := make([]T, len(v))
		for i := range v {
			h[i] = T(v[i])
		}
		d := b.Alloc(len(v))
		b.Upload(d, h)
		return d
	}
	nan := func(n int) kernels.Vec[T] {
		v := make([]float64, n)
		for i := range v {
			v[i] = math.NaN()
		}
		return dev64(v)
	}
	down := func(v kernels.Vec[T]) []T {
		h := make([]T, v.Len())
		b.Download(h, v)
		return h
	}
	// The reference, with the inputs rounded to T as the device holds them.
	round := func(v []float64) []float64 {
		o := make([]float64, len(v))
		for i := range v {
			o[i] = float64(T(v[i]))
		}
		return o
	}
	xr, wr, dyr := round(x), round(w), round(dy)
	y := make([]float64, ny)
	dx := make([]float64, nx)
	dw := round(dw0)
	gm := s.Geom
	for n := 0; n < s.N; n++ {
		for k := 0; k < s.K; k++ {
			grp := k / kg
			for oy := 0; oy < s.OH; oy++ {
				for ox := 0; ox < s.OW; ox++ {
					yi := ((n*s.K+k)*s.OH+oy)*s.OW + ox
					for c := 0; c < cg; c++ {
						ch := grp*cg + c
						for ky := 0; ky < gm.KH; ky++ {
							iy := oy*gm.SH - gm.PH + ky*gm.DH
							if iy < 0 || iy >= s.H {
								continue
							}
							for kx := 0; kx < gm.KW; kx++ {
								ix := ox*gm.SW - gm.PW + kx*gm.DW
								if ix < 0 || ix >= s.W {
									continue
								}
								xi := ((n*s.C+ch)*s.H+iy)*s.W + ix
								wi := ((k*cg+c)*gm.KH+ky)*gm.KW + kx
								y[yi] += xr[xi] * wr[wi]
								dx[xi] += dyr[yi] * wr[wi]
								dw[wi] += dyr[yi] * xr[xi]
							}
						}
					}
				}
			}
		}
	}
	xv, wv, dyv, dwv := dev64(x), dev64(w), dev64(dy), dev64(dw0)
	yv, dxv := nan(ny), nan(nx)
	p.Forward(xv, wv, yv)
	p.BackwardData(dyv, wv, dxv)
	p.BackwardFilter(xv, dyv, dwv)
	checkTol(t, "forward", down(yv), y, tl)
	checkTol(t, "backward data", down(dxv), dx, tl)
	checkTol(t, "backward filter (added to the gradient)", down(dwv), dw, tl)
	if mp, ok := p.(*mixedPlan[T]); ok {
		t.Logf("direct kernels (forward, data, filter): %v; %q", mp.choice.direct, mp.choice.why)
		// The device's log holds each of the plan's decided passes as the
		// plan decided them (goexec logs them at debug level).
		log := dev.DirectConvDecisions()
		for dir := range convDir(3) {
			if !mp.choice.decided[dir] {
				continue
			}
			want := DirectDecision{Shape: s, Elem: Size[T](), Mode: mp.mode, Pass: dir.String(),
				Direct: mp.choice.direct[dir], Why: mp.choice.why[dir]}
			if !slices.Contains(log, want) {
				t.Errorf("the device's decision log lacks %+v", want)
			}
		}
	}
}

// GoCaffe's direct convolution kernels against the same float64
// reference, alone (no cuDNN, GOCAFFE_CUDA_DIRECT_CONV=on: the tiled
// kernels where they take the shape, and the untiled ones with noTile) and,
// where cuDNN is loaded, as the auto choice that times both per direction.
// Odd sizes, stride, padding, dilation, a rectangular window, 1×1, a 7×7
// window, LeNet's two layers (b3 and b64) and CIFAR-10 quick's three
// (b4); for the tiled kernels, output channels and positions that are not
// whole tiles (33, 50, 65 rows; 64 or 32 columns), one input channel,
// reductions that are not whole steps of 8, weight gradients cut into
// one, a few (the last one partial) and many slices, and forward passes
// and data gradients split over their reduction (LeNet conv2 at b3 into
// 7 shares, at b64 into 3) or not. A shape they do not
// take (groups, or a table and tiles beyond the shared memory) gets no
// plan without cuDNN. The tiled weight gradient must repeat bit for bit.
func TestDirectConvMatchesReference(t *testing.T) {
	need(t)
	wasDNN, wasDirect := dev.UsesDNN(), dev.DirectConv()
	defer func() { dev.UseDNN(wasDNN); dev.SetDirectConv(wasDirect); dev.noTile = false }()
	g := &GPU{D: dev}
	g.f32 = &backend[float32]{g: g, o: Ops[float32]{dev}}
	g.f64 = &backend[float64]{g: g, o: Ops[float64]{dev}}
	geom := func(k, s, p, d int) kernels.ConvGeom {
		return kernels.ConvGeom{KH: k, KW: k, SH: s, SW: s, PH: p, PW: p, DH: d, DW: d}
	}
	shapes := withOutputs([]kernels.ConvShape{
		{N: 3, C: 1, H: 28, W: 28, K: 20, Groups: 1, Geom: geom(5, 1, 0, 1)},
		{N: 3, C: 20, H: 12, W: 12, K: 50, Groups: 1, Geom: geom(5, 1, 0, 1)},
		{N: 2, C: 3, H: 13, W: 11, K: 7, Groups: 1, Geom: kernels.ConvGeom{KH: 3, KW: 3, SH: 2, SW: 2, PH: 1, PW: 1, DH: 1, DW: 1}},
		{N: 2, C: 5, H: 9, W: 10, K: 9, Groups: 1, Geom: kernels.ConvGeom{KH: 3, KW: 3, SH: 1, SW: 1, PH: 2, PW: 2, DH: 2, DW: 2}},
		{N: 3, C: 5, H: 7, W: 7, K: 6, Groups: 1, Geom: kernels.ConvGeom{KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1}},
		{N: 2, C: 4, H: 12, W: 15, K: 11, Groups: 1, Geom: kernels.ConvGeom{KH: 3, KW: 5, SH: 1, SW: 2, PH: 2, PW: 1, DH: 1, DW: 1}},
		{N: 2, C: 2, H: 10, W: 9, K: 3, Groups: 1, Geom: kernels.ConvGeom{KH: 7, KW: 7, SH: 3, SW: 2, PH: 3, PW: 3, DH: 1, DW: 1}},
		// LeNet at b64 (conv1, conv2), CIFAR-10 quick's three at b4.
		{N: 64, C: 1, H: 28, W: 28, K: 20, Groups: 1, Geom: geom(5, 1, 0, 1)},
		{N: 64, C: 20, H: 12, W: 12, K: 50, Groups: 1, Geom: geom(5, 1, 0, 1)},
		{N: 4, C: 3, H: 32, W: 32, K: 32, Groups: 1, Geom: geom(5, 1, 2, 1)},
		{N: 4, C: 32, H: 16, W: 16, K: 32, Groups: 1, Geom: geom(5, 1, 2, 1)},
		{N: 4, C: 32, H: 8, W: 8, K: 64, Groups: 1, Geom: geom(5, 1, 2, 1)},
		// Tile edges: 33 and 65 output channels (64-row tiles, one and two),
		// odd channels and sizes, a 1×1 over 67 channels (a reduction of
		// 67: not whole steps), stride 2 with padding (the data gradient
		// untiled), dilation with padding, one input channel at odd sizes,
		// a weight gradient of 5·9·9 = 405 positions in 6 slices (the last
		// partial) and a table of 64·5·5 = 1600 entries.
		{N: 3, C: 7, H: 11, W: 13, K: 33, Groups: 1, Geom: geom(3, 1, 1, 1)},
		{N: 2, C: 3, H: 9, W: 7, K: 65, Groups: 1, Geom: geom(3, 1, 0, 1)},
		{N: 3, C: 67, H: 5, W: 7, K: 5, Groups: 1, Geom: geom(1, 1, 0, 1)},
		{N: 3, C: 5, H: 15, W: 14, K: 9, Groups: 1, Geom: geom(3, 2, 1, 1)},
		{N: 2, C: 6, H: 13, W: 11, K: 17, Groups: 1, Geom: geom(3, 1, 3, 3)},
		{N: 5, C: 1, H: 17, W: 19, K: 3, Groups: 1, Geom: geom(5, 1, 1, 1)},
		{N: 5, C: 3, H: 11, W: 11, K: 7, Groups: 1, Geom: geom(3, 1, 0, 1)},
		{N: 2, C: 64, H: 6, W: 5, K: 10, Groups: 1, Geom: geom(5, 1, 2, 1)},
	})
	grouped := withOutputs([]kernels.ConvShape{
		{N: 2, C: 6, H: 9, W: 10, K: 4, Groups: 2, Geom: kernels.ConvGeom{KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, DH: 1, DW: 1}},
	})[0]
	t.Run("own", func(t *testing.T) {
		dev.UseDNN(false)
		dev.SetDirectConv(DirectOn)
		for i, s := range shapes {
			t.Run(shapeName(i, s)+"/float32", func(t *testing.T) {
				checkConv[float32](t, g.f32, s, 1e-5, uint64(i))
				checkFilterRepeats[float32](t, g.f32, s)
			})
			t.Run(shapeName(i, s)+"/float64", func(t *testing.T) {
				if !directTakesAll(s, 8) {
					if p, _ := g.f64.ConvPlan(s); p != nil {
						t.Errorf("a plan for a shape the direct kernels do not take in float64")
					}
					return
				}
				checkConv[float64](t, g.f64, s, 1e-13, uint64(i))
			})
		}
		if p, why := g.f32.ConvPlan(grouped); p != nil || why == "" {
			t.Errorf("grouped convolution without cuDNN: plan %v, reason %q (want none, with a reason)", p, why)
		}
	})
	t.Run("untiled", func(t *testing.T) {
		dev.UseDNN(false)
		dev.SetDirectConv(DirectOn)
		dev.noTile = true
		defer func() { dev.noTile = false }()
		for i, s := range shapes {
			untiled := func(elem int) bool {
				return untiledTakes(s, elem, dirForward) && untiledTakes(s, elem, dirData) && untiledTakes(s, elem, dirFilter)
			}
			if untiled(4) {
				t.Run(shapeName(i, s)+"/float32", func(t *testing.T) { checkConv[float32](t, g.f32, s, 1e-5, uint64(i)) })
			}
			if untiled(8) {
				t.Run(shapeName(i, s)+"/float64", func(t *testing.T) { checkConv[float64](t, g.f64, s, 1e-13, uint64(i)) })
			}
		}
	})
	t.Run("auto", func(t *testing.T) {
		if !dev.HasDNN() {
			t.Skipf("cuDNN not loaded: %s", dev.DNN())
		}
		dev.UseDNN(true)
		dev.SetDirectConv(DirectAuto)
		for i, s := range shapes {
			t.Run(shapeName(i, s)+"/float32", func(t *testing.T) { checkConv[float32](t, g.f32, s, 2e-5, uint64(i)) })
		}
	})
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
}

// checkFilterRepeats runs the direct weight gradient of s twice from the
// same inputs and wants the same bits.
func checkFilterRepeats[T Float](t *testing.T, b *backend[T], s kernels.ConvShape) {
	r := rand.New(rand.NewPCG(5, 6))
	up := func(n int) kernels.Vec[T] {
		v := rnd(r, n)
		h := make([]T, n)
		for i := range v {
			h[i] = T(v[i])
		}
		d := b.Alloc(n)
		b.Upload(d, h)
		return d
	}
	nw := s.K * s.C * s.Geom.KH * s.Geom.KW
	x, dy := up(s.N*s.C*s.H*s.W), up(s.N*s.K*s.OH*s.OW)
	var got [2][]T
	for i := range got {
		dw := b.Alloc(nw)
		ps, ok := b.ptrs(x, dy, dw)
		if !ok {
			t.Fatal("no device pointers")
		}
		if err := b.o.DirectConvBackwardFilter(s, ps[0], ps[1], ps[2]); err != nil {
			t.Fatal(err)
		}
		got[i] = make([]T, nw)
		b.Download(got[i], dw)
	}
	for i := range got[0] {
		if got[0][i] != got[1][i] && !(got[0][i] != got[0][i] && got[1][i] != got[1][i]) {
			t.Fatalf("weight gradient [%d]: %v, then %v: not repeatable", i, got[0][i], got[1][i])
		}
	}
}

func rnd(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = r.NormFloat64()
	}
	return v
}
