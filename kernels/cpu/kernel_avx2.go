//go:build goexperiment.simd && amd64

package cpu

import (
	"math"
	"simd/archsimd"

	"github.com/gocaffe/gocaffe/kernels"
)

// Permute indices and lane offsets of the AVX2 pooling kernels.
// Package variables, not literals: a literal is built on the stack by
// 8-byte stores each call, and the vector load of it cannot be forwarded
// from them; it waits until they have left the core, once per plane of
// LeNet's pool2.
var (
	laneIdx8   = [8]int32{0, 1, 2, 3, 4, 5, 6, 7}
	idxEvenLo8 = [8]uint32{0, 2, 4, 6, 0, 2, 4, 6}
	idxOddLo8  = [8]uint32{1, 3, 5, 7, 1, 3, 5, 7}
	lane2x8    = [8]int32{0, 2, 4, 6, 8, 10, 12, 14}
)

// The AVX2 + FMA paths, for x86-64 CPUs without AVX-512 (level.go). They
// use 8-lane vectors without masks: tails run in scalar Go (max pooling's
// rows, 8 to 15 outputs in LeNet and CIFAR-10, load their partial vectors
// with VMASKMOVPS instead), after zeroUpper, and only where there is a
// tail: scalar Go is SSE code, which pays an AVX-SSE transition per
// instruction while the upper halves are dirty (see zeroUpper). One
// scalar add per row in SAddRowSums's loop made it 15× slower (64 rows of
// 64: 8.2 µs against 0.44 µs).

// microKernelAVX2 is microKernel on AVX2: the tile's columns run as 4×24
// and 4×16 strips in assembly, straight into C where the tile has all its
// rows and the strip all its columns, else into acc, which the Go side
// scales into C. Strips never read B past where the AVX-512 kernels
// would: 32 columns when cols ≤ 32, else 64.
func microKernelAVX2(kb int, alpha float32, a []float32, offs *[mr]int, cs int, b []float32, ldb int, c []float32, ldc, rows, cols int, overwrite bool, acc *[mr * nr]float32) {
	last := (kb - 1) * cs
	var aoff [mr]int
	for r, o := range offs {
		_ = a[o+last]
		aoff[r] = 4 * (o - offs[0])
	}
	width := 64
	if cols <= 32 {
		width = 32
	}
	_ = b[(kb-1)*ldb+width-1]
	_ = c[(rows-1)*ldc+cols-1]
	// Columns [c0, cols) go through acc.
	c0 := 0
	if rows == mr {
		c0 = cols
	}
	for j := 0; j < cols; {
		// 24 wide while more than 16 columns are left, except that 32
		// go as two whole 16s.
		w := 16
		if width-j >= 24 && cols-j > 16 && cols-j != 32 {
			w = 24
		}
		cp, ldp, al, add := &acc[j], nr, float32(1), false
		if rows == mr && j+w <= cols {
			cp, ldp, al, add = &c[j], ldc, alpha, !overwrite
		} else {
			c0 = min(c0, j)
		}
		if w == 24 {
			sgemm4x24avx2(kb, &a[offs[0]], &aoff, cs, &b[j], ldb, cp, ldp, al, add)
		} else {
			sgemm4x16avx2(kb, &a[offs[0]], &aoff, cs, &b[j], ldb, cp, ldp, al, add)
		}
		j += w
	}
	if c0 == cols {
		return
	}
	al := archsimd.BroadcastFloat32x8(alpha)
	cv := c0 + (cols-c0)&^7
	for r := 0; r < rows; r++ {
		crow, arow := c[r*ldc:r*ldc+cv], acc[r*nr:r*nr+cv]
		for j := c0; j < cv; j += 8 {
			p := (*[8]float32)(crow[j : j+8])
			v := archsimd.LoadFloat32x8((*[8]float32)(arow[j : j+8]))
			if overwrite {
				v.Mul(al).Store(p)
			} else {
				v.MulAdd(al, archsimd.LoadFloat32x8(p)).Store(p)
			}
		}
	}
	if cv == cols {
		return
	}
	zeroUpper() // the tails below are SSE code
	for r := 0; r < rows; r++ {
		crow, arow := c[r*ldc+cv:r*ldc+cols], acc[r*nr+cv:r*nr+cols]
		for j, v := range arow {
			if overwrite {
				crow[j] = alpha * v
			} else {
				crow[j] += alpha * v
			}
		}
	}
}

func saxpyAVX2(alpha float32, x, y []float32) {
	av := archsimd.BroadcastFloat32x8(alpha)
	i := 0
	for ; i+8 <= len(x); i += 8 {
		py := (*[8]float32)(y[i : i+8])
		av.MulAdd(archsimd.LoadFloat32x8((*[8]float32)(x[i:i+8])), archsimd.LoadFloat32x8(py)).Store(py)
	}
	if i < len(x) {
		zeroUpper() // the tail is SSE code
		axpyGo(alpha, x[i:], y[i:])
	}
}

func sscalAVX2(alpha float32, x []float32) {
	av := archsimd.BroadcastFloat32x8(alpha)
	i := 0
	for ; i+8 <= len(x); i += 8 {
		px := (*[8]float32)(x[i : i+8])
		archsimd.LoadFloat32x8(px).Mul(av).Store(px)
	}
	if i < len(x) {
		zeroUpper() // the tail is SSE code
		scalGo(alpha, x[i:])
	}
}

func sshiftAVX2(alpha float32, x []float32) {
	av := archsimd.BroadcastFloat32x8(alpha)
	i := 0
	for ; i+8 <= len(x); i += 8 {
		px := (*[8]float32)(x[i : i+8])
		archsimd.LoadFloat32x8(px).Add(av).Store(px)
	}
	if i < len(x) {
		zeroUpper() // the tail is SSE code
		shiftGo(alpha, x[i:])
	}
}

func sdotAVX2(x, y []float32) float32 {
	var s0, s1 archsimd.Float32x8
	i := 0
	for ; i+16 <= len(x); i += 16 {
		s0 = archsimd.LoadFloat32x8((*[8]float32)(x[i:i+8])).MulAdd(archsimd.LoadFloat32x8((*[8]float32)(y[i:i+8])), s0)
		s1 = archsimd.LoadFloat32x8((*[8]float32)(x[i+8:i+16])).MulAdd(archsimd.LoadFloat32x8((*[8]float32)(y[i+8:i+16])), s1)
	}
	var tmp [8]float32
	s0.Add(s1).Store(&tmp)
	zeroUpper() // the sums below are SSE code
	return sumGo(tmp[:]) + dotGo(x[i:], y[i:])
}

func ssumAVX2(x []float32) float32 {
	var s0, s1 archsimd.Float32x8
	i := 0
	for ; i+16 <= len(x); i += 16 {
		s0 = s0.Add(archsimd.LoadFloat32x8((*[8]float32)(x[i : i+8])))
		s1 = s1.Add(archsimd.LoadFloat32x8((*[8]float32)(x[i+8 : i+16])))
	}
	var tmp [8]float32
	s0.Add(s1).Store(&tmp)
	zeroUpper() // the sums below are SSE code
	return sumGo(tmp[:]) + sumGo(x[i:])
}

func sgdMomentumAVX2(diff, data, hist []float32, norm, decay, lr, mom float32) {
	n := len(diff)
	nv, dv := archsimd.BroadcastFloat32x8(norm), archsimd.BroadcastFloat32x8(decay)
	lv, mv := archsimd.BroadcastFloat32x8(lr), archsimd.BroadcastFloat32x8(mom)
	i := 0
	for ; i+8 <= n; i += 8 {
		pd, pw, ph := (*[8]float32)(diff[i:i+8]), (*[8]float32)(data[i:i+8]), (*[8]float32)(hist[i:i+8])
		w := archsimd.LoadFloat32x8(pw)
		g := archsimd.LoadFloat32x8(pd).Mul(nv).Add(w.Mul(dv))
		v := g.Mul(lv).Add(archsimd.LoadFloat32x8(ph).Mul(mv))
		v.Store(ph)
		v.Store(pd)
		w.Sub(v).Store(pw)
	}
	if i < n {
		zeroUpper() // the tail is SSE code
		SGDMomentumRef(diff[i:], data[i:], hist[i:], norm, decay, lr, mom)
	}
}

// ntKernelAVX2 is ntKernel with 8-lane accumulators; the last k%8 values
// of each row pair are added in scalar Go.
func ntKernelAVX2(batch, k int, a []float32, offA [ntRows]int, strideA int, b []float32, offB [ntCols]int, strideB int) [ntRows * ntCols]float32 {
	var c00, c01, c10, c11, c20, c21, c30, c31 archsimd.Float32x8
	var s [ntRows * ntCols]float32
	kv := k &^ 7
	for bi := 0; bi < batch; bi++ {
		a0 := a[bi*strideA+offA[0] : bi*strideA+offA[0]+k]
		a1 := a[bi*strideA+offA[1] : bi*strideA+offA[1]+k]
		a2 := a[bi*strideA+offA[2] : bi*strideA+offA[2]+k]
		a3 := a[bi*strideA+offA[3] : bi*strideA+offA[3]+k]
		b0 := b[bi*strideB+offB[0] : bi*strideB+offB[0]+k]
		b1 := b[bi*strideB+offB[1] : bi*strideB+offB[1]+k]
		for p := 0; p < kv; p += 8 {
			x0 := archsimd.LoadFloat32x8((*[8]float32)(b0[p : p+8]))
			x1 := archsimd.LoadFloat32x8((*[8]float32)(b1[p : p+8]))
			y := archsimd.LoadFloat32x8((*[8]float32)(a0[p : p+8]))
			c00 = y.MulAdd(x0, c00)
			c01 = y.MulAdd(x1, c01)
			y = archsimd.LoadFloat32x8((*[8]float32)(a1[p : p+8]))
			c10 = y.MulAdd(x0, c10)
			c11 = y.MulAdd(x1, c11)
			y = archsimd.LoadFloat32x8((*[8]float32)(a2[p : p+8]))
			c20 = y.MulAdd(x0, c20)
			c21 = y.MulAdd(x1, c21)
			y = archsimd.LoadFloat32x8((*[8]float32)(a3[p : p+8]))
			c30 = y.MulAdd(x0, c30)
			c31 = y.MulAdd(x1, c31)
		}
		if kv < k {
			zeroUpper() // the tail is SSE code
		}
		for p := kv; p < k; p++ {
			rows := [ntRows]float32{a0[p], a1[p], a2[p], a3[p]}
			for r, av := range rows {
				s[r*ntCols] += av * b0[p]
				s[r*ntCols+1] += av * b1[p]
			}
		}
	}
	var lanes [ntRows * ntCols][8]float32
	for t, v := range [ntRows * ntCols]archsimd.Float32x8{c00, c01, c10, c11, c20, c21, c30, c31} {
		v.Store(&lanes[t])
	}
	zeroUpper() // the sums below are SSE code
	for t := range lanes {
		s[t] += sumGo(lanes[t][:])
	}
	return s
}

func sreluAVX2(x, y []float32, s float32) {
	sv, zero := archsimd.BroadcastFloat32x8(s), archsimd.BroadcastFloat32x8(0)
	i := 0
	for ; i+8 <= len(x); i += 8 {
		v := archsimd.LoadFloat32x8((*[8]float32)(x[i : i+8]))
		v.Merge(v.Mul(sv), v.Greater(zero)).Store((*[8]float32)(y[i : i+8]))
	}
	if i < len(x) {
		zeroUpper() // the tail is SSE code
		reluForward(x[i:], y[i:], s)
	}
}

func sreluBackwardAVX2(x, dy, dx []float32, s float32) {
	sv, zero := archsimd.BroadcastFloat32x8(s), archsimd.BroadcastFloat32x8(0)
	pv := archsimd.BroadcastFloat32x8(s + (1 - s))
	i := 0
	for ; i+8 <= len(x); i += 8 {
		v := archsimd.LoadFloat32x8((*[8]float32)(x[i : i+8]))
		d := archsimd.LoadFloat32x8((*[8]float32)(dy[i : i+8]))
		d.Mul(pv).Merge(d.Mul(sv), v.Greater(zero)).Store((*[8]float32)(dx[i : i+8]))
	}
	if i < len(x) {
		zeroUpper() // the tail is SSE code
		reluBackward32(x[i:], dy[i:], dx[i:], s)
	}
}

// maxPoolRowAVX2 is MaxPoolRow at the AVX2 level (stride 1 or 2): eight
// outputs a vector; for stride 2 each window column's eight values are
// the even elements of two loads, gathered by two VPERMPS and a blend.
func maxPoolRowAVX2(rows [][]float32, rowBase []int32, kw, stride int, out []float32, idx []int32) {
	n := len(out)
	var lanes [8]int32
	for i := range lanes {
		lanes[i] = int32(i * stride)
	}
	laneS := archsimd.LoadInt32x8(&lanes)
	upper := archsimd.LoadInt32x8(&laneIdx8).Greater(archsimd.BroadcastInt32x8(3))
	evenLo := archsimd.LoadUint32x8(&idxEvenLo8)
	none := archsimd.BroadcastInt32x8(-1)
	floor := archsimd.BroadcastFloat32x8(-math.MaxFloat32)
	for o := 0; o < n; o += 8 {
		cnt := min(8, n-o)
		span := (cnt-1)*stride + 1 // values one window column spans
		best, arg := floor, none
		for r, row := range rows {
			for j := 0; j < kw; j++ {
				s := row[o*stride+j : o*stride+j+span]
				var v archsimd.Float32x8
				if stride == 1 {
					v = archsimd.LoadFloat32x8SlicePart(s)
				} else {
					lo := archsimd.LoadFloat32x8SlicePart(s[:min(8, span)])
					var hi archsimd.Float32x8
					if span > 8 {
						hi = archsimd.LoadFloat32x8SlicePart(s[8:])
					}
					v = hi.Permute(evenLo).Merge(lo.Permute(evenLo), upper)
				}
				m := v.Greater(best)
				at := laneS.Add(archsimd.BroadcastInt32x8(rowBase[r] + int32(o*stride+j)))
				best, arg = v.Merge(best, m), at.Merge(arg, m)
			}
		}
		best.StoreSlicePart(out[o : o+cnt])
		arg.StoreSlicePart(idx[o : o+cnt])
	}
}

// addRowSumsAVX2 is SAddRowSums at the AVX2 level: eight rows at a time,
// each reduced to eight lane sums, which one 8×8 transpose and seven
// vector adds finish together; the rest row by row.
func addRowSumsAVX2(x []float32, cols int, out []float32) {
	var part, tr [8 * 8]float32
	cv := cols &^ 7
	r0 := 0
	for ; r0+8 <= len(out); r0 += 8 {
		for q := range 8 {
			rowLanesAVX2(x[(r0+q)*cols : (r0+q)*cols+cv]).Store((*[8]float32)(part[q*8 : q*8+8]))
		}
		transpose8avx2(&part[0], 8, &tr[0], 8)
		sum := archsimd.LoadFloat32x8((*[8]float32)(tr[:8]))
		for t := 1; t < 8; t++ {
			sum = sum.Add(archsimd.LoadFloat32x8((*[8]float32)(tr[t*8 : t*8+8])))
		}
		o := (*[8]float32)(out[r0 : r0+8])
		sum.Add(archsimd.LoadFloat32x8(o)).Store(o)
	}
	rest := len(out) - r0 // fewer than 8 rows: their lanes go to part
	for q := range rest {
		rowLanesAVX2(x[(r0+q)*cols : (r0+q)*cols+cv]).Store((*[8]float32)(part[q*8 : q*8+8]))
	}
	if rest == 0 && cv == cols {
		return
	}
	zeroUpper() // the sums below are SSE code
	for q := range rest {
		out[r0+q] += sumGo(part[q*8 : q*8+8])
	}
	if cv < cols {
		for r := range out {
			out[r] += sumGo(x[r*cols+cv : (r+1)*cols])
		}
	}
}

// rowLanesAVX2 returns eight lane sums of row (len(row) a multiple of 8):
// four accumulators, so that the adds' latency does not bind.
func rowLanesAVX2(row []float32) archsimd.Float32x8 {
	var s0, s1, s2, s3 archsimd.Float32x8
	i := 0
	for ; i+32 <= len(row); i += 32 {
		s0 = s0.Add(archsimd.LoadFloat32x8((*[8]float32)(row[i : i+8])))
		s1 = s1.Add(archsimd.LoadFloat32x8((*[8]float32)(row[i+8 : i+16])))
		s2 = s2.Add(archsimd.LoadFloat32x8((*[8]float32)(row[i+16 : i+24])))
		s3 = s3.Add(archsimd.LoadFloat32x8((*[8]float32)(row[i+24 : i+32])))
	}
	for ; i+8 <= len(row); i += 8 {
		s0 = s0.Add(archsimd.LoadFloat32x8((*[8]float32)(row[i : i+8])))
	}
	return s0.Add(s1).Add(s2.Add(s3))
}

// maxPoolInteriorAVX2 is maxPoolInterior at the AVX2 level: eight outputs
// a vector, the window columns of stride 2 gathered as maxPoolRowAVX2
// gathers them, and the lanes past the image's right edge set to -FLT_MAX
// by masks worked out once per plane and column group.
func maxPoolInteriorAVX2(g kernels.PoolGeom, xp, yp []float32, mask []int32, lo int) {
	stride := g.SW
	var lanes [8]int32
	for i := range lanes {
		lanes[i] = int32(i * stride)
	}
	laneS := archsimd.LoadInt32x8(&lanes)
	laneIdx := archsimd.LoadInt32x8(&laneIdx8)
	upper := laneIdx.Greater(archsimd.BroadcastInt32x8(3))
	evenLo := archsimd.LoadUint32x8(&idxEvenLo8)
	none := archsimd.BroadcastInt32x8(-1)
	floor := archsimd.BroadcastFloat32x8(-math.MaxFloat32)
	var valid [maxPoolKW]int
	var keep [maxPoolKW]archsimd.Mask32x8
	for o := lo; o < g.OW; o += 8 {
		cnt := min(8, g.OW-o)
		// Lanes [0, valid[j]) have window column j inside the image.
		for j := 0; j < g.KW; j++ {
			valid[j] = 0
			if last := g.W - 1 + g.PW - j; last >= 0 {
				valid[j] = max(0, min(cnt, last/stride-o+1))
			}
			if valid[j] < cnt {
				keep[j] = archsimd.BroadcastInt32x8(int32(valid[j])).Greater(laneIdx)
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
					var v archsimd.Float32x8
					if stride == 1 {
						v = archsimd.LoadFloat32x8SlicePart(s)
					} else {
						lo := archsimd.LoadFloat32x8SlicePart(s[:min(8, span)])
						var hi archsimd.Float32x8
						if span > 8 {
							hi = archsimd.LoadFloat32x8SlicePart(s[8:])
						}
						v = hi.Permute(evenLo).Merge(lo.Permute(evenLo), upper)
					}
					if valid[j] < cnt {
						v = v.Merge(floor, keep[j])
					}
					m := v.Greater(best)
					at := laneS.Add(archsimd.BroadcastInt32x8(int32(off)))
					best, arg = v.Merge(best, m), at.Merge(arg, m)
				}
			}
			out, idx := yp[oy*g.OW+o:oy*g.OW+o+cnt], mask[oy*g.OW+o:oy*g.OW+o+cnt]
			if cnt == 8 {
				best.Store((*[8]float32)(out))
				arg.Store((*[8]int32)(idx))
				continue
			}
			best.StoreSlicePart(out)
			arg.StoreSlicePart(idx)
		}
	}
}

// maxPool2x2PlaneAVX2 is MaxPool2x2Plane at the AVX2 level: eight outputs
// a vector from up to 16 values of each of the two rows, whose even and
// odd elements two VPERMPS and a blend gather; the four window values are
// compared in Caffe's order. A short last group (LeNet's rows have 12 and
// 4 outputs) loads and stores only its part.
func maxPool2x2PlaneAVX2(x []float32, w int, out []float32, idx []int32, ldo, rows, cols int) {
	laneIdx := archsimd.LoadInt32x8(&laneIdx8)
	upper := laneIdx.Greater(archsimd.BroadcastInt32x8(3))
	evenLo := archsimd.LoadUint32x8(&idxEvenLo8)
	oddLo := archsimd.LoadUint32x8(&idxOddLo8)
	lane2 := archsimd.LoadInt32x8(&lane2x8)
	one := archsimd.BroadcastInt32x8(1)
	none := archsimd.BroadcastInt32x8(-1)
	floor := archsimd.BroadcastFloat32x8(-math.MaxFloat32)
	for oy := 0; oy < rows; oy++ {
		b0 := 2 * oy * w
		r0, r1 := x[b0:b0+2*cols], x[b0+w:b0+w+2*cols]
		orow, irow := out[oy*ldo:oy*ldo+cols], idx[oy*ldo:oy*ldo+cols]
		for o := 0; o < cols; o += 8 {
			cnt := min(8, cols-o)
			a0 := archsimd.LoadFloat32x8SlicePart(r0[2*o : 2*o+min(8, 2*cnt)])
			c0 := archsimd.LoadFloat32x8SlicePart(r1[2*o : 2*o+min(8, 2*cnt)])
			var a1, c1 archsimd.Float32x8
			if cnt > 4 {
				a1 = archsimd.LoadFloat32x8SlicePart(r0[2*o+8 : 2*o+2*cnt])
				c1 = archsimd.LoadFloat32x8SlicePart(r1[2*o+8 : 2*o+2*cnt])
			}
			i00 := lane2.Add(archsimd.BroadcastInt32x8(int32(b0 + 2*o)))
			i10 := lane2.Add(archsimd.BroadcastInt32x8(int32(b0 + w + 2*o)))
			best, arg := floor, none
			v := a1.Permute(evenLo).Merge(a0.Permute(evenLo), upper)
			m := v.Greater(best)
			best, arg = v.Merge(best, m), i00.Merge(arg, m)
			v = a1.Permute(oddLo).Merge(a0.Permute(oddLo), upper)
			m = v.Greater(best)
			best, arg = v.Merge(best, m), i00.Add(one).Merge(arg, m)
			v = c1.Permute(evenLo).Merge(c0.Permute(evenLo), upper)
			m = v.Greater(best)
			best, arg = v.Merge(best, m), i10.Merge(arg, m)
			v = c1.Permute(oddLo).Merge(c0.Permute(oddLo), upper)
			m = v.Greater(best)
			best, arg = v.Merge(best, m), i10.Add(one).Merge(arg, m)
			if cnt == 8 {
				best.Store((*[8]float32)(orow[o : o+8]))
				arg.Store((*[8]int32)(irow[o : o+8]))
				continue
			}
			best.StoreSlicePart(orow[o : o+cnt])
			arg.StoreSlicePart(irow[o : o+cnt])
		}
	}
}
