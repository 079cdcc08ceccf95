package cpu

import (
	"math"

	"github.com/gocaffe/gocaffe/kernels"
)

// MaxPoolPlane max-pools one plane, recording each output's argmax (-1 for
// an empty or all-below -FLT_MAX window), scanning windows row by row with
// a strict comparison as Caffe does.
func MaxPoolPlane[T Float](g kernels.PoolGeom, xp, yp []T, mask []int32) {
	yp, mask = yp[:g.OH*g.OW], mask[:g.OH*g.OW]
	// Interior 2×2 windows of stride 2 (LeNet's pooling) in one call per
	// plane; what Caffe's round-up rule adds past them goes below.
	rows2, cols2 := 0, 0
	if g.KH == 2 && g.KW == 2 && g.SH == 2 && g.SW == 2 && g.PH == 0 && g.PW == 0 {
		rows2, cols2 = min(g.OH, g.H/2), min(g.OW, g.W/2)
		if x32, ok := any(xp).([]float32); ok {
			MaxPool2x2Plane(x32, g.W, any(yp).([]float32), mask, g.OW, rows2, cols2)
		} else {
			MaxPool2x2PlaneRef(xp, g.W, yp, mask, g.OW, rows2, cols2)
		}
	}
	// Windows that start inside the columns, vectorized over outputs:
	// all rows in one call where the kernel level has it; otherwise
	// those fully inside, row by row.
	lo := (g.PW + g.SW - 1) / g.SW
	hi := min(g.OW, (g.W+g.PW-g.KW)/g.SW+1)
	interior := false
	if xp32, ok := any(xp).([]float32); ok && rows2 == 0 {
		interior = maxPoolInterior(g, xp32, any(yp).([]float32), mask, lo)
		if interior && lo == 0 {
			return // no window starts in the left padding
		}
	}
	for oy := 0; oy < g.OH; oy++ {
		h0 := oy*g.SH - g.PH
		h1 := min(h0+g.KH, g.H)
		h0 = max(h0, 0)
		yr, mr := yp[oy*g.OW:(oy+1)*g.OW], mask[oy*g.OW:(oy+1)*g.OW]
		ox := 0
		if oy < rows2 {
			ox = cols2
		}
		if interior {
			poolMaxScalar(g, xp, yr, mr, h0, h1, 0, min(lo, g.OW))
			continue
		}
		if xp32, ok := any(xp).([]float32); ok && ox == 0 && h1 > h0 {
			if hi > lo {
				var rows [8][]float32
				var bases [8]int32
				if h1-h0 <= len(rows) {
					c0 := lo*g.SW - g.PW
					for iy := h0; iy < h1; iy++ {
						rows[iy-h0] = xp32[iy*g.W+c0 : (iy+1)*g.W]
						bases[iy-h0] = int32(iy*g.W + c0)
					}
					MaxPoolRow(rows[:h1-h0], bases[:h1-h0], g.KW, g.SW, any(yr[lo:hi]).([]float32), mr[lo:hi])
					poolMaxScalar(g, xp, yr, mr, h0, h1, 0, lo)
					ox = hi
				}
			}
		}
		poolMaxScalar(g, xp, yr, mr, h0, h1, ox, g.OW)
	}
}

// poolMaxScalar max-pools outputs [ox0, ox1) of one output row whose
// windows cover input rows [h0, h1).
func poolMaxScalar[T Float](g kernels.PoolGeom, xp, yr []T, mr []int32, h0, h1, ox0, ox1 int) {
	if ox0 >= ox1 {
		return
	}
	zeroUpper() // after the SIMD row pass: this is SSE code
	for ox := ox0; ox < ox1; ox++ {
		w0 := ox*g.SW - g.PW
		w1 := min(w0+g.KW, g.W)
		w0 = max(w0, 0)
		best, arg := T(-math.MaxFloat32), -1
		for iy := h0; iy < h1; iy++ {
			row := xp[iy*g.W : iy*g.W+w1]
			for ix := w0; ix < w1; ix++ {
				if row[ix] > best {
					best, arg = row[ix], iy*g.W+ix
				}
			}
		}
		yr[ox], mr[ox] = best, int32(arg)
	}
}

// PoolWindow returns the input rows [h0, h1) and columns [w0, w1) of
// output (y, x), clipped to the image.
func PoolWindow(g kernels.PoolGeom, y, x int) (h0, h1, w0, w1 int) {
	h0, w0 = y*g.SH-g.PH, x*g.SW-g.PW
	h1, w1 = min(h0+g.KH, g.H), min(w0+g.KW, g.W)
	return max(h0, 0), h1, max(w0, 0), w1
}

// AvePoolSize is Caffe's divisor for average pooling: the window clipped
// to the padded image, so padding counts.
func AvePoolSize(g kernels.PoolGeom, y, x int) int {
	h0, w0 := y*g.SH-g.PH, x*g.SW-g.PW
	h1, w1 := min(h0+g.KH, g.H+g.PH), min(w0+g.KW, g.W+g.PW)
	return (h1 - h0) * (w1 - w0)
}

// AvePoolDivisors returns Caffe's divisor of every output of a plane
// (AvePoolSize), the same for all planes: computed once per call instead
// of once per output.
func AvePoolDivisors[T Float](g kernels.PoolGeom) []T {
	div := make([]T, g.OH*g.OW)
	for oy := 0; oy < g.OH; oy++ {
		for ox := 0; ox < g.OW; ox++ {
			div[oy*g.OW+ox] = T(AvePoolSize(g, oy, ox))
		}
	}
	return div
}

// AvePoolPlane average-pools one plane (padding counts in the divisor, as
// in Caffe; div from AvePoolDivisors): for each output row the window's
// input rows are first summed into rs (len ≥ g.W) with whole-row vector
// adds, then each output sums its columns of rs. An input row is read once
// per output row, where a window-by-window loop read it once per window.
func AvePoolPlane[T Float](g kernels.PoolGeom, xp, yp, rs, div []T) {
	rs = rs[:g.W]
	for oy := 0; oy < g.OH; oy++ {
		h0, h1, _, _ := PoolWindow(g, oy, 0)
		if h1 > h0 {
			CopyRows(rs, g.W, xp[h0*g.W:], g.W, 1, g.W)
			AddRows(rs, 0, xp[min(h0+1, g.H-1)*g.W:], g.W, h1-h0-1, g.W)
		} else {
			clear(rs) // a window past the image (stride above the kernel)
		}
		zeroUpper() // scalar loop after the vector adds
		yr, dr := yp[oy*g.OW:(oy+1)*g.OW], div[oy*g.OW:(oy+1)*g.OW]
		for ox := range yr {
			w0 := ox*g.SW - g.PW
			w1 := min(w0+g.KW, g.W)
			var s T
			for i := max(w0, 0); i < w1; i++ {
				s += rs[i]
			}
			yr[ox] = s / dr[ox]
		}
	}
}

// AvePoolPlaneBackward overwrites one plane's dx with dy spread evenly
// over each window (div from AvePoolDivisors): per output row, the row's
// contributions are gathered in rd (len ≥ g.W), then added to each input
// row the windows cover.
func AvePoolPlaneBackward[T Float](g kernels.PoolGeom, dyp, dxp, rd, div []T) {
	rd = rd[:g.W]
	clear(dxp[:g.H*g.W])
	for oy := 0; oy < g.OH; oy++ {
		h0, h1, _, _ := PoolWindow(g, oy, 0)
		zeroUpper()
		clear(rd)
		dr := div[oy*g.OW : (oy+1)*g.OW]
		for ox, d := range dyp[oy*g.OW : (oy+1)*g.OW] {
			w0 := ox*g.SW - g.PW
			w1 := min(w0+g.KW, g.W)
			d /= dr[ox]
			for i := max(w0, 0); i < w1; i++ {
				rd[i] += d
			}
		}
		if h1 > h0 {
			AddRows(dxp[h0*g.W:], g.W, rd, 0, h1-h0, g.W)
		}
	}
}
