//go:build cuda

package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gocaffe/gocaffe/kernels"
	"github.com/gocaffe/gocaffe/kernels/cpu"
)

// Eltwise PROD and MAX's operations (Div, EltwiseMax, MaskSelect) on the
// GPU against their CPU twins in the same type, at odd sizes, through the
// kernels.Backend interface; the argmax masks must be identical.
func TestEltwiseOpsMatchCPU(t *testing.T) {
	need(t)
	b32 := gpuBackend(t)
	g := b32.(*backend[float32]).g
	t.Run("float32", func(t *testing.T) { testEltwiseOps(t, g.f32, cpu.Backend[float32]()) })
	t.Run("float64", func(t *testing.T) { testEltwiseOps(t, g.f64, cpu.Backend[float64]()) })
}

func testEltwiseOps[T Float](t *testing.T, b kernels.Backend[T], c kernels.Backend[T]) {
	r := rand.New(rand.NewPCG(31, 32))
	gv := onGPU[T]{t, b, tol[T]()}
	for _, c3 := range []struct{ n, bottoms int }{{1, 2}, {255, 3}, {257, 2}, {1003, 4}, {100003, 3}} {
		n := c3.n
		xs := make([][]T, c3.bottoms)
		gx := make([]kernels.Vec[T], c3.bottoms)
		for k := range xs {
			xs[k] = randn[T](r, n)
			if k == 2 { // ties with bottom 0: the first maximum must win
				copy(xs[k][:n/2], xs[0][:n/2])
			}
			gx[k] = gv.up(xs[k])
		}
		// Div, with y aliasing a.
		y := append([]T(nil), xs[0]...)
		gy := gv.up(y)
		c.Div(kernels.HostVec(y), kernels.HostVec(xs[1]), kernels.HostVec(y))
		b.Div(gy, gx[1], gy)
		gv.same(fmt.Sprintf("Div n=%d", n), gy, y)

		// EltwiseMax over the bottoms in order; bottom 0 overwrites y and the mask.
		hm := make([]int32, n)
		gm := b.AllocInts(n)
		b.UploadInts(gm, hm)
		for i := range y {
			y[i] = -1e30
		}
		b.Upload(gy, y)
		for k := range xs {
			c.EltwiseMax(kernels.HostVec(xs[k]), kernels.HostVec(y), kernels.HostInts(hm), k)
			b.EltwiseMax(gx[k], gy, gm, k)
		}
		gv.same(fmt.Sprintf("EltwiseMax n=%d bottoms=%d", n, c3.bottoms), gy, y)
		got := make([]T, n)
		mg := make([]T, n)
		mk := b.Alloc(n)
		// The mask, read back through MaskSelect of a ones vector per bottom.
		ones := make([]T, n)
		for i := range ones {
			ones[i] = 1
		}
		gones := gv.up(ones)
		for k := range xs {
			b.MaskSelect(gones, gm, k, mk)
			b.Download(got, mk)
			for i := range mg {
				if got[i] == 1 {
					mg[i] = T(k)
				}
			}
			// MaskSelect of a gradient against the CPU twin.
			dy := randn[T](r, n)
			dx := make([]T, n)
			c.MaskSelect(kernels.HostVec(dy), kernels.HostInts(hm), k, kernels.HostVec(dx))
			gdx := gv.up(randn[T](r, n))
			b.MaskSelect(gv.up(dy), gm, k, gdx)
			gv.same(fmt.Sprintf("MaskSelect n=%d k=%d", n, k), gdx, dx)
		}
		for i := range hm {
			if int32(mg[i]) != hm[i] {
				t.Fatalf("EltwiseMax n=%d: argmax[%d] = %v on the GPU, %d on the CPU", n, i, mg[i], hm[i])
			}
		}
	}
}

// AccuracyForward on the GPU against the CPU twin: odd shapes, ties (small
// integer scores), NaN scores, ignored positions, top 1 to 3, with and
// without the per-class accuracy; the counts are exact.
func TestAccuracyMatchesCPU(t *testing.T) {
	need(t)
	g := gpuBackend(t).(*backend[float32]).g
	t.Run("float32", func(t *testing.T) { testAccuracy(t, g.f32, cpu.Backend[float32]()) })
	t.Run("float64", func(t *testing.T) { testAccuracy(t, g.f64, cpu.Backend[float64]()) })
}

func testAccuracy[T Float](t *testing.T, b kernels.Backend[T], c kernels.Backend[T]) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, s := range []struct{ outer, channels, inner, topK int }{
		{1, 1, 1, 1}, {7, 10, 1, 1}, {13, 5, 3, 2}, {300, 11, 1, 3}, {64, 1000, 1, 5}, {3, 4, 97, 1},
	} {
		n := s.outer * s.inner
		x := make([]T, s.outer*s.channels*s.inner)
		for i := range x {
			x[i] = T(r.IntN(5))
		}
		x[len(x)/2] = T(math.NaN())
		cls := make([]int32, n)
		for i := range cls {
			cls[i] = int32(r.IntN(s.channels+1)) - 1 // -1: ignored
		}
		gx := b.Alloc(len(x))
		b.Upload(gx, x)
		gc := b.AllocInts(n)
		b.UploadInts(gc, cls)
		for _, per := range []bool{false, true} {
			acc, gacc := make([]T, 1), b.Alloc(1)
			var pc []T
			var gpc kernels.Vec[T]
			if per {
				pc, gpc = make([]T, s.channels), b.Alloc(s.channels)
			}
			c.AccuracyForward(kernels.HostVec(x), kernels.HostInts(cls), s.outer, s.channels, s.inner, s.topK, kernels.HostVec(acc), kernels.HostVec(pc))
			b.AccuracyForward(gx, gc, s.outer, s.channels, s.inner, s.topK, gacc, gpc)
			got := make([]T, 1)
			b.Download(got, gacc)
			if got[0] != acc[0] {
				t.Fatalf("%+v per-class %v: accuracy %v on the GPU, %v on the CPU", s, per, got[0], acc[0])
			}
			if per {
				gotPC := make([]T, s.channels)
				b.Download(gotPC, gpc)
				for i := range pc {
					if gotPC[i] != pc[i] {
						t.Fatalf("%+v: class %d accuracy %v on the GPU, %v on the CPU", s, i, gotPC[i], pc[i])
					}
				}
			}
		}
	}
}

// BatchNormForward and BatchNormBackward on the GPU against the CPU twins:
// odd shapes (one example, spatial 1, channels above the block size), in
// place and not, batch and global statistics; the running statistics and
// the scale factor too.
func TestBatchNormMatchesCPU(t *testing.T) {
	need(t)
	g := gpuBackend(t).(*backend[float32]).g
	t.Run("float32", func(t *testing.T) { testBatchNorm(t, g.f32, cpu.Backend[float32]()) })
	t.Run("float64", func(t *testing.T) { testBatchNorm(t, g.f64, cpu.Backend[float64]()) })
}

func testBatchNorm[T Float](t *testing.T, b kernels.Backend[T], c kernels.Backend[T]) {
	r := rand.New(rand.NewPCG(51, 52))
	gv := onGPU[T]{t, b, 10 * tol[T]()}
	for _, s := range []struct{ num, channels, spatial int }{{1, 3, 7}, {5, 4, 1}, {2, 300, 9}, {7, 3, 1001}} {
		for _, global := range []bool{false, true} {
			for _, inPlace := range []bool{false, true} {
				what := fmt.Sprintf("%+v global=%v in-place=%v", s, global, inPlace)
				n, ch := s.num*s.channels*s.spatial, s.channels
				x := randn[T](r, n)
				for i := range x {
					x[i] = x[i]*2 + 1
				}
				y, xn, mean, inv := make([]T, n), make([]T, n), make([]T, ch), make([]T, ch)
				rm, rv, f := randn[T](r, ch), randn[T](r, ch), []T{2.5}
				for i := range rv {
					rv[i] = rv[i] * rv[i]
				}
				gx, gy, gxn, gmean, ginv, grm, grv, gf := gv.up(x), gv.up(y), gv.up(xn), gv.up(mean), gv.up(inv), gv.up(rm), gv.up(rv), gv.up(f)
				hy := kernels.HostVec(y)
				if inPlace {
					y, hy, gy = x, kernels.HostVec(x), gx
				}
				c.BatchNormForward(kernels.HostVec(x), hy, kernels.HostVec(xn), s.num, ch, s.spatial, global, 1e-5, 0.9,
					kernels.HostVec(mean), kernels.HostVec(inv), kernels.HostVec(rm), kernels.HostVec(rv), kernels.HostVec(f))
				b.BatchNormForward(gx, gy, gxn, s.num, ch, s.spatial, global, 1e-5, 0.9, gmean, ginv, grm, grv, gf)
				gv.same("BatchNormForward y "+what, gy, y)
				gv.same("BatchNormForward xnorm "+what, gxn, xn)
				gv.same("BatchNormForward inv "+what, ginv, inv)
				gv.same("BatchNormForward running mean "+what, grm, rm)
				gv.same("BatchNormForward running variance "+what, grv, rv)
				gv.same("BatchNormForward factor "+what, gf, f)

				d := randn[T](r, n)
				dx := make([]T, n)
				gd, gdx := gv.up(d), gv.up(dx)
				hdx := kernels.HostVec(dx)
				if inPlace {
					dx, hdx, gdx = d, kernels.HostVec(d), gd
				}
				c.BatchNormBackward(kernels.HostVec(d), kernels.HostVec(xn), kernels.HostVec(inv), hdx, s.num, ch, s.spatial, global)
				b.BatchNormBackward(gd, gxn, ginv, gdx, s.num, ch, s.spatial, global)
				gv.same("BatchNormBackward "+what, gdx, dx)
			}
		}
	}
}

// Sigmoid and TanH forward and backward on the GPU against the CPU twins,
// at odd sizes, large |x| included, in place and not.
func TestActivationsMatchCPU(t *testing.T) {
	need(t)
	g := gpuBackend(t).(*backend[float32]).g
	t.Run("float32", func(t *testing.T) { testActivations(t, g.f32, cpu.Backend[float32]()) })
	t.Run("float64", func(t *testing.T) { testActivations(t, g.f64, cpu.Backend[float64]()) })
}

func testActivations[T Float](t *testing.T, b kernels.Backend[T], c kernels.Backend[T]) {
	r := rand.New(rand.NewPCG(61, 62))
	gv := onGPU[T]{t, b, tol[T]()}
	for _, n := range []int{1, 255, 1003, 65537} {
		for _, a := range []kernels.Activation{kernels.Sigmoid, kernels.TanH} {
			for _, inPlace := range []bool{false, true} {
				what := fmt.Sprintf("activation %d n=%d in-place=%v", a, n, inPlace)
				x := randn[T](r, n)
				x[0] = 40 // saturated
				y := make([]T, n)
				gx, gy := gv.up(x), gv.up(y)
				if inPlace {
					y, gy = x, gx
				}
				c.ActivationForward(a, kernels.HostVec(x), kernels.HostVec(y))
				b.ActivationForward(a, gx, gy)
				gv.same("forward "+what, gy, y)
				dy := randn[T](r, n)
				dx := make([]T, n)
				gdy, gdx := gv.up(dy), gv.up(dx)
				if inPlace {
					dx, gdx = dy, gdy
				}
				c.ActivationBackward(a, kernels.HostVec(y), kernels.HostVec(dy), kernels.HostVec(dx))
				b.ActivationBackward(a, gy, gdy, gdx)
				gv.same("backward "+what, gdx, dx)
			}
		}
	}
}

// onGPU uploads a test's operands to a GPU backend and checks its results
// against the CPU's, within tol (relative).
type onGPU[T Float] struct {
	t   *testing.T
	b   kernels.Backend[T]
	tol float64
}

func (g onGPU[T]) up(x []T) kernels.Vec[T] {
	v := g.b.Alloc(len(x))
	g.b.Upload(v, x)
	return v
}

func (g onGPU[T]) same(what string, v kernels.Vec[T], want []T) {
	g.t.Helper()
	got := make([]T, v.Len())
	g.b.Download(got, v)
	checkTol(g.t, what, got, f64s(want), g.tol)
}
