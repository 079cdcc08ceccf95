package cpu

import "math"

// maxPool2x2Go is the portable MaxPool2x2.
func maxPool2x2Go(r0, r1, out []float32, idx []int32, b0, b1 int32) {
	n := len(out)
	r0, r1, idx = r0[:2*n], r1[:2*n], idx[:n]
	for o := range out {
		c := 2 * o
		best, arg := float32(-math.MaxFloat32), int32(-1)
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
