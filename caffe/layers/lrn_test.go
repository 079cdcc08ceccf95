package layers

import (
	"math"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/layer/layertest"
)

// naiveLRN computes LRN from its definition.
func naiveLRN(x []float64, n, c, h, w, size int, alpha, beta, k float64, within bool) []float64 {
	y := make([]float64, len(x))
	pp := (size - 1) / 2
	at := func(b, ch, r, q int) float64 { return x[((b*c+ch)*h+r)*w+q] }
	for b := 0; b < n; b++ {
		for ch := 0; ch < c; ch++ {
			for r := 0; r < h; r++ {
				for q := 0; q < w; q++ {
					s := 0.0
					var scale float64
					if within {
						for rr := r - pp; rr <= r+pp; rr++ {
							for qq := q - pp; qq <= q+pp; qq++ {
								if rr >= 0 && rr < h && qq >= 0 && qq < w {
									s += at(b, ch, rr, qq) * at(b, ch, rr, qq)
								}
							}
						}
						scale = 1 + alpha/float64(size*size)*s
					} else {
						for cc := ch - pp; cc <= ch+pp; cc++ {
							if cc >= 0 && cc < c {
								s += at(b, cc, r, q) * at(b, cc, r, q)
							}
						}
						scale = k + alpha/float64(size)*s
					}
					y[((b*c+ch)*h+r)*w+q] = at(b, ch, r, q) * math.Pow(scale, -beta)
				}
			}
		}
	}
	return y
}

var lrnCases = []struct {
	text   string
	size   int
	alpha  float64
	beta   float64
	k      float64
	within bool
}{
	{`type: "LRN" lrn_param { local_size: 5 alpha: 1 beta: 0.75 }`, 5, 1, 0.75, 1, false},
	{`type: "LRN" lrn_param { local_size: 3 alpha: 0.5 beta: 0.6 k: 2 }`, 3, 0.5, 0.6, 2, false},
	{`type: "LRN" lrn_param { local_size: 3 alpha: 1 beta: 0.75 norm_region: WITHIN_CHANNEL }`, 3, 1, 0.75, 1, true},
	{`type: "LRN" lrn_param { local_size: 5 alpha: 2 beta: 0.5 k: 7 norm_region: WITHIN_CHANNEL }`, 5, 2, 0.5, 7, true},
}

func TestLRNMatchesDefinition(t *testing.T) {
	for i, c := range lrnCases {
		x := gauss(uint64(i), 2, 7, 3, 4)
		_, top := forward(t, c.text, bl(x), 1)
		f := func(v float64) float64 { return float64(float32(v)) } // the proto holds float32
		want := naiveLRN(x.Data(), 2, 7, 3, 4, c.size, f(c.alpha), f(c.beta), f(c.k), c.within)
		layertest.Near(t, c.text, top[0].Data(), want, 1e-13)
	}
}

func TestLRNHandComputed(t *testing.T) {
	// Two channels of one pixel, local_size 3, alpha 3, beta 1, k 1:
	// both see x0²+x1² = 5, scale = 1 + 3/3·5 = 6.
	x := blobOf([]int{1, 2, 1, 1}, 1, 2)
	_, top := forward(t, `type: "LRN" lrn_param { local_size: 3 alpha: 3 beta: 1 }`, bl(x), 1)
	layertest.Near(t, "across", top[0].Data(), []float64{1.0 / 6, 2.0 / 6}, 1e-15)
}

func TestLRNGradient(t *testing.T) {
	for i, c := range lrnCases {
		gradCheck(t, layertest.Checker{Seed: uint64(i)}, c.text, bl(gauss(uint64(10+i), 2, 7, 3, 4)), 1)
	}
}

func TestLRNPrecision(t *testing.T) {
	for i, c := range lrnCases {
		precision(t, layertest.Precision{Seed: uint64(i)}, c.text, bl(gauss(uint64(20+i), 2, 7, 5, 4)), 1)
	}
}

func TestLRNErrors(t *testing.T) {
	wantErr(t, "even size", setupErr(t, `type: "LRN" lrn_param { local_size: 4 }`, bl(gauss(1, 1, 3, 2, 2)), 1), "odd")
	wantErr(t, "3 axes", setupErr(t, `type: "LRN" lrn_param { local_size: 3 }`, bl(gauss(1, 3, 2, 2)), 1), "4 axes")
}
