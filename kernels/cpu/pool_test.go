package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gocaffe/gocaffe/kernels"
)

func TestMaxPool2x2PlaneMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{0, 1, 4, 5, 12, 16, 17, 40} {
		const rows, ldo = 3, 50
		w := 2*n + 1
		x := randSlice(r, 2*rows*w)
		// Ties, NaN and values at or below -FLT_MAX exercise the strict,
		// ordered comparison.
		if n > 3 {
			x[0], x[1], x[w], x[w+1] = 2, 2, 2, 2
			x[2], x[3], x[w+2], x[w+3] = float32(math.NaN()), 1, float32(math.Inf(-1)), 1
			x[4], x[5], x[w+4], x[w+5] = -math.MaxFloat32, float32(math.Inf(-1)), -math.MaxFloat32, -math.MaxFloat32
		}
		out, idx := make([]float32, rows*ldo), make([]int32, rows*ldo)
		wantOut, wantIdx := make([]float32, rows*ldo), make([]int32, rows*ldo)
		MaxPool2x2Plane(x, w, out, idx, ldo, rows, n)
		maxPool2x2PlaneGo(x, w, wantOut, wantIdx, ldo, rows, n)
		for o := range out {
			if out[o] != wantOut[o] || idx[o] != wantIdx[o] {
				t.Fatalf("n=%d output %d: (%v, %d), want (%v, %d)", n, o, out[o], idx[o], wantOut[o], wantIdx[o])
			}
		}
		if n > 3 && (idx[0] != 0 || idx[1] != 3 || idx[2] != -1) {
			t.Fatalf("n=%d: special windows gave %v, want [0 3 -1 ...]", n, idx[:3])
		}
		if n > 0 && (idx[ldo] != int32(2*w) && idx[ldo] != int32(2*w+1) && idx[ldo] != int32(3*w) && idx[ldo] != int32(3*w+1)) {
			t.Fatalf("n=%d: second output row's first index %d is outside its window", n, idx[ldo])
		}
	}
}

// TestMaxPool2x2PlaneRows4MatchesGo checks MaxPool2x2Plane on planes of 8
// columns stored back to back (LeNet's pool2, four output rows a vector)
// against the Go loop, with row counts that leave rows to the general
// loop, ties, NaN and values at or below -FLT_MAX.
func TestMaxPool2x2PlaneRows4MatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, rows := range []int{1, 3, 4, 5, 8, 11} {
		x := randSlice(r, 2*rows*8)
		if rows >= 4 {
			x[16], x[17], x[24], x[25] = 2, 2, 2, 2 // output 4
			x[18], x[19], x[26], x[27] = float32(math.NaN()), 1, float32(math.Inf(-1)), 1
			x[20], x[21], x[28], x[29] = -math.MaxFloat32, float32(math.Inf(-1)), -math.MaxFloat32, -math.MaxFloat32
			x[63] = 5 // output 15: the last of the window
		}
		out, idx := make([]float32, 4*rows), make([]int32, 4*rows)
		wantOut, wantIdx := make([]float32, 4*rows), make([]int32, 4*rows)
		MaxPool2x2Plane(x, 8, out, idx, 4, rows, 4)
		maxPool2x2PlaneGo(x, 8, wantOut, wantIdx, 4, rows, 4)
		for o := range out {
			if out[o] != wantOut[o] || idx[o] != wantIdx[o] {
				t.Fatalf("rows=%d output %d: (%v, %d), want (%v, %d)", rows, o, out[o], idx[o], wantOut[o], wantIdx[o])
			}
		}
		if rows >= 4 && (idx[4] != 16 || idx[5] != 19 || idx[6] != -1 || idx[15] != 63) {
			t.Fatalf("rows=%d: special windows gave %v, want [16 19 -1 ...] and 63 last", rows, idx[4:16])
		}
	}
}

// TestMaxPool2x2PlaneCols12MatchesGo checks MaxPool2x2Plane on rows of 24
// columns (LeNet's pool1, a window's two rows in three vectors) against
// the Go loop, with output rows ldo apart, ties, NaN and values at or
// below -FLT_MAX.
func TestMaxPool2x2PlaneCols12MatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, ldo := range []int{12, 13} {
		for _, rows := range []int{1, 2, 5, 12} {
			x := randSlice(r, 2*rows*24)
			x[20], x[21], x[44], x[45] = 2, 2, 2, 2 // output 10
			x[22], x[23], x[46], x[47] = float32(math.NaN()), 1, float32(math.Inf(-1)), 1
			x[0], x[1], x[24], x[25] = -math.MaxFloat32, float32(math.Inf(-1)), -math.MaxFloat32, -math.MaxFloat32
			out, idx := make([]float32, rows*ldo), make([]int32, rows*ldo)
			wantOut, wantIdx := make([]float32, rows*ldo), make([]int32, rows*ldo)
			MaxPool2x2Plane(x, 24, out, idx, ldo, rows, 12)
			maxPool2x2PlaneGo(x, 24, wantOut, wantIdx, ldo, rows, 12)
			for o := range out {
				if out[o] != wantOut[o] || idx[o] != wantIdx[o] {
					t.Fatalf("ldo=%d rows=%d output %d: (%v, %d), want (%v, %d)", ldo, rows, o, out[o], idx[o], wantOut[o], wantIdx[o])
				}
			}
			if idx[0] != -1 || idx[10] != 20 || idx[11] != 23 {
				t.Fatalf("ldo=%d rows=%d: special windows gave %d, %d, %d, want -1, 20, 23", ldo, rows, idx[0], idx[10], idx[11])
			}
		}
	}
}

func TestMaxPoolRowMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, stride := range []int{1, 2, 3} {
		for _, kw := range []int{1, 2, 3, 5} {
			for _, n := range []int{1, 7, 16, 17, 33} {
				nrows := 3
				rows := make([][]float32, nrows)
				base := make([]int32, nrows)
				for i := range rows {
					rows[i] = randSlice(r, (n-1)*stride+kw)
					base[i] = int32(1000 * i)
				}
				rows[0][0], rows[1][0] = 5, 5 // a tie: the first wins
				if len(rows[2]) > 1 {
					rows[2][1] = float32(math.NaN())
				}
				out, idx := make([]float32, n), make([]int32, n)
				wOut, wIdx := make([]float32, n), make([]int32, n)
				MaxPoolRow(rows, base, kw, stride, out, idx)
				maxPoolRowGo(rows, base, kw, stride, wOut, wIdx)
				for o := range out {
					if out[o] != wOut[o] || idx[o] != wIdx[o] {
						t.Fatalf("stride %d kw %d n %d output %d: (%v, %d), want (%v, %d)", stride, kw, n, o, out[o], idx[o], wOut[o], wIdx[o])
					}
				}
				if idx[0] != 0 {
					t.Fatalf("stride %d kw %d n %d: tie went to index %d, want 0", stride, kw, n, idx[0])
				}
			}
		}
	}
}

// TestAvePoolPlaneMatchesWindows compares the row-sum average pooling with
// a window-by-window float64 loop, forward and backward, at odd shapes:
// padding, kernels wider than tall, strides above the kernel (windows past
// the image) and Caffe's round-up outputs.
func TestAvePoolPlaneMatchesWindows(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, g := range []kernels.PoolGeom{
		{H: 16, W: 16, OH: 8, OW: 8, KH: 3, KW: 3, SH: 2, SW: 2},
		{H: 7, W: 9, OH: 4, OW: 5, KH: 2, KW: 3, SH: 2, SW: 2, PH: 1, PW: 2},
		{H: 5, W: 5, OH: 3, OW: 3, KH: 1, KW: 1, SH: 3, SW: 3},
		{H: 8, W: 33, OH: 8, OW: 33, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1},
		{H: 6, W: 6, OH: 1, OW: 1, KH: 6, KW: 6, SH: 1, SW: 1},
	} {
		x, dy := randSlice(r, g.H*g.W), randSlice(r, g.OH*g.OW)
		y, dx := make([]float32, g.OH*g.OW), make([]float32, g.H*g.W)
		div := AvePoolDivisors[float32](g)
		AvePoolPlane(g, x, y, make([]float32, g.W), div)
		AvePoolPlaneBackward(g, dy, dx, make([]float32, g.W), div)
		wantY, wantDx := make([]float64, len(y)), make([]float64, len(dx))
		for oy := 0; oy < g.OH; oy++ {
			for ox := 0; ox < g.OW; ox++ {
				h0, h1, w0, w1 := PoolWindow(g, oy, ox)
				size := float64(AvePoolSize(g, oy, ox))
				for iy := h0; iy < h1; iy++ {
					for ix := w0; ix < w1; ix++ {
						wantY[oy*g.OW+ox] += float64(x[iy*g.W+ix]) / size
						wantDx[iy*g.W+ix] += float64(dy[oy*g.OW+ox]) / size
					}
				}
			}
		}
		for i, v := range y {
			if math.Abs(float64(v)-wantY[i]) > 1e-5 {
				t.Fatalf("%+v: y[%d] = %v, want %v", g, i, v, wantY[i])
			}
		}
		for i, v := range dx {
			if math.Abs(float64(v)-wantDx[i]) > 1e-5 {
				t.Fatalf("%+v: dx[%d] = %v, want %v", g, i, v, wantDx[i])
			}
		}
	}
}

// TestMaxPoolPlaneMatchesScalar compares float32 max pooling (the vector
// kernels of the running level) with the float64 path (scalar loops) at
// odd shapes, with ties, NaN and -Inf: the same values and the same
// argmax indices.
func TestMaxPoolPlaneMatchesScalar(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, g := range []kernels.PoolGeom{
		{H: 32, W: 32, OH: 16, OW: 16, KH: 3, KW: 3, SH: 2, SW: 2},
		{H: 9, W: 40, OH: 4, OW: 20, KH: 3, KW: 3, SH: 2, SW: 2},
		{H: 5, W: 37, OH: 5, OW: 37, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1},
		{H: 7, W: 41, OH: 4, OW: 21, KH: 3, KW: 3, SH: 2, SW: 2, PH: 1, PW: 1},
		{H: 6, W: 41, OH: 3, OW: 21, KH: 2, KW: 2, SH: 2, SW: 2},
		{H: 5, W: 5, OH: 2, OW: 2, KH: 1, KW: 1, SH: 3, SW: 3},
		{H: 8, W: 50, OH: 3, OW: 17, KH: 2, KW: 3, SH: 3, SW: 3},
	} {
		x := randSlice(r, g.H*g.W)
		for i := 0; i < len(x); i += 7 {
			x[i] = x[i/2] // ties
		}
		x[3], x[g.W+5] = float32(math.NaN()), float32(math.Inf(-1))
		x64 := make([]float64, len(x))
		for i, v := range x {
			x64[i] = float64(v)
		}
		n := g.OH * g.OW
		y, m := make([]float32, n), make([]int32, n)
		y64, m64 := make([]float64, n), make([]int32, n)
		MaxPoolPlane(g, x, y, m)
		MaxPoolPlane(g, x64, y64, m64)
		for i := range y {
			if m[i] != m64[i] || float64(y[i]) != y64[i] {
				t.Fatalf("%+v output %d: (%v, %d), want (%v, %d)", g, i, y[i], m[i], y64[i], m64[i])
			}
		}
	}
}

// TestMaxPoolBackwardMatchesReference checks MaxPoolBackward in float32
// against the gradient summed in float64 from the same argmax indices, at
// LeNet's 2×2 windows and at overlapping, padded and odd ones, with
// windows of no input (index -1) and stale values in dx.
func TestMaxPoolBackwardMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, g := range []kernels.PoolGeom{
		{H: 24, W: 24, OH: 12, OW: 12, KH: 2, KW: 2, SH: 2, SW: 2},
		{H: 8, W: 8, OH: 4, OW: 4, KH: 2, KW: 2, SH: 2, SW: 2},
		{H: 16, W: 8, OH: 8, OW: 4, KH: 2, KW: 2, SH: 2, SW: 2},
		{H: 12, W: 8, OH: 6, OW: 4, KH: 2, KW: 2, SH: 2, SW: 2},
		{H: 6, W: 24, OH: 3, OW: 12, KH: 2, KW: 2, SH: 2, SW: 2},
		{H: 7, W: 9, OH: 4, OW: 5, KH: 3, KW: 3, SH: 2, SW: 2, PH: 1, PW: 1},
		{H: 5, W: 6, OH: 3, OW: 4, KH: 3, KW: 2, SH: 1, SW: 1},
		{H: 1, W: 3, OH: 1, OW: 2, KH: 1, KW: 2, SH: 1, SW: 1},
	} {
		const planes = 7
		in, out := g.H*g.W, g.OH*g.OW
		x := randSlice(r, planes*in)
		dy := randSlice(r, planes*out)
		y := make([]float32, planes*out)
		mask := make([]int32, planes*out)
		be := backend[float32]{}
		be.MaxPoolForward(kernels.HostVec(x), planes, g, kernels.HostVec(y), kernels.HostInts(mask))
		mask[1], mask[planes*out-1] = -1, -1
		dx := randSlice(r, planes*in) // stale values
		be.MaxPoolBackward(kernels.HostVec(dy), kernels.HostInts(mask), planes, g, kernels.HostVec(dx))
		want := make([]float64, planes*in)
		for p := 0; p < planes; p++ {
			for o := 0; o < out; o++ {
				if a := mask[p*out+o]; a >= 0 {
					want[p*in+int(a)] += float64(dy[p*out+o])
				}
			}
		}
		for i, v := range want {
			if math.Abs(float64(dx[i])-v) > 1e-6*(1+math.Abs(v)) {
				t.Fatalf("%+v: dx[%d] = %v, want %v", g, i, dx[i], v)
			}
		}
	}
}
