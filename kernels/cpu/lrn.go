package cpu

import (
	"math"

	"github.com/gocaffe/gocaffe/kernels"
)

// LRN kernels (caffe/layers LRN): see kernels.LRNGeom.

// powNeg is math.Pow(s, e) for the LRN scale (s ≥ k > 0), with Caffe's
// default β = 0.75 as 1/√(s·√s): two square roots (one instruction each)
// where math.Pow's Exp and Log took 70–80 % of CaffeNet's LRN time. The
// float64 results differ from math.Pow's by an ulp or two, below float32's
// precision.
func powNeg(s, e float64) float64 {
	if e == -0.75 {
		return 1 / math.Sqrt(s*math.Sqrt(s))
	}
	return math.Pow(s, e)
}

func lrnForward[T Float](x, scale, y []T, g kernels.LRNGeom) {
	negBeta := -g.Beta
	plane := g.H * g.W
	if g.Across {
		aos := T(g.Alpha / float64(g.Size))
		img := g.C * plane
		Parallel(g.N, func(_, lo, hi int) {
			zeroUpper() // math.Pow is SSE code: see zeroUpper
			for n := lo; n < hi; n++ {
				xn, yn, sn := x[n*img:(n+1)*img], y[n*img:(n+1)*img], scale[n*img:(n+1)*img]
				for c := 0; c < g.C; c++ {
					s := sn[c*plane : (c+1)*plane]
					for i := range s {
						s[i] = T(g.K)
					}
					c0, c1 := g.AcrossWindow(c)
					for cc := c0; cc < c1; cc++ {
						for i, v := range xn[cc*plane : (cc+1)*plane] {
							s[i] += aos * v * v
						}
					}
					yc, xc := yn[c*plane:(c+1)*plane], xn[c*plane:(c+1)*plane]
					for i, sv := range s {
						yc[i] = xc[i] * T(powNeg(float64(sv), negBeta))
					}
				}
			}
		})
		return
	}
	aos := T(g.Alpha / float64(g.Size*g.Size))
	Parallel(g.N*g.C, func(_, lo, hi int) {
		zeroUpper()
		for p := lo; p < hi; p++ {
			xp, yp, sp := x[p*plane:(p+1)*plane], y[p*plane:(p+1)*plane], scale[p*plane:(p+1)*plane]
			for r := 0; r < g.H; r++ {
				r0, r1 := g.SpatialWindow(r, g.H)
				for q := 0; q < g.W; q++ {
					q0, q1 := g.SpatialWindow(q, g.W)
					var sum T
					for rr := r0; rr < r1; rr++ {
						for _, v := range xp[rr*g.W+q0 : rr*g.W+q1] {
							sum += v * v
						}
					}
					i := r*g.W + q
					sp[i] = 1 + aos*sum
					yp[i] = xp[i] * T(powNeg(float64(sp[i]), negBeta))
				}
			}
		}
	})
	return
}

func lrnBackward[T Float](x, y, scale, dy, dx []T, g kernels.LRNGeom) {
	negBeta := -g.Beta
	plane := g.H * g.W
	if g.Across {
		cr := T(2 * g.Alpha * g.Beta / float64(g.Size))
		img := g.C * plane
		Parallel(g.N, func(_, lo, hi int) {
			zeroUpper()
			ratio := make([]T, img) // dy·y/scale for one image
			acc := make([]T, plane)
			for n := lo; n < hi; n++ {
				o := n * img
				for i := range ratio {
					ratio[i] = dy[o+i] * y[o+i] / scale[o+i]
				}
				for c := 0; c < g.C; c++ {
					clear(acc)
					c0, c1 := g.AcrossWindow(c)
					for cc := c0; cc < c1; cc++ {
						Axpy(1, ratio[cc*plane:(cc+1)*plane], acc)
					}
					b := o + c*plane
					for i := 0; i < plane; i++ {
						dx[b+i] = dy[b+i]*T(powNeg(float64(scale[b+i]), negBeta)) - cr*x[b+i]*acc[i]
					}
				}
			}
		})
		return
	}
	cr := T(2 * g.Alpha * g.Beta / float64(g.Size*g.Size))
	Parallel(g.N*g.C, func(_, lo, hi int) {
		zeroUpper()
		ratio := make([]T, plane)
		for p := lo; p < hi; p++ {
			o := p * plane
			for i := range ratio {
				ratio[i] = dy[o+i] * y[o+i] / scale[o+i]
			}
			for r := 0; r < g.H; r++ {
				r0, r1 := g.SpatialWindow(r, g.H)
				for q := 0; q < g.W; q++ {
					q0, q1 := g.SpatialWindow(q, g.W)
					var sum T
					for rr := r0; rr < r1; rr++ {
						for _, v := range ratio[rr*g.W+q0 : rr*g.W+q1] {
							sum += v
						}
					}
					i := o + r*g.W + q
					dx[i] = dy[i]*T(powNeg(float64(scale[i]), negBeta)) - cr*x[i]*sum
				}
			}
		}
	})
	return
}
