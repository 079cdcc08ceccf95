//go:build goexperiment.simd && amd64

package cpu

import (
	"math"
	"simd/archsimd"

	"github.com/gocaffe/gocaffe/kernels"
)

// Permute indices and lane offsets of the AVX-512 pooling kernels.
// Package variables, not literals: a literal is built on the stack by
// 8-byte stores each call, and the vector load of it cannot be forwarded
// from them; it waits until they have left the core, once per plane of
// LeNet's pool2.
var (
	idxEven16    = [16]uint32{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30}
	idxOdd16     = [16]uint32{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31}
	lane2x16     = [16]int32{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30}
	idxRows4Even = [16]uint32{0, 2, 4, 6, 16, 18, 20, 22, 8, 10, 12, 14, 24, 26, 28, 30}
	idxRows4Odd  = [16]uint32{1, 3, 5, 7, 17, 19, 21, 23, 9, 11, 13, 15, 25, 27, 29, 31}
	idxLoHalves  = [16]uint32{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}
	idxHiHalves  = [16]uint32{8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}
	laneRows4    = [16]int32{0, 2, 4, 6, 16, 18, 20, 22, 32, 34, 36, 38, 48, 50, 52, 54}
	laneIdx16    = [16]int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	// Two rows of 24 in three vectors: the upper row's even and odd
	// columns from the first two, the lower row's from the last two.
	idxUpperEven24 = [16]uint32{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 0, 0, 0, 0}
	idxUpperOdd24  = [16]uint32{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 1, 1, 1, 1}
	idxLowerEven24 = [16]uint32{8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 8, 8, 8, 8}
	idxLowerOdd24  = [16]uint32{9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31, 9, 9, 9, 9}
	// The window (output) of each of a row pair's 48 inputs, 16 at a
	// time: inputs 0-23 are the upper row, 24-47 the lower.
	idxPairs0 = [16]uint32{0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7}
	idxPairs1 = [16]uint32{8, 8, 9, 9, 10, 10, 11, 11, 0, 0, 1, 1, 2, 2, 3, 3}
	idxPairs2 = [16]uint32{4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11}
	// The window of each input of two rows of 8, among four rows of 4.
	idxRowPairs8 = [16]uint32{0, 0, 1, 1, 2, 2, 3, 3, 0, 0, 1, 1, 2, 2, 3, 3}
)

// The kernel level is fixed at startup (level.go): AVX-512 paths where the
// CPU has them, AVX2 + FMA paths where it has those, portable Go otherwise.
var (
	hasAVX512 = level == LevelAVX512
	hasAVX2   = level >= LevelAVX2
)

// SIMD reports whether the AVX-512 fast paths are in use.
func SIMD() bool { return hasAVX512 }

// The assembly micro-kernels (sgemm_amd64.s) compute the raw 4×64 or 4×32
// product of kb steps, scale it by alpha and store it to c (row r at
// c[r*ldc:]), or with add set add it there.
//
//go:noescape
func sgemm4x64(kb int, a *float32, aoff *[mr]int, acs int, b *float32, ldb int, c *float32, ldc int, alpha float32, add bool)

//go:noescape
func sgemm4x32(kb int, a *float32, aoff *[mr]int, acs int, b *float32, ldb int, c *float32, ldc int, alpha float32, add bool)

// sgemm8x32 is the 8×32 product: rows 0-3 at a, rows 4-7 at a4, both with
// aoff's offsets.
//
//go:noescape
func sgemm8x32(kb int, a, a4 *float32, aoff *[mr]int, acs int, b *float32, ldb int, c *float32, ldc int, alpha float32, add bool)

// microKernel8x32 computes a whole 8×32 tile of C from two 4-row blocks of A
// (offs and offs4, offs4[r]-offs4[0] == offs[r]-offs[0]) and a 32-column B
// sliver, on AVX-512; it reports false, doing nothing, elsewhere.
func microKernel8x32(kb int, alpha float32, a []float32, offs, offs4 *[mr]int, cs int, b []float32, ldb int, c []float32, ldc int, overwrite bool) bool {
	if !hasAVX512 || kb <= 0 {
		return false
	}
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	var aoff, aoff4 [mr]int
	rowByteOffsets(&aoff, kb, a, offs, cs)
	rowByteOffsets(&aoff4, kb, a, offs4, cs) // the bounds of rows 4-7
	_ = b[(kb-1)*ldb+31]
	_ = c[(2*mr-1)*ldc+31]
	sgemm8x32(kb, &a[offs[0]], &a[offs4[0]], &aoff, cs, &b[0], ldb, &c[0], ldc, alpha, !overwrite)
	return true
}

// The AVX2 strips (sgemm_avx2_amd64.s): 4×24 and 4×16 products, scaled by
// alpha and stored to c (row r at c[r*ldc:]), or with add added there.
//
//go:noescape
func sgemm4x24avx2(kb int, a *float32, aoff *[mr]int, acs int, b *float32, ldb int, c *float32, ldc int, alpha float32, add bool)

//go:noescape
func sgemm4x16avx2(kb int, a *float32, aoff *[mr]int, acs int, b *float32, ldb int, c *float32, ldc int, alpha float32, add bool)

// rowByteOffsets checks, as indexing would, that kb steps of column
// stride cs stay inside a from each of the tile's rows (the bounds the
// assembly relies on), and sets aoff to the byte offsets of the rows from
// the first.
func rowByteOffsets(aoff *[mr]int, kb int, a []float32, offs *[mr]int, cs int) {
	last := (kb - 1) * cs
	for r, o := range offs {
		_ = a[o+last]
		aoff[r] = 4 * (o - offs[0])
	}
}

// microKernel adds alpha times the mr×nr (4×64) product of 4 rows of A
// (row r starts at a[offs[r]], column stride cs) and a B sliver (kb rows of
// nr values, ldb apart) into the first rows×cols corner of C. The product
// runs in assembly with all sixteen accumulators in registers (a 4×32
// kernel when cols ≤ 32); a whole tile is scaled into C (or with overwrite
// written) by the assembly, a partial one goes through acc, scratch of the
// caller's, and the Go side adds or writes its corner.
func microKernel(kb int, alpha float32, a []float32, offs *[mr]int, cs int, b []float32, ldb int, c []float32, ldc, rows, cols int, overwrite bool, acc *[mr * nr]float32) {
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	if !hasAVX512 && hasAVX2 && kb > 0 {
		microKernelAVX2(kb, alpha, a, offs, cs, b, ldb, c, ldc, rows, cols, overwrite, acc)
		return
	}
	if !hasAVX512 || kb == 0 || (!maskedPartsOK && cols%16 != 0) {
		microKernelGo(kb, alpha, a, offs, cs, b, ldb, c, ldc, rows, cols, overwrite)
		return
	}
	var aoff [mr]int
	rowByteOffsets(&aoff, kb, a, offs, cs)
	width := nr
	if cols <= 32 {
		width = 32
	}
	_ = b[(kb-1)*ldb+width-1]
	if rows == mr && cols == width {
		// A whole tile goes straight into C.
		_ = c[(mr-1)*ldc+width-1]
		if width == 32 {
			sgemm4x32(kb, &a[offs[0]], &aoff, cs, &b[0], ldb, &c[0], ldc, alpha, !overwrite)
		} else {
			sgemm4x64(kb, &a[offs[0]], &aoff, cs, &b[0], ldb, &c[0], ldc, alpha, !overwrite)
		}
		return
	}
	// A partial tile goes through acc, and only its corner into C.
	if width == 32 {
		sgemm4x32(kb, &a[offs[0]], &aoff, cs, &b[0], ldb, &acc[0], nr, 1, false)
	} else {
		sgemm4x64(kb, &a[offs[0]], &aoff, cs, &b[0], ldb, &acc[0], nr, 1, false)
	}
	al := archsimd.BroadcastFloat32x16(alpha)
	for r := 0; r < rows; r++ {
		crow, arow := c[r*ldc:r*ldc+cols], acc[r*nr:r*nr+cols]
		j := 0
		if overwrite {
			for ; j+16 <= cols; j += 16 {
				archsimd.LoadFloat32x16((*[16]float32)(arow[j : j+16])).Mul(al).Store((*[16]float32)(crow[j : j+16]))
			}
			if j < cols {
				archsimd.LoadFloat32x16SlicePart(arow[j:]).Mul(al).StoreSlicePart(crow[j:])
			}
			continue
		}
		for ; j+16 <= cols; j += 16 {
			p := (*[16]float32)(crow[j : j+16])
			archsimd.LoadFloat32x16((*[16]float32)(arow[j:j+16])).MulAdd(al, archsimd.LoadFloat32x16(p)).Store(p)
		}
		if j < cols {
			archsimd.LoadFloat32x16SlicePart(arow[j:]).MulAdd(al, archsimd.LoadFloat32x16SlicePart(crow[j:])).StoreSlicePart(crow[j:])
		}
	}
}

// Saxpy computes y += alpha*x over len(x) elements.
func Saxpy(alpha float32, x, y []float32) {
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	y = y[:len(x)]
	if !hasAVX512 {
		if hasAVX2 {
			saxpyAVX2(alpha, x, y)
			return
		}
		axpyGo(alpha, x, y)
		return
	}
	av := archsimd.BroadcastFloat32x16(alpha)
	i := 0
	for ; i+16 <= len(x); i += 16 {
		py := (*[16]float32)(y[i : i+16])
		xv := archsimd.LoadFloat32x16((*[16]float32)(x[i : i+16]))
		av.MulAdd(xv, archsimd.LoadFloat32x16(py)).Store(py)
	}
	for ; i < len(x); i++ {
		y[i] += alpha * x[i]
	}
}

// Sscal computes x *= alpha.
func Sscal(alpha float32, x []float32) {
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	if !hasAVX512 {
		if hasAVX2 {
			sscalAVX2(alpha, x)
			return
		}
		scalGo(alpha, x)
		return
	}
	av := archsimd.BroadcastFloat32x16(alpha)
	i := 0
	for ; i+16 <= len(x); i += 16 {
		px := (*[16]float32)(x[i : i+16])
		archsimd.LoadFloat32x16(px).Mul(av).Store(px)
	}
	for ; i < len(x); i++ {
		x[i] *= alpha
	}
}

// Sdot returns the dot product of x and y[:len(x)].
func Sdot(x, y []float32) float32 {
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	y = y[:len(x)]
	if !hasAVX512 {
		if hasAVX2 {
			return sdotAVX2(x, y)
		}
		return dotGo(x, y)
	}
	var s0, s1 archsimd.Float32x16
	i := 0
	for ; i+32 <= len(x); i += 32 {
		s0 = archsimd.LoadFloat32x16((*[16]float32)(x[i:i+16])).MulAdd(archsimd.LoadFloat32x16((*[16]float32)(y[i:i+16])), s0)
		s1 = archsimd.LoadFloat32x16((*[16]float32)(x[i+16:i+32])).MulAdd(archsimd.LoadFloat32x16((*[16]float32)(y[i+16:i+32])), s1)
	}
	var tmp [16]float32
	s0.Add(s1).Store(&tmp)
	var s float32
	for _, v := range tmp {
		s += v
	}
	for ; i < len(x); i++ {
		s += x[i] * y[i]
	}
	return s
}

// Sshift computes x += alpha.
func Sshift(alpha float32, x []float32) {
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	if !hasAVX512 {
		if hasAVX2 {
			sshiftAVX2(alpha, x)
			return
		}
		shiftGo(alpha, x)
		return
	}
	av := archsimd.BroadcastFloat32x16(alpha)
	i := 0
	for ; i+16 <= len(x); i += 16 {
		px := (*[16]float32)(x[i : i+16])
		archsimd.LoadFloat32x16(px).Add(av).Store(px)
	}
	for ; i < len(x); i++ {
		x[i] += alpha
	}
}

// sum32s adds x's whole 32-value blocks into two vectors (even and odd
// 16-value halves) and returns them and the index after the last block.
func sum32s(x []float32) (s0, s1 archsimd.Float32x16, i int) {
	for ; i+32 <= len(x); i += 32 {
		s0 = s0.Add(archsimd.LoadFloat32x16((*[16]float32)(x[i : i+16])))
		s1 = s1.Add(archsimd.LoadFloat32x16((*[16]float32)(x[i+16 : i+32])))
	}
	return s0, s1, i
}

// Ssum returns the sum of x's elements.
func Ssum(x []float32) float32 {
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	if !hasAVX512 && hasAVX2 && len(x) >= 16 {
		return ssumAVX2(x)
	}
	if !hasAVX512 || len(x) < 32 {
		return sumGo(x)
	}
	s0, s1, i := sum32s(x)
	var tmp [16]float32
	s0.Add(s1).Store(&tmp)
	s := sumGo(tmp[:])
	for ; i < len(x); i++ {
		s += x[i]
	}
	return s
}

// SAddRowSums adds the sum of each row of x (len(out) rows of cols
// values) to out. One call for all the rows, each reduced across its lanes
// in registers, where a call of Ssum per row (a bias gradient's channels:
// LeNet's conv2 has 50 rows of 64 per image) paid the call, the clean-up
// and a 16-step scalar reduction every time.
func SAddRowSums(x []float32, cols int, out []float32) {
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	if len(out) == 0 {
		return
	}
	_ = x[len(out)*cols-1]
	if !hasAVX512 && hasAVX2 && cols >= 8 {
		addRowSumsAVX2(x, cols, out)
		return
	}
	if !hasAVX512 || cols < 16 {
		for r := range out {
			out[r] += Ssum(x[r*cols : (r+1)*cols])
		}
		return
	}
	// Sixteen rows at a time: their lane sums transposed, so that one
	// vector add finishes all sixteen and one store adds them to out. A
	// scalar sum and store per row (below, for the rest) made each row
	// wait for the last (LeNet's conv2 bias gradient, 50 rows of 64 per
	// image, took 9 µs an image).
	r0 := 0
	var part, tr [16 * 16]float32
	for ; r0+16 <= len(out); r0 += 16 {
		for q := range 16 {
			row := x[(r0+q)*cols : (r0+q+1)*cols]
			s0, s1, i := sum32s(row)
			if i+16 <= cols {
				s0 = s0.Add(archsimd.LoadFloat32x16((*[16]float32)(row[i : i+16])))
				i += 16
			}
			v := s0.Add(s1)
			if i < cols {
				v = v.Add(archsimd.LoadFloat32x16SlicePart(row[i:]))
			}
			v.Store((*[16]float32)(part[q*16 : q*16+16]))
		}
		transpose16(part[:], 16, tr[:], 16)
		sum := archsimd.LoadFloat32x16((*[16]float32)(tr[:16]))
		for t := 1; t < 16; t++ {
			sum = sum.Add(archsimd.LoadFloat32x16((*[16]float32)(tr[t*16 : t*16+16])))
		}
		o := (*[16]float32)(out[r0 : r0+16])
		sum.Add(archsimd.LoadFloat32x16(o)).Store(o)
	}
	for r := r0; r < len(out); r++ {
		row := x[r*cols : (r+1)*cols]
		s0, s1, i := sum32s(row)
		if i+16 <= cols {
			s0 = s0.Add(archsimd.LoadFloat32x16((*[16]float32)(row[i : i+16])))
			i += 16
		}
		v := s0.Add(s1)
		h := v.GetLo().Add(v.GetHi())
		q := h.GetLo().Add(h.GetHi())
		q = q.AddPairs(q)
		q = q.AddPairs(q)
		s := q.GetElem(0)
		for ; i < cols; i++ {
			s += row[i]
		}
		out[r] += s
	}
}

// MaxPool2x2Plane max-pools 2×2 windows of stride 2 over a rows×cols block
// of outputs of one image plane x (row length w, no padding): out[oy*ldo+ox]
// is the largest of x[2oy][2ox], x[2oy][2ox+1], x[2oy+1][2ox],
// x[2oy+1][2ox+1] that exceeds -FLT_MAX, compared strictly in that order as
// Caffe does, and idx[oy*ldo+ox] its index in x, or -1 if none does. x needs
// 2·rows rows of at least 2·cols values. One call per plane keeps the
// vector constants in registers across rows.
func MaxPool2x2Plane(x []float32, w int, out []float32, idx []int32, ldo, rows, cols int) {
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	if !hasAVX512 && hasAVX2 && maskedPartsOK {
		maxPool2x2PlaneAVX2(x, w, out, idx, ldo, rows, cols)
		return
	}
	if !hasAVX512 || !maskedPartsOK {
		maxPool2x2PlaneGo(x, w, out, idx, ldo, rows, cols)
		return
	}
	even := archsimd.LoadUint32x16(&idxEven16)
	odd := archsimd.LoadUint32x16(&idxOdd16)
	lane2 := archsimd.LoadInt32x16(&lane2x16)
	one := archsimd.BroadcastInt32x16(1)
	none := archsimd.BroadcastInt32x16(-1)
	floor := archsimd.BroadcastFloat32x16(-math.MaxFloat32)
	oy := 0
	switch {
	case cols == 4 && w == 8 && ldo == 4:
		oy = maxPool2x2Rows4(x, out, idx, rows)
	case cols == 12 && w == 24:
		oy = maxPool2x2Cols12(x, out, idx, ldo, rows)
	}
	for ; oy < rows; oy++ {
		b0 := 2 * oy * w
		r0, r1 := x[b0:b0+2*cols], x[b0+w:b0+w+2*cols]
		orow, irow := out[oy*ldo:oy*ldo+cols], idx[oy*ldo:oy*ldo+cols]
		for o := 0; o < cols; o += 16 {
			// Up to 16 outputs from up to 32 values of each row; a short
			// last group (LeNet's rows have 12 and 4 outputs) loads and
			// stores only its part.
			cnt := min(16, cols-o)
			a0 := archsimd.LoadFloat32x16SlicePart(r0[2*o : 2*o+min(16, 2*cnt)])
			c0 := archsimd.LoadFloat32x16SlicePart(r1[2*o : 2*o+min(16, 2*cnt)])
			var a1, c1 archsimd.Float32x16
			if cnt > 8 {
				a1 = archsimd.LoadFloat32x16SlicePart(r0[2*o+16 : 2*o+2*cnt])
				c1 = archsimd.LoadFloat32x16SlicePart(r1[2*o+16 : 2*o+2*cnt])
			}
			i00 := lane2.Add(archsimd.BroadcastInt32x16(int32(b0 + 2*o)))
			i10 := lane2.Add(archsimd.BroadcastInt32x16(int32(b0 + w + 2*o)))
			best, arg := floor, none
			v := a0.ConcatPermute(a1, even)
			m := v.Greater(best)
			best, arg = v.Merge(best, m), i00.Merge(arg, m)
			v = a0.ConcatPermute(a1, odd)
			m = v.Greater(best)
			best, arg = v.Merge(best, m), i00.Add(one).Merge(arg, m)
			v = c0.ConcatPermute(c1, even)
			m = v.Greater(best)
			best, arg = v.Merge(best, m), i10.Merge(arg, m)
			v = c0.ConcatPermute(c1, odd)
			m = v.Greater(best)
			best, arg = v.Merge(best, m), i10.Add(one).Merge(arg, m)
			storePooled(best, arg, orow[o:o+cnt], irow[o:o+cnt])
		}
	}
}

// maxPool2x2Rows4 is MaxPool2x2Plane for planes of 8 columns (4 outputs a
// row, LeNet's pool2) with rows stored back to back, four output rows (16
// outputs, from 64 values) a vector instead of 4 outputs in 16 lanes. It
// returns the number of output rows done, a multiple of four; the caller
// does the rest.
func maxPool2x2Rows4(x []float32, out []float32, idx []int32, rows int) int {
	// Two input row pairs r0 = rows 2k, 2k+1 and r1 = rows 2k+2, 2k+3
	// give, by pick, the even columns of the upper rows of both pairs
	// then those of the lower rows; pickOdd the odd columns. merge puts
	// the first halves of two such vectors together, mergeHi the second.
	pick := archsimd.LoadUint32x16(&idxRows4Even)
	pickOdd := archsimd.LoadUint32x16(&idxRows4Odd)
	merge := archsimd.LoadUint32x16(&idxLoHalves)
	mergeHi := archsimd.LoadUint32x16(&idxHiHalves)
	// Output lane 4k+ox reads x[(2k)·8 + 2ox] first.
	lanes := archsimd.LoadInt32x16(&laneRows4)
	one := archsimd.BroadcastInt32x16(1)
	eight := archsimd.BroadcastInt32x16(8)
	none := archsimd.BroadcastInt32x16(-1)
	floor := archsimd.BroadcastFloat32x16(-math.MaxFloat32)
	oy := 0
	for ; oy+4 <= rows; oy += 4 {
		b0 := 16 * oy
		xs := x[b0 : b0+64]
		r0 := archsimd.LoadFloat32x16((*[16]float32)(xs[0:16]))
		r1 := archsimd.LoadFloat32x16((*[16]float32)(xs[16:32]))
		r2 := archsimd.LoadFloat32x16((*[16]float32)(xs[32:48]))
		r3 := archsimd.LoadFloat32x16((*[16]float32)(xs[48:64]))
		ev01, od01 := r0.ConcatPermute(r1, pick), r0.ConcatPermute(r1, pickOdd)
		ev23, od23 := r2.ConcatPermute(r3, pick), r2.ConcatPermute(r3, pickOdd)
		i00 := lanes.Add(archsimd.BroadcastInt32x16(int32(b0)))
		best, arg := floor, none
		v := ev01.ConcatPermute(ev23, merge) // x[2oy][2ox]
		m := v.Greater(best)
		best, arg = v.Merge(best, m), i00.Merge(arg, m)
		v = od01.ConcatPermute(od23, merge) // x[2oy][2ox+1]
		m = v.Greater(best)
		best, arg = v.Merge(best, m), i00.Add(one).Merge(arg, m)
		i10 := i00.Add(eight)
		v = ev01.ConcatPermute(ev23, mergeHi) // x[2oy+1][2ox]
		m = v.Greater(best)
		best, arg = v.Merge(best, m), i10.Merge(arg, m)
		v = od01.ConcatPermute(od23, mergeHi) // x[2oy+1][2ox+1]
		m = v.Greater(best)
		best, arg = v.Merge(best, m), i10.Add(one).Merge(arg, m)
		best.Store((*[16]float32)(out[4*oy : 4*oy+16]))
		arg.Store((*[16]int32)(idx[4*oy : 4*oy+16]))
	}
	return oy
}

// maxPool2x2Cols12 is MaxPool2x2Plane for rows of 24 columns (12 outputs,
// LeNet's pool1): the two rows of a window, 48 values, are three whole
// vectors, where the general loop loads four, two of them masked. It
// returns the number of output rows done (all).
func maxPool2x2Cols12(x []float32, out []float32, idx []int32, ldo, rows int) int {
	upperEven := archsimd.LoadUint32x16(&idxUpperEven24)
	upperOdd := archsimd.LoadUint32x16(&idxUpperOdd24)
	lowerEven := archsimd.LoadUint32x16(&idxLowerEven24)
	lowerOdd := archsimd.LoadUint32x16(&idxLowerOdd24)
	lane2 := archsimd.LoadInt32x16(&lane2x16)
	one := archsimd.BroadcastInt32x16(1)
	below := archsimd.BroadcastInt32x16(24)
	none := archsimd.BroadcastInt32x16(-1)
	floor := archsimd.BroadcastFloat32x16(-math.MaxFloat32)
	for oy := 0; oy < rows; oy++ {
		b0 := 48 * oy
		xs := x[b0 : b0+48]
		r0 := archsimd.LoadFloat32x16((*[16]float32)(xs[0:16]))
		r1 := archsimd.LoadFloat32x16((*[16]float32)(xs[16:32]))
		r2 := archsimd.LoadFloat32x16((*[16]float32)(xs[32:48]))
		// Lanes 12-15 hold repeats; they are not stored.
		i00 := lane2.Add(archsimd.BroadcastInt32x16(int32(b0)))
		i10 := i00.Add(below)
		best, arg := floor, none
		v := r0.ConcatPermute(r1, upperEven)
		m := v.Greater(best)
		best, arg = v.Merge(best, m), i00.Merge(arg, m)
		v = r0.ConcatPermute(r1, upperOdd)
		m = v.Greater(best)
		best, arg = v.Merge(best, m), i00.Add(one).Merge(arg, m)
		v = r1.ConcatPermute(r2, lowerEven)
		m = v.Greater(best)
		best, arg = v.Merge(best, m), i10.Merge(arg, m)
		v = r1.ConcatPermute(r2, lowerOdd)
		m = v.Greater(best)
		best, arg = v.Merge(best, m), i10.Add(one).Merge(arg, m)
		storePooled(best, arg, out[oy*ldo:oy*ldo+12], idx[oy*ldo:oy*ldo+12])
	}
	return rows
}

// maxPoolBackward2x2Cols12 overwrites a plane's bottom diff dx (2·rows
// rows of 24) with the gradient of 2×2 max pooling of stride 2 (rows×12
// outputs, LeNet's pool1): each input takes its window's top diff where
// the window's argmax in mask is that input, else zero. The windows do
// not overlap, so this is the scatter of maxPoolBackwardPlane written as
// three whole vectors a row pair, with no clear; argmax indices outside
// their own window (never written by MaxPoolForward) add nothing here. It
// reports false, doing nothing, off AVX-512.
func maxPoolBackward2x2Cols12(dy []float32, mask []int32, dx []float32, rows int) bool {
	if !hasAVX512 || !maskedPartsOK {
		return false
	}
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	e0 := archsimd.LoadUint32x16(&idxPairs0)
	e1 := archsimd.LoadUint32x16(&idxPairs1)
	e2 := archsimd.LoadUint32x16(&idxPairs2)
	lanes := archsimd.LoadInt32x16(&laneIdx16)
	var zero archsimd.Float32x16
	dy, mask, dx = dy[:12*rows], mask[:12*rows], dx[:48*rows]
	for oy := 0; oy < rows; oy++ {
		d := archsimd.LoadFloat32x16SlicePart(dy[12*oy : 12*oy+12])
		m := archsimd.LoadInt32x16SlicePart(mask[12*oy : 12*oy+12])
		b0 := 48 * oy
		i0 := lanes.Add(archsimd.BroadcastInt32x16(int32(b0)))
		i1 := i0.Add(archsimd.BroadcastInt32x16(16))
		i2 := i0.Add(archsimd.BroadcastInt32x16(32))
		xs := dx[b0 : b0+48]
		d.Permute(e0).Merge(zero, m.Permute(e0).Equal(i0)).Store((*[16]float32)(xs[0:16]))
		d.Permute(e1).Merge(zero, m.Permute(e1).Equal(i1)).Store((*[16]float32)(xs[16:32]))
		d.Permute(e2).Merge(zero, m.Permute(e2).Equal(i2)).Store((*[16]float32)(xs[32:48]))
	}
	return true
}

// maxPoolBackward2x2Rows4 is maxPoolBackward2x2Cols12 for planes of 8
// columns (4 outputs a row, LeNet's pool2), rows a multiple of four: four
// output rows' 16 top diffs and argmaxes are one vector each, and each of
// the four vectors of their 64 inputs (two input rows) picks from them.
func maxPoolBackward2x2Rows4(dy []float32, mask []int32, dx []float32, rows int) bool {
	if !hasAVX512 || rows%4 != 0 {
		return false
	}
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	pick := archsimd.LoadUint32x16(&idxRowPairs8)
	four := archsimd.BroadcastUint32x16(4)
	lanes := archsimd.LoadInt32x16(&laneIdx16)
	sixteen := archsimd.BroadcastInt32x16(16)
	var zero archsimd.Float32x16
	dy, mask, dx = dy[:4*rows], mask[:4*rows], dx[:16*rows]
	for oy := 0; oy < rows; oy += 4 {
		d := archsimd.LoadFloat32x16((*[16]float32)(dy[4*oy : 4*oy+16]))
		m := archsimd.LoadInt32x16((*[16]int32)(mask[4*oy : 4*oy+16]))
		xs := dx[16*oy : 16*oy+64]
		e, i := pick, lanes.Add(archsimd.BroadcastInt32x16(int32(16*oy)))
		for v := 0; v < 4; v++ { // input rows 2(oy+v), 2(oy+v)+1
			d.Permute(e).Merge(zero, m.Permute(e).Equal(i)).Store((*[16]float32)(xs[16*v : 16*v+16]))
			e, i = e.Add(four), i.Add(sixteen)
		}
	}
	return true
}

// SCopyRows copies a rows×cols block: dst[y*ldd+x] = src[y*lds+x].
func SCopyRows(dst []float32, ldd int, src []float32, lds, rows, cols int) {
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	if rows <= 0 || cols <= 0 {
		return
	}
	_, _ = dst[(rows-1)*ldd+cols-1], src[(rows-1)*lds+cols-1]
	switch {
	case hasAVX512 && cols == 16: // CIFAR-10's conv2 rows
		for y := 0; y < rows; y++ {
			archsimd.LoadFloat32x16((*[16]float32)(src[y*lds : y*lds+16])).Store((*[16]float32)(dst[y*ldd : y*ldd+16]))
		}
		return
	case hasAVX2 && cols == 8: // LeNet's conv2 and CIFAR-10's conv3 rows
		for y := 0; y < rows; y++ {
			archsimd.LoadFloat32x8((*[8]float32)(src[y*lds : y*lds+8])).Store((*[8]float32)(dst[y*ldd : y*ldd+8]))
		}
		return
	}
	if hasAVX2 && cols%8 == 0 {
		// Whole vectors per row (the unit-stride im2col's rows: 8, 16,
		// 24, 32 wide in LeNet and CIFAR-10): no masks, no tails.
		for y := 0; y < rows; y++ {
			d, s := dst[y*ldd:y*ldd+cols], src[y*lds:y*lds+cols]
			j := 0
			if hasAVX512 {
				for ; j+16 <= cols; j += 16 {
					archsimd.LoadFloat32x16((*[16]float32)(s[j : j+16])).Store((*[16]float32)(d[j : j+16]))
				}
			}
			for ; j < cols; j += 8 {
				archsimd.LoadFloat32x8((*[8]float32)(s[j : j+8])).Store((*[8]float32)(d[j : j+8]))
			}
		}
		return
	}
	if !hasAVX512 || !maskedPartsOK || cols > 32 {
		zeroUpper() // the Go loop is SSE code
		copyRowsGo(dst, ldd, src, lds, rows, cols)
		return
	}
	// Rows of up to 32 (the implicit product's partial tiles: 18 and 20
	// columns in LeNet) as a whole vector and a masked part.
	for y := 0; y < rows; y++ {
		d, s := dst[y*ldd:y*ldd+cols], src[y*lds:y*lds+cols]
		if cols > 16 {
			archsimd.LoadFloat32x16((*[16]float32)(s[:16])).Store((*[16]float32)(d[:16]))
			d, s = d[16:], s[16:]
		}
		archsimd.LoadFloat32x16SlicePart(s).StoreSlicePart(d)
	}
}

// SAddRows adds a rows×cols block: dst[y*ldd+x] += src[y*lds+x].
func SAddRows(dst []float32, ldd int, src []float32, lds, rows, cols int) {
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	if rows <= 0 || cols <= 0 {
		return
	}
	_, _ = dst[(rows-1)*ldd+cols-1], src[(rows-1)*lds+cols-1]
	if hasAVX2 && cols%8 == 0 {
		for y := 0; y < rows; y++ {
			d, s := dst[y*ldd:y*ldd+cols], src[y*lds:y*lds+cols]
			j := 0
			if hasAVX512 {
				for ; j+16 <= cols; j += 16 {
					p := (*[16]float32)(d[j : j+16])
					archsimd.LoadFloat32x16((*[16]float32)(s[j : j+16])).Add(archsimd.LoadFloat32x16(p)).Store(p)
				}
			}
			for ; j < cols; j += 8 {
				p := (*[8]float32)(d[j : j+8])
				archsimd.LoadFloat32x8((*[8]float32)(s[j : j+8])).Add(archsimd.LoadFloat32x8(p)).Store(p)
			}
		}
		return
	}
	if !hasAVX512 || !maskedPartsOK || cols > 32 {
		zeroUpper() // the Go loop is SSE code
		addRowsGo(dst, ldd, src, lds, rows, cols)
		return
	}
	for y := 0; y < rows; y++ {
		d, s := dst[y*ldd:y*ldd+cols], src[y*lds:y*lds+cols]
		if cols > 16 {
			p := (*[16]float32)(d[:16])
			archsimd.LoadFloat32x16((*[16]float32)(s[:16])).Add(archsimd.LoadFloat32x16(p)).Store(p)
			d, s = d[16:], s[16:]
		}
		archsimd.LoadFloat32x16SlicePart(s).Add(archsimd.LoadFloat32x16SlicePart(d)).StoreSlicePart(d)
	}
}

// MaxPoolRow max-pools one output row of windows that lie fully inside
// the image columns: for output o, the window covers rows[r][o*stride+j]
// for each r in order and j in [0, kw). out[o] is the largest value that
// exceeds -FLT_MAX, compared strictly in that (row-major) order as Caffe
// does, and idx[o] its index rowBase[r] + o*stride + j, or -1 if none.
// It covers len(out) outputs; each rows[r] must hold (len(out)-1)*stride+kw
// values.
func MaxPoolRow(rows [][]float32, rowBase []int32, kw, stride int, out []float32, idx []int32) {
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	n := len(out)
	idx = idx[:n]
	if !hasAVX512 && hasAVX2 && maskedPartsOK && (stride == 1 || stride == 2) && n > 0 {
		maxPoolRowAVX2(rows, rowBase, kw, stride, out, idx)
		return
	}
	if !hasAVX512 || !maskedPartsOK || (stride != 1 && stride != 2) || n == 0 {
		maxPoolRowGo(rows, rowBase, kw, stride, out, idx)
		return
	}
	var lanes [16]int32
	for i := range lanes {
		lanes[i] = int32(i * stride)
	}
	laneS := archsimd.LoadInt32x16(&lanes)
	even := archsimd.LoadUint32x16(&idxEven16)
	none := archsimd.BroadcastInt32x16(-1)
	floor := archsimd.BroadcastFloat32x16(-math.MaxFloat32)
	for o := 0; o < n; o += 16 {
		cnt := min(16, n-o)
		span := (cnt-1)*stride + 1 // values one window column spans
		best, arg := floor, none
		for r, row := range rows {
			for j := 0; j < kw; j++ {
				s := row[o*stride+j : o*stride+j+span]
				v := loadStrided16(s, stride, span, even)
				m := v.Greater(best)
				at := laneS.Add(archsimd.BroadcastInt32x16(rowBase[r] + int32(o*stride+j)))
				best, arg = v.Merge(best, m), at.Merge(arg, m)
			}
		}
		best.StoreSlicePart(out[o : o+cnt])
		arg.StoreSlicePart(idx[o : o+cnt])
	}
}

// maxPoolKW bounds the window width maxPoolInterior takes.
const maxPoolKW = 16

// maxPoolInterior max-pools output columns [lo, OW) of every output row
// of one plane, in one call: windows that start inside the image's columns
// (lo is the first that does not start in the left padding), rows and
// columns clipped to the image. Lanes whose window column lies past the
// image's right edge load -FLT_MAX, which never wins the strict
// comparison, so the result is the clipped window's, as Caffe's loop
// gives it; an empty window gives -FLT_MAX and -1 as the scalar path does.
// The vector constants are set up once per plane and no Go code runs
// between rows: per-row calls and a scalar pass for the clipped last
// column cost CIFAR-10's pool1 as much as its comparisons. It reports
// false, doing nothing, below the AVX2 level or for strides other than 1
// and 2.
func maxPoolInterior(g kernels.PoolGeom, xp, yp []float32, mask []int32, lo int) bool {
	stride := g.SW
	if !hasAVX2 || !maskedPartsOK || (stride != 1 && stride != 2) || g.OW <= lo || g.KW > maxPoolKW {
		return false
	}
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	if !hasAVX512 {
		maxPoolInteriorAVX2(g, xp, yp, mask, lo)
		return true
	}
	var lanes [16]int32
	for i := range lanes {
		lanes[i] = int32(i * stride)
	}
	laneS := archsimd.LoadInt32x16(&lanes)
	laneIdx := archsimd.LoadInt32x16(&laneIdx16)
	even := archsimd.LoadUint32x16(&idxEven16)
	none := archsimd.BroadcastInt32x16(-1)
	floor := archsimd.BroadcastFloat32x16(-math.MaxFloat32)
	// Column groups outside, rows inside: which lanes of a window column
	// lie inside the image depends on the group only, and is worked out
	// once per plane and group.
	var valid [maxPoolKW]int
	var keep [maxPoolKW]archsimd.Mask32x16
	for o := lo; o < g.OW; o += 16 {
		cnt := min(16, g.OW-o)
		// Lanes [0, valid[j]) have window column j inside the image:
		// (o+l)·stride - PW + j ≤ W-1.
		for j := 0; j < g.KW; j++ {
			valid[j] = 0
			if last := g.W - 1 + g.PW - j; last >= 0 {
				valid[j] = max(0, min(cnt, last/stride-o+1))
			}
			if valid[j] < cnt {
				keep[j] = archsimd.BroadcastInt32x16(int32(valid[j])).Greater(laneIdx)
			}
		}
		for oy := 0; oy < g.OH; oy++ {
			h0 := oy*g.SH - g.PH
			h1 := min(h0+g.KH, g.H)
			h0 = max(h0, 0)
			best, arg := floor, none
			for iy := h0; iy < h1; iy++ { // row-major order, as Caffe compares
				for j := 0; j < g.KW; j++ {
					if valid[j] == 0 {
						continue
					}
					span := (valid[j]-1)*stride + 1 // values the valid lanes span
					off := iy*g.W + o*stride - g.PW + j
					s := xp[off : off+span]
					v := loadStrided16(s, stride, span, even)
					if valid[j] < cnt {
						v = v.Merge(floor, keep[j])
					}
					m := v.Greater(best)
					at := laneS.Add(archsimd.BroadcastInt32x16(int32(off)))
					best, arg = v.Merge(best, m), at.Merge(arg, m)
				}
			}
			storePooled(best, arg, yp[oy*g.OW+o:oy*g.OW+o+cnt], mask[oy*g.OW+o:oy*g.OW+o+cnt])
		}
	}
	return true
}

// storePooled stores up to 16 pooled maxima and their indices into out
// and idx (len(out) of each): whole vectors, or their first lanes.
func storePooled(best archsimd.Float32x16, arg archsimd.Int32x16, out []float32, idx []int32) {
	if len(out) == 16 {
		best.Store((*[16]float32)(out))
		arg.Store((*[16]int32)(idx[:16]))
		return
	}
	best.StoreSlicePart(out)
	arg.StoreSlicePart(idx[:len(out)])
}

// SGDMomentum is one fused SGD step with momentum and L2 decay:
// g = norm·diff + decay·data; hist = lr·g + mom·hist; diff = hist;
// data -= hist. It reads each array once and writes three.
func SGDMomentum(diff, data, hist []float32, norm, decay, lr, mom float32) {
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	n := len(diff)
	data, hist = data[:n], hist[:n]
	if !hasAVX512 {
		if hasAVX2 {
			sgdMomentumAVX2(diff, data, hist, norm, decay, lr, mom)
			return
		}
		SGDMomentumRef(diff, data, hist, norm, decay, lr, mom)
		return
	}
	nv, dv := archsimd.BroadcastFloat32x16(norm), archsimd.BroadcastFloat32x16(decay)
	lv, mv := archsimd.BroadcastFloat32x16(lr), archsimd.BroadcastFloat32x16(mom)
	i := 0
	for ; i+16 <= n; i += 16 {
		pd, pw, ph := (*[16]float32)(diff[i:i+16]), (*[16]float32)(data[i:i+16]), (*[16]float32)(hist[i:i+16])
		w := archsimd.LoadFloat32x16(pw)
		g := archsimd.LoadFloat32x16(pd).Mul(nv).Add(w.Mul(dv))
		v := g.Mul(lv).Add(archsimd.LoadFloat32x16(ph).Mul(mv))
		v.Store(ph)
		v.Store(pd)
		w.Sub(v).Store(pw)
	}
	SGDMomentumRef(diff[i:], data[i:], hist[i:], norm, decay, lr, mom)
}

// ntKernel returns the sums of one GemmNTSum tile: eight 16-lane
// accumulators (4 rows of A by 2 rows of B) over the batch and k, each
// reduced across its lanes once at the end.
func ntKernel(batch, k int, a []float32, offA [ntRows]int, strideA int, b []float32, offB [ntCols]int, strideB int) [ntRows * ntCols]float32 {
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	if !hasAVX512 && hasAVX2 {
		return ntKernelAVX2(batch, k, a, offA, strideA, b, offB, strideB)
	}
	if !hasAVX512 || (k%16 != 0 && !maskedPartsOK) {
		return ntKernelGo(batch, k, a, offA, strideA, b, offB, strideB)
	}
	var c00, c01, c10, c11, c20, c21, c30, c31 archsimd.Float32x16
	kv := k &^ 15
	for bi := 0; bi < batch; bi++ {
		a0 := a[bi*strideA+offA[0] : bi*strideA+offA[0]+k]
		a1 := a[bi*strideA+offA[1] : bi*strideA+offA[1]+k]
		a2 := a[bi*strideA+offA[2] : bi*strideA+offA[2]+k]
		a3 := a[bi*strideA+offA[3] : bi*strideA+offA[3]+k]
		b0 := b[bi*strideB+offB[0] : bi*strideB+offB[0]+k]
		b1 := b[bi*strideB+offB[1] : bi*strideB+offB[1]+k]
		for p := 0; p < kv; p += 16 {
			x0 := archsimd.LoadFloat32x16((*[16]float32)(b0[p : p+16]))
			x1 := archsimd.LoadFloat32x16((*[16]float32)(b1[p : p+16]))
			y := archsimd.LoadFloat32x16((*[16]float32)(a0[p : p+16]))
			c00 = y.MulAdd(x0, c00)
			c01 = y.MulAdd(x1, c01)
			y = archsimd.LoadFloat32x16((*[16]float32)(a1[p : p+16]))
			c10 = y.MulAdd(x0, c10)
			c11 = y.MulAdd(x1, c11)
			y = archsimd.LoadFloat32x16((*[16]float32)(a2[p : p+16]))
			c20 = y.MulAdd(x0, c20)
			c21 = y.MulAdd(x1, c21)
			y = archsimd.LoadFloat32x16((*[16]float32)(a3[p : p+16]))
			c30 = y.MulAdd(x0, c30)
			c31 = y.MulAdd(x1, c31)
		}
		if kv < k {
			// The last k%16 values, zero-filled past the end.
			x0 := archsimd.LoadFloat32x16SlicePart(b0[kv:])
			x1 := archsimd.LoadFloat32x16SlicePart(b1[kv:])
			y := archsimd.LoadFloat32x16SlicePart(a0[kv:])
			c00 = y.MulAdd(x0, c00)
			c01 = y.MulAdd(x1, c01)
			y = archsimd.LoadFloat32x16SlicePart(a1[kv:])
			c10 = y.MulAdd(x0, c10)
			c11 = y.MulAdd(x1, c11)
			y = archsimd.LoadFloat32x16SlicePart(a2[kv:])
			c20 = y.MulAdd(x0, c20)
			c21 = y.MulAdd(x1, c21)
			y = archsimd.LoadFloat32x16SlicePart(a3[kv:])
			c30 = y.MulAdd(x0, c30)
			c31 = y.MulAdd(x1, c31)
		}
	}
	var s [ntRows * ntCols]float32
	var lanes [16]float32
	for t, v := range [ntRows * ntCols]archsimd.Float32x16{c00, c01, c10, c11, c20, c21, c30, c31} {
		v.Store(&lanes)
		s[t] = sumGo(lanes[:])
	}
	return s
}

// SReLU sets y = x where x > 0 and s·x elsewhere (NaN included, which
// stays NaN), 16 lanes at a time: the scalar max/min form with Go's NaN
// and signed-zero rules compiled to branches and ran at about 2.5 ns an
// element.
func SReLU(x, y []float32, s float32) {
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	y = y[:len(x)]
	if !hasAVX512 {
		if hasAVX2 {
			sreluAVX2(x, y, s)
			return
		}
		reluForward(x, y, s)
		return
	}
	sv, zero := archsimd.BroadcastFloat32x16(s), archsimd.BroadcastFloat32x16(0)
	i := 0
	for ; i+16 <= len(x); i += 16 {
		v := archsimd.LoadFloat32x16((*[16]float32)(x[i : i+16]))
		v.Merge(v.Mul(sv), v.Greater(zero)).Store((*[16]float32)(y[i : i+16]))
	}
	reluForward(x[i:], y[i:], s)
}

// SReLUBackward sets dx = dy·(s + (1-s)) where x > 0 and dy·s elsewhere,
// the products reluBackward32 forms, 16 lanes at a time.
func SReLUBackward(x, dy, dx []float32, s float32) {
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	dy, dx = dy[:len(x)], dx[:len(x)]
	if !hasAVX512 {
		if hasAVX2 {
			sreluBackwardAVX2(x, dy, dx, s)
			return
		}
		reluBackward32(x, dy, dx, s)
		return
	}
	sv, zero := archsimd.BroadcastFloat32x16(s), archsimd.BroadcastFloat32x16(0)
	pv := archsimd.BroadcastFloat32x16(s + (1 - s))
	i := 0
	for ; i+16 <= len(x); i += 16 {
		v := archsimd.LoadFloat32x16((*[16]float32)(x[i : i+16]))
		d := archsimd.LoadFloat32x16((*[16]float32)(dy[i : i+16]))
		d.Mul(pv).Merge(d.Mul(sv), v.Greater(zero)).Store((*[16]float32)(dx[i : i+16]))
	}
	reluBackward32(x[i:], dy[i:], dx[i:], s)
}

// loadStrided16 loads s[0], s[stride], … (up to 16 values; s holds the span
// values they cover, span ≤ 31 for stride 2): stride 1 is one load, stride
// 2 two loads and a permute by even (the lanes 0, 2, …, 30). Callers take
// only strides 1 and 2 this way.
func loadStrided16(s []float32, stride, span int, even archsimd.Uint32x16) archsimd.Float32x16 {
	if stride == 1 {
		return archsimd.LoadFloat32x16SlicePart(s)
	}
	lo := archsimd.LoadFloat32x16SlicePart(s[:min(16, span)])
	var hi archsimd.Float32x16
	if span > 16 {
		hi = archsimd.LoadFloat32x16SlicePart(s[16:])
	}
	return lo.ConcatPermute(hi, even)
}

// sgemm8x32seg (sgemm_amd64.s) is the 8×32 tile of an implicit product:
// see conv_implicit.go.
//
//go:noescape
func sgemm8x32seg(nseg, seglen int, a *float32, aoff *[segRows]int, acs int, segoff *int, b *float32, c *float32, ldc int, alpha float32, add bool)

// sgemm6x16segavx2 (sgemm_avx2_amd64.s) is the 6×16 tile of an implicit
// product at the AVX2 level, reading 16 columns of a 32-column sliver.
//
//go:noescape
func sgemm6x16segavx2(nseg, seglen int, a *float32, aoff *[segRows]int, acs int, segoff *int, b *float32, c *float32, ldc int, add bool)

// segTile returns the rows and columns of segKernel's tile: 6×16 at the
// AVX2 level, 8×32 elsewhere.
func segTile() (rows, cols int) {
	if !hasAVX512 && hasAVX2 {
		return 6, 16
	}
	return segRows, segCols
}

// segKernel computes one tile (segTile) of an implicit product into c
// (row stride ldc), or with add adds it there: row r of A reads a[base +
// aoff[r]/4 + segB[s]/4 + t·acs] (byte offsets), B's rows are the packed
// 32-column sliver's, from b on. The caller has checked A's bounds
// (implicitBuf.product).
func segKernel(seglen int, a []float32, base int, aoff *[segRows]int, acs int, segB []int, b []float32, c []float32, ldc int, add bool) {
	tr, tc := segTile()
	if len(segB) == 0 || seglen <= 0 || (!hasAVX512 && !hasAVX2) {
		kernelSegGo(tr, tc, seglen, a, base, aoff, acs, segB, b, c, ldc, add)
		return
	}
	_ = b[(len(segB)*seglen-1)*segCols+tc-1]
	_ = c[(tr-1)*ldc+tc-1]
	if hasAVX512 {
		sgemm8x32seg(len(segB), seglen, &a[base], aoff, acs, &segB[0], &b[0], &c[0], ldc, 1, add)
		return
	}
	sgemm6x16segavx2(len(segB), seglen, &a[base], aoff, acs, &segB[0], &b[0], &c[0], ldc, add)
}

// transpose8avx2 (sgemm_avx2_amd64.s) writes the transpose of the 8×8
// block at src (rows ld apart) to dst (rows ldd apart), at the AVX2 level.
//
//go:noescape
func transpose8avx2(src *float32, ld int, dst *float32, ldd int)

// transposeIdx holds the index vectors of transpose16's four rounds: round
// b swaps bit b of the row and column numbers between rows r and r|1<<b
// (lo for row r, hi for row r|1<<b).
var transposeIdx = func() (t [4][2][16]uint32) {
	for b := range 4 {
		bit := uint32(1) << b
		for c := range uint32(16) {
			if c&bit == 0 {
				t[b][0][c], t[b][1][c] = c, c|bit
			} else {
				t[b][0][c], t[b][1][c] = 16+(c^bit), 16+c
			}
		}
	}
	return t
}()

// transpose16 writes the transpose of the 16×16 block at src (rows ld
// apart) to dst (rows ldd apart): dst[t*ldd+i] = src[i*ld+t]. On AVX-512
// written out in full, so that the sixteen rows stay in registers (an
// array indexed in loops lives in memory); at the AVX2 level four 8×8
// blocks in assembly.
func transpose16(src []float32, ld int, dst []float32, ldd int) {
	if !hasAVX512 {
		if !hasAVX2 {
			transpose16Go(src, ld, dst, ldd)
			return
		}
		_, _ = src[15*ld+15], dst[15*ldd+15]
		transpose8avx2(&src[0], ld, &dst[0], ldd)
		transpose8avx2(&src[8], ld, &dst[8*ldd], ldd)
		transpose8avx2(&src[8*ld], ld, &dst[8], ldd)
		transpose8avx2(&src[8*ld+8], ld, &dst[8*ldd+8], ldd)
		return
	}
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	_, _ = src[15*ld+15], dst[15*ldd+15]
	v0 := archsimd.LoadFloat32x16((*[16]float32)(src[0*ld : 0*ld+16]))
	v1 := archsimd.LoadFloat32x16((*[16]float32)(src[1*ld : 1*ld+16]))
	v2 := archsimd.LoadFloat32x16((*[16]float32)(src[2*ld : 2*ld+16]))
	v3 := archsimd.LoadFloat32x16((*[16]float32)(src[3*ld : 3*ld+16]))
	v4 := archsimd.LoadFloat32x16((*[16]float32)(src[4*ld : 4*ld+16]))
	v5 := archsimd.LoadFloat32x16((*[16]float32)(src[5*ld : 5*ld+16]))
	v6 := archsimd.LoadFloat32x16((*[16]float32)(src[6*ld : 6*ld+16]))
	v7 := archsimd.LoadFloat32x16((*[16]float32)(src[7*ld : 7*ld+16]))
	v8 := archsimd.LoadFloat32x16((*[16]float32)(src[8*ld : 8*ld+16]))
	v9 := archsimd.LoadFloat32x16((*[16]float32)(src[9*ld : 9*ld+16]))
	v10 := archsimd.LoadFloat32x16((*[16]float32)(src[10*ld : 10*ld+16]))
	v11 := archsimd.LoadFloat32x16((*[16]float32)(src[11*ld : 11*ld+16]))
	v12 := archsimd.LoadFloat32x16((*[16]float32)(src[12*ld : 12*ld+16]))
	v13 := archsimd.LoadFloat32x16((*[16]float32)(src[13*ld : 13*ld+16]))
	v14 := archsimd.LoadFloat32x16((*[16]float32)(src[14*ld : 14*ld+16]))
	v15 := archsimd.LoadFloat32x16((*[16]float32)(src[15*ld : 15*ld+16]))
	lo, hi := archsimd.LoadUint32x16(&transposeIdx[0][0]), archsimd.LoadUint32x16(&transposeIdx[0][1])
	v0, v1 = v0.ConcatPermute(v1, lo), v0.ConcatPermute(v1, hi)
	v2, v3 = v2.ConcatPermute(v3, lo), v2.ConcatPermute(v3, hi)
	v4, v5 = v4.ConcatPermute(v5, lo), v4.ConcatPermute(v5, hi)
	v6, v7 = v6.ConcatPermute(v7, lo), v6.ConcatPermute(v7, hi)
	v8, v9 = v8.ConcatPermute(v9, lo), v8.ConcatPermute(v9, hi)
	v10, v11 = v10.ConcatPermute(v11, lo), v10.ConcatPermute(v11, hi)
	v12, v13 = v12.ConcatPermute(v13, lo), v12.ConcatPermute(v13, hi)
	v14, v15 = v14.ConcatPermute(v15, lo), v14.ConcatPermute(v15, hi)
	lo, hi = archsimd.LoadUint32x16(&transposeIdx[1][0]), archsimd.LoadUint32x16(&transposeIdx[1][1])
	v0, v2 = v0.ConcatPermute(v2, lo), v0.ConcatPermute(v2, hi)
	v1, v3 = v1.ConcatPermute(v3, lo), v1.ConcatPermute(v3, hi)
	v4, v6 = v4.ConcatPermute(v6, lo), v4.ConcatPermute(v6, hi)
	v5, v7 = v5.ConcatPermute(v7, lo), v5.ConcatPermute(v7, hi)
	v8, v10 = v8.ConcatPermute(v10, lo), v8.ConcatPermute(v10, hi)
	v9, v11 = v9.ConcatPermute(v11, lo), v9.ConcatPermute(v11, hi)
	v12, v14 = v12.ConcatPermute(v14, lo), v12.ConcatPermute(v14, hi)
	v13, v15 = v13.ConcatPermute(v15, lo), v13.ConcatPermute(v15, hi)
	lo, hi = archsimd.LoadUint32x16(&transposeIdx[2][0]), archsimd.LoadUint32x16(&transposeIdx[2][1])
	v0, v4 = v0.ConcatPermute(v4, lo), v0.ConcatPermute(v4, hi)
	v1, v5 = v1.ConcatPermute(v5, lo), v1.ConcatPermute(v5, hi)
	v2, v6 = v2.ConcatPermute(v6, lo), v2.ConcatPermute(v6, hi)
	v3, v7 = v3.ConcatPermute(v7, lo), v3.ConcatPermute(v7, hi)
	v8, v12 = v8.ConcatPermute(v12, lo), v8.ConcatPermute(v12, hi)
	v9, v13 = v9.ConcatPermute(v13, lo), v9.ConcatPermute(v13, hi)
	v10, v14 = v10.ConcatPermute(v14, lo), v10.ConcatPermute(v14, hi)
	v11, v15 = v11.ConcatPermute(v15, lo), v11.ConcatPermute(v15, hi)
	lo, hi = archsimd.LoadUint32x16(&transposeIdx[3][0]), archsimd.LoadUint32x16(&transposeIdx[3][1])
	v0, v8 = v0.ConcatPermute(v8, lo), v0.ConcatPermute(v8, hi)
	v1, v9 = v1.ConcatPermute(v9, lo), v1.ConcatPermute(v9, hi)
	v2, v10 = v2.ConcatPermute(v10, lo), v2.ConcatPermute(v10, hi)
	v3, v11 = v3.ConcatPermute(v11, lo), v3.ConcatPermute(v11, hi)
	v4, v12 = v4.ConcatPermute(v12, lo), v4.ConcatPermute(v12, hi)
	v5, v13 = v5.ConcatPermute(v13, lo), v5.ConcatPermute(v13, hi)
	v6, v14 = v6.ConcatPermute(v14, lo), v6.ConcatPermute(v14, hi)
	v7, v15 = v7.ConcatPermute(v15, lo), v7.ConcatPermute(v15, hi)
	v0.Store((*[16]float32)(dst[0*ldd : 0*ldd+16]))
	v1.Store((*[16]float32)(dst[1*ldd : 1*ldd+16]))
	v2.Store((*[16]float32)(dst[2*ldd : 2*ldd+16]))
	v3.Store((*[16]float32)(dst[3*ldd : 3*ldd+16]))
	v4.Store((*[16]float32)(dst[4*ldd : 4*ldd+16]))
	v5.Store((*[16]float32)(dst[5*ldd : 5*ldd+16]))
	v6.Store((*[16]float32)(dst[6*ldd : 6*ldd+16]))
	v7.Store((*[16]float32)(dst[7*ldd : 7*ldd+16]))
	v8.Store((*[16]float32)(dst[8*ldd : 8*ldd+16]))
	v9.Store((*[16]float32)(dst[9*ldd : 9*ldd+16]))
	v10.Store((*[16]float32)(dst[10*ldd : 10*ldd+16]))
	v11.Store((*[16]float32)(dst[11*ldd : 11*ldd+16]))
	v12.Store((*[16]float32)(dst[12*ldd : 12*ldd+16]))
	v13.Store((*[16]float32)(dst[13*ldd : 13*ldd+16]))
	v14.Store((*[16]float32)(dst[14*ldd : 14*ldd+16]))
	v15.Store((*[16]float32)(dst[15*ldd : 15*ldd+16]))
}

// col2imNarrow is col2imUnit (unit windows) for images whose padded rows
// fit one vector (w + 2·pw ≤ 16, ow ≤ 16) on AVX-512: each row of the
// image is summed in a register from every column row that adds into it,
// each shifted into place by a permute, in the (ki, kj) order col2imUnit
// adds them, and stored once. Four image rows are summed at a time, in
// four registers, so that their adds overlap (one row's chain of kh·kw
// dependent adds left the core waiting on each add's latency); each
// shifted column row is permuted by the same index for all four.
// col2imUnit's adds of short rows into the padded image, one call per
// column row, cost LeNet's conv2 backward a third of its time. It reports
// false, doing nothing, elsewhere.
func col2imNarrow(col []float32, c, h, w int, g kernels.ConvGeom, oh, ow int, im []float32) bool {
	if !hasAVX512 || !maskedPartsOK || ow > 16 || w+2*g.PW > 16 || g.KW > 16 || c <= 0 || h <= 0 || w <= 0 {
		return false
	}
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	sp, kk := oh*ow, g.KH*g.KW
	col, im = col[:c*kk*sp], im[:c*h*w]
	// shift[kj] moves a column row's ow values to lanes kj.., zero
	// elsewhere (index 16: lane 0 of the zero vector); out moves the
	// image's columns (pw.. of the padded row) to lanes 0...
	var shift [16][16]uint32
	var out [16]uint32
	for kj := 0; kj < g.KW; kj++ {
		for l := range shift[kj] {
			shift[kj][l] = 16
			if x := l - kj; x >= 0 && x < ow {
				shift[kj][l] = uint32(x)
			}
		}
	}
	for l := range out {
		out[l] = uint32(min(l+g.PW, 31))
	}
	outIdx := archsimd.LoadUint32x16(&out)
	var zero archsimd.Float32x16
	end := g.PH + h // padded rows g.PH..end-1 are inside the image
	for ch := 0; ch < c; ch++ {
		cc := col[ch*kk*sp : (ch+1)*kk*sp]
		cx := col[ch*kk*sp:] // cc and the channels after it
		for Y := g.PH; Y < end; Y += 4 {
			// Padded rows Y..Y+3; those at or past end are summed from
			// no column rows, or dropped.
			var a0, a1, a2, a3 archsimd.Float32x16
			for ki := max(0, Y-oh+1); ki <= min(g.KH-1, Y+3); ki++ {
				y := Y - ki // the output row adding into padded row Y
				if y >= 0 && y+3 < oh && Y+3 < end && (ki*g.KW+g.KW-1)*sp+3*ow+y*ow+16 <= len(cx) {
					// All four rows add, from whole vectors of col: the
					// lanes past ow (the next rows' values) go to zero.
					base := ki*g.KW*sp + y*ow
					for kj := 0; kj < g.KW; kj++ {
						idx := archsimd.LoadUint32x16(&shift[kj])
						v := cx[base+kj*sp : base+kj*sp+3*ow+16]
						a0 = a0.Add(archsimd.LoadFloat32x16((*[16]float32)(v[:16])).ConcatPermute(zero, idx))
						a1 = a1.Add(archsimd.LoadFloat32x16((*[16]float32)(v[ow:ow+16])).ConcatPermute(zero, idx))
						a2 = a2.Add(archsimd.LoadFloat32x16((*[16]float32)(v[2*ow:2*ow+16])).ConcatPermute(zero, idx))
						a3 = a3.Add(archsimd.LoadFloat32x16((*[16]float32)(v[3*ow:3*ow+16])).ConcatPermute(zero, idx))
					}
					continue
				}
				for kj := 0; kj < g.KW; kj++ {
					idx := archsimd.LoadUint32x16(&shift[kj])
					o := (ki*g.KW+kj)*sp + y*ow
					if y >= 0 && y < oh {
						a0 = a0.Add(col2imRow(cc, o, ow).ConcatPermute(zero, idx))
					}
					if y+1 >= 0 && y+1 < oh && Y+1 < end {
						a1 = a1.Add(col2imRow(cc, o+ow, ow).ConcatPermute(zero, idx))
					}
					if y+2 >= 0 && y+2 < oh && Y+2 < end {
						a2 = a2.Add(col2imRow(cc, o+2*ow, ow).ConcatPermute(zero, idx))
					}
					if y+3 >= 0 && y+3 < oh && Y+3 < end {
						a3 = a3.Add(col2imRow(cc, o+3*ow, ow).ConcatPermute(zero, idx))
					}
				}
			}
			r := (ch*h + Y - g.PH) * w
			a0.ConcatPermute(zero, outIdx).StoreSlicePart(im[r : r+w])
			if Y+1 < end {
				a1.ConcatPermute(zero, outIdx).StoreSlicePart(im[r+w : r+2*w])
			}
			if Y+2 < end {
				a2.ConcatPermute(zero, outIdx).StoreSlicePart(im[r+2*w : r+3*w])
			}
			if Y+3 < end {
				a3.ConcatPermute(zero, outIdx).StoreSlicePart(im[r+3*w : r+4*w])
			}
		}
	}
	return true
}

// col2imRow loads the ow values of a column row's output row at cc[o:],
// as a whole vector where the slice holds 16 values from o.
func col2imRow(cc []float32, o, ow int) archsimd.Float32x16 {
	if o+16 <= len(cc) {
		return archsimd.LoadFloat32x16((*[16]float32)(cc[o : o+16]))
	}
	return archsimd.LoadFloat32x16SlicePart(cc[o : o+ow])
}
