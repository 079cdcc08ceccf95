package cpu

import "math"

// maxPool2x2PlaneGo is the portable MaxPool2x2Plane.
func maxPool2x2PlaneGo(x []float32, w int, out []float32, idx []int32, ldo, rows, cols int) {
	MaxPool2x2PlaneRef(x, w, out, idx, ldo, rows, cols)
}

// MaxPool2x2PlaneRef is MaxPool2x2Plane for any element type, in plain Go.
func MaxPool2x2PlaneRef[T Float](x []T, w int, out []T, idx []int32, ldo, rows, cols int) {
	for oy := 0; oy < rows; oy++ {
		b0 := 2 * oy * w
		maxPool2x2Row(x[b0:b0+2*cols], x[b0+w:b0+w+2*cols], out[oy*ldo:oy*ldo+cols], idx[oy*ldo:oy*ldo+cols], int32(b0), int32(b0+w))
	}
}

// maxPool2x2Row pools one output row from input rows r0 and r1, whose
// first values have indices b0 and b1.
func maxPool2x2Row[T Float](r0, r1, out []T, idx []int32, b0, b1 int32) {
	n := len(out)
	r0, r1, idx = r0[:2*n], r1[:2*n], idx[:n]
	for o := range out {
		c := 2 * o
		best, arg := T(-math.MaxFloat32), int32(-1)
		if v := r0[c]; v > best {
			best, arg = v, b0+int32(c)
		}
		if v := r0[c+1]; v > best {
			best, arg = v, b0+int32(c+1)
		}
		if v := r1[c]; v > best {
			best, arg = v, b1+int32(c)
		}
		if v := r1[c+1]; v > best {
			best, arg = v, b1+int32(c+1)
		}
		out[o], idx[o] = best, arg
	}
}

// maxPoolRowGo is the portable MaxPoolRow.
func maxPoolRowGo(rows [][]float32, rowBase []int32, kw, stride int, out []float32, idx []int32) {
	for o := range out {
		best, arg := float32(-math.MaxFloat32), int32(-1)
		for r, row := range rows {
			w := row[o*stride : o*stride+kw]
			for j, v := range w {
				if v > best {
					best, arg = v, rowBase[r]+int32(o*stride+j)
				}
			}
		}
		out[o], idx[o] = best, arg
	}
}
