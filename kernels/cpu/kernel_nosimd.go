//go:build !(goexperiment.simd && amd64)

package cpu

import "github.com/gocaffe/gocaffe/kernels"

// SIMD reports whether the AVX-512 fast paths are in use: never in a build
// without GOEXPERIMENT=simd.
func SIMD() bool { return false }

// microKernel adds the mr×nr product of packed slivers into C (portable).
func microKernel(kb int, alpha float32, a []float32, offs *[mr]int, cs int, b []float32, ldb int, c []float32, ldc, rows, cols int, overwrite bool, _ *[mr * nr]float32) {
	microKernelGo(kb, alpha, a, offs, cs, b, ldb, c, ldc, rows, cols, overwrite)
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

// MaxPool2x2Plane max-pools 2×2 windows of stride 2 over a rows×cols block
// of outputs of one image plane; see the SIMD build's documentation.
func MaxPool2x2Plane(x []float32, w int, out []float32, idx []int32, ldo, rows, cols int) {
	maxPool2x2PlaneGo(x, w, out, idx, ldo, rows, cols)
}

// SCopyRows copies a rows×cols block: dst[y*ldd+x] = src[y*lds+x].
func SCopyRows(dst []float32, ldd int, src []float32, lds, rows, cols int) {
	copyRowsGo(dst, ldd, src, lds, rows, cols)
}

// microKernel8x32 is the SIMD build's 8×32 tile; here it reports false.
func microKernel8x32(kb int, alpha float32, a []float32, offs, offs4 *[mr]int, cs int, b []float32, ldb int, c []float32, ldc int, overwrite bool) bool {
	return false
}

// SAddRowSums adds the sum of each row of x (len(out) rows of cols
// values) to out.
func SAddRowSums(x []float32, cols int, out []float32) { addRowSumsGo(x, cols, out) }

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

// maxPoolInterior is the SIMD build's whole-plane interior kernel; here it
// does nothing and reports false.
func maxPoolInterior(g kernels.PoolGeom, xp, yp []float32, mask []int32, lo int) bool {
	return false
}

// SGDMomentum is one fused SGD step with momentum and L2 decay:
// g = norm·diff + decay·data; hist = lr·g + mom·hist; diff = hist;
// data -= hist.
func SGDMomentum(diff, data, hist []float32, norm, decay, lr, mom float32) {
	SGDMomentumRef(diff, data, hist, norm, decay, lr, mom)
}

// ntKernel returns the sums of one GemmNTSum tile.
func ntKernel(batch, k int, a []float32, offA [ntRows]int, strideA int, b []float32, offB [ntCols]int, strideB int) [ntRows * ntCols]float32 {
	return ntKernelGo(batch, k, a, offA, strideA, b, offB, strideB)
}

// SReLU sets y = max(x, 0) + s·min(x, 0).
func SReLU(x, y []float32, s float32) { reluForward(x, y[:len(x)], s) }

// SReLUBackward sets dx = dy·(s + (1-s)·[x > 0]).
func SReLUBackward(x, dy, dx []float32, s float32) { reluBackward32(x, dy, dx, s) }

// segTile returns the rows and columns of segKernel's tile.
func segTile() (rows, cols int) { return segRows, segCols }

// segKernel computes one 8×32 tile of an implicit product
// (conv_implicit.go) in plain Go.
func segKernel(seglen int, a []float32, base int, aoff *[segRows]int, acs int, segB []int, b []float32, c []float32, ldc int, add bool) {
	kernelSegGo(segRows, segCols, seglen, a, base, aoff, acs, segB, b, c, ldc, add)
}

// transpose16 writes the transpose of the 16×16 block at src (rows ld
// apart) to dst (rows ldd apart): dst[t*ldd+i] = src[i*ld+t].
func transpose16(src []float32, ld int, dst []float32, ldd int) {
	transpose16Go(src, ld, dst, ldd)
}

// col2imNarrow is the SIMD build's one-vector-row col2im; here it reports
// false.
func col2imNarrow(col []float32, c, h, w int, g kernels.ConvGeom, oh, ow int, im []float32) bool {
	return false
}

// maxPoolBackward2x2Cols12 is the SIMD build's pool1 gradient; here it
// reports false.
func maxPoolBackward2x2Cols12(dy []float32, mask []int32, dx []float32, rows int) bool {
	return false
}

// maxPoolBackward2x2Rows4 is the SIMD build's pool2 gradient; here it
// reports false.
func maxPoolBackward2x2Rows4(dy []float32, mask []int32, dx []float32, rows int) bool {
	return false
}

// winograd4InputF32 reports false: the portable transforms run.
func winograd4InputF32(xq []float32, L, ty0, ty1, tw int, v []float32, ld int, tmp []float32) bool {
	return false
}

// winograd4OutputF32 writes nothing: the portable transforms run.
func winograd4OutputF32(q *[36][]float32, t0, tw, y int, out []float32, oh, ow int) int { return 0 }

// winograd4TopDiffF32 reports false: the portable transform runs.
func winograd4TopDiffF32(dyp []float32, ldy, ty0, ty1, tw int, e []float32, ld int) bool {
	return false
}

// winograd4FinishF32 reports false: the portable transform runs.
func winograd4FinishF32(blk *[36][winogradPackBlock]float32, out *[9][winogradPackBlock]float32) bool {
	return false
}
