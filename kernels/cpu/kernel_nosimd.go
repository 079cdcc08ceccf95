//go:build !(goexperiment.simd && amd64)

package cpu

// SIMD reports whether the AVX-512 fast paths are in use: never in a build
// without GOEXPERIMENT=simd.
func SIMD() bool { return false }

// microKernel adds the mr×nr product of packed slivers into C (portable).
func microKernel(kb int, alpha float32, a []float32, offs [mr]int, cs int, b []float32, ldb int, c []float32, ldc, rows, cols int) {
	microKernelGo(kb, alpha, a, offs, cs, b, ldb, c, ldc, rows, cols)
}

// Saxpy computes y += alpha*x over len(x) elements.
func Saxpy(alpha float32, x, y []float32) { axpyGo(alpha, x, y[:len(x)]) }

// Sscal computes x *= alpha.
func Sscal(alpha float32, x []float32) { scalGo(alpha, x) }

// Sdot returns the dot product of x and y[:len(x)].
func Sdot(x, y []float32) float32 { return dotGo(x, y[:len(x)]) }

// Sshift computes x += alpha.
func Sshift(alpha float32, x []float32) { shiftGo(alpha, x) }

// Ssum returns the sum of x's elements.
func Ssum(x []float32) float32 { return sumGo(x) }

// MaxPool2x2 max-pools 2×2 windows of stride 2 over two image rows:
// out[o] is the largest of r0[2o], r0[2o+1], r1[2o], r1[2o+1] that exceeds
// -FLT_MAX, compared strictly in that order as Caffe does, and idx[o] its
// index (b0+2o, b0+2o+1, b1+2o or b1+2o+1), or -1 if none does. It covers
// len(out) outputs; r0 and r1 need 2·len(out) values.
func MaxPool2x2(r0, r1, out []float32, idx []int32, b0, b1 int32) {
	maxPool2x2Go(r0, r1, out, idx, b0, b1)
}

// SCopyRows copies a rows×cols block: dst[y*ldd+x] = src[y*lds+x].
func SCopyRows(dst []float32, ldd int, src []float32, lds, rows, cols int) {
	copyRowsGo(dst, ldd, src, lds, rows, cols)
}

// SAddRows adds a rows×cols block: dst[y*ldd+x] += src[y*lds+x].
func SAddRows(dst []float32, ldd int, src []float32, lds, rows, cols int) {
	addRowsGo(dst, ldd, src, lds, rows, cols)
}

// MaxPoolRow max-pools one output row of windows that lie fully inside
// the image columns: for output o, the window covers rows[r][o*stride+j]
// for each r in order and j in [0, kw). out[o] is the largest value that
// exceeds -FLT_MAX, compared strictly in that (row-major) order as Caffe
// does, and idx[o] its index rowBase[r] + o*stride + j, or -1 if none.
// It covers len(out) outputs; each rows[r] must hold (len(out)-1)*stride+kw
// values.
func MaxPoolRow(rows [][]float32, rowBase []int32, kw, stride int, out []float32, idx []int32) {
	maxPoolRowGo(rows, rowBase, kw, stride, out, idx)
}
