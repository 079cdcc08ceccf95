package cpu

import (
	"sync"

	"github.com/gocaffe/gocaffe/kernels"
)

// Implicit-GEMM convolution products: the GEMM's A operand, a convolution's
// column matrix, is read straight from the zero-padded image, whose rows
// of columns are runs ("segments") of the padded image, instead of being
// laid out by Im2col first. CIFAR-10 quick's conv2 builds 800 KB of
// columns per image for 13 MFLOP; the padded image is 51 KB and stays in
// L1/L2.

// The implicit products run tiles of C of at most segRows×segCols: 8×32
// (sgemm8x32seg) on AVX-512 and in portable Go, 6×16 (sgemm6x16segavx2)
// at the AVX2 level; segTile says which. B is packed in 32-column slivers
// on every level, and a 16-column tile reads half of one.
const (
	segRows = 8
	segCols = 32
)

// implicitBuf is the scratch of one implicit product: the padded image,
// B packed in 32-column slivers, and the row and segment offsets.
type implicitBuf struct {
	pad, b []float32
	ct     []float32 // the transposed output of ConvForward
	rows   []int     // element offsets of A's rows
	segs   []int     // element offsets of the segments
	segB   []int     // the same in bytes, for the assembly
	edge   [segRows * segCols]float32
}

// implicitPool recycles implicitBuf between calls; it holds no state that
// outlives a call.
var implicitPool = sync.Pool{New: func() any { return new(implicitBuf) }}

// grow returns s with length n, reallocated when its capacity is short.
func grow[E any](s []E, n int) []E {
	if cap(s) < n {
		return make([]E, n)
	}
	return s[:n]
}

// ImplicitConv reports whether ConvWeightsT and ConvForward run in T:
// float32 on the AVX-512 or AVX2 kernels. Elsewhere they panic; callers
// run Im2col and GEMMs instead.
func ImplicitConv[T Float]() bool {
	_, ok := any([]T(nil)).([]float32)
	return ok && KernelLevel() >= LevelAVX2
}

// ConvWeightsT sets dwT (kdim×oc, row stride ldc, kdim = c·kh·kw) to
// im2col(im)·dyᵀ + beta·dwT for one image (c×h×w) and its top diff dy
// (oc×oh·ow), reading the columns from the padded image in place.
func ConvWeightsT[T Float](im []T, c, h, w int, g kernels.ConvGeom, oh, ow int, dy []T, oc int, dwT []T, ldc int, beta T) {
	mustImplicit[T]("ConvWeightsT")
	convWeightsT(any(im).([]float32), c, h, w, g, oh, ow, any(dy).([]float32), oc, any(dwT).([]float32), ldc, float32(beta))
}

// mustImplicit panics where ImplicitConv reports false: a caller's bug,
// like indexing out of range.
func mustImplicit[T Float](name string) {
	if !ImplicitConv[T]() {
		panic("cpu." + name + ": the implicit convolution kernels are not in use (see ImplicitConv)")
	}
}

// convWeightsT is ConvWeightsT on any kernel level (the tile kernel in Go
// below AVX2, for tests).
func convWeightsT(im []float32, c, h, w int, g kernels.ConvGeom, oh, ow int, dy []float32, oc int, dwT []float32, ldc int, beta float32) {
	buf := implicitPool.Get().(*implicitBuf)
	defer implicitPool.Put(buf)
	xp, hp, wp := buf.padImage(im, c, h, w, g.PH, g.PW)
	kdim, k := c*g.KH*g.KW, oh*ow
	// Row (ch, ki, kj) of the columns, output row y, starts at
	// xp[ch·hp·wp + ki·dh·wp + kj·dw + y·sh·wp] and steps sw.
	buf.rows = grow(buf.rows, kdim)
	r := 0
	for ch := 0; ch < c; ch++ {
		for ki := 0; ki < g.KH; ki++ {
			for kj := 0; kj < g.KW; kj++ {
				buf.rows[r] = ch*hp*wp + ki*g.DH*wp + kj*g.DW
				r++
			}
		}
	}
	buf.segs = grow(buf.segs, oh)
	for y := range buf.segs {
		buf.segs[y] = y * g.SH * wp
	}
	// B = dyᵀ (k×oc) in 32-column slivers.
	slivers := (oc + segCols - 1) / segCols
	buf.b = grow(buf.b, slivers*k*segCols)
	packT32(dy, k, oc, k, buf.b)
	if beta != 0 && beta != 1 {
		scaleRows(beta, kdim, oc, dwT, ldc)
		beta = 1
	}
	buf.product(kdim, oc, xp, ow, g.SW, buf.b, dwT, ldc, beta == 1)
}

// ConvPackLen is the length of ConvPack's packing of oc×kdim weights.
func ConvPackLen(oc, kdim int) int {
	return (oc + segCols - 1) / segCols * segCols * kdim
}

// ConvPack packs weights w (oc×kdim, row-major, one group) for ConvForward
// into packed (ConvPackLen(oc, kdim) values): Wᵀ in 32-column slivers.
func ConvPack[T Float](w []T, oc, kdim int, packed []T) {
	mustImplicit[T]("ConvPack")
	packT32(any(w).([]float32), kdim, oc, kdim, any(packed).([]float32))
}

// ConvForward overwrites out (oc×oh·ow) with w·im2col(im) for one image
// im (c×h×w, one group), w packed by ConvPack, reading the columns from
// the padded image in place.
func ConvForward[T Float](im []T, c, h, w int, g kernels.ConvGeom, oh, ow int, packed []T, oc int, out []T) {
	mustImplicit[T]("ConvForward")
	convForward(any(im).([]float32), c, h, w, g, oh, ow, any(packed).([]float32), oc, any(out).([]float32))
}

// convForward is ConvForward on any kernel level. It computes outᵀ =
// im2col(im)ᵀ·wᵀ: a row of A is one output position, and its segments,
// one per channel and kernel row, are kw values of a row of the padded
// image; the tiles then run along the output positions and the output
// channels, and the packed weights serve every image.
func convForward(im []float32, c, h, w int, g kernels.ConvGeom, oh, ow int, packed []float32, oc int, out []float32) {
	buf := implicitPool.Get().(*implicitBuf)
	defer implicitPool.Put(buf)
	xp, hp, wp := buf.padImage(im, c, h, w, g.PH, g.PW)
	sp := oh * ow
	buf.rows = grow(buf.rows, sp)
	for y := 0; y < oh; y++ {
		for x := 0; x < ow; x++ {
			buf.rows[y*ow+x] = y*g.SH*wp + x*g.SW
		}
	}
	buf.segs = grow(buf.segs, c*g.KH)
	for ch := 0; ch < c; ch++ {
		for ki := 0; ki < g.KH; ki++ {
			buf.segs[ch*g.KH+ki] = ch*hp*wp + ki*g.DH*wp
		}
	}
	ldt := (oc + segCols - 1) / segCols * segCols
	buf.ct = grow(buf.ct, sp*ldt)
	buf.product(sp, ldt, xp, g.KW, g.DW, packed, buf.ct, ldt, false)
	transposeTo(buf.ct, ldt, sp, oc, out, sp)
}

// transposeTo writes the transpose of the m×n block at src (rows ld
// apart) to dst (rows ldd apart): dst[j*ldd+i] = src[i*ld+j].
func transposeTo(src []float32, ld, m, n int, dst []float32, ldd int) {
	for i0 := 0; i0 < m; i0 += 16 {
		i1 := min(m, i0+16)
		j := 0
		if i1-i0 == 16 {
			for ; j+16 <= n; j += 16 {
				transpose16(src[i0*ld+j:], ld, dst[j*ldd+i0:], ldd)
			}
		}
		for ; j < n; j++ {
			d := dst[j*ldd+i0 : j*ldd+i1]
			for i := range d {
				d[i] = src[(i0+i)*ld+j]
			}
		}
	}
}

// padImage returns the image (c×h×w) with a zero border of ph rows and pw
// columns, and its padded size; without padding, the image itself.
func (buf *implicitBuf) padImage(im []float32, c, h, w, ph, pw int) ([]float32, int, int) {
	hp, wp := h+2*ph, w+2*pw
	if ph == 0 && pw == 0 {
		return im[:c*h*w], hp, wp
	}
	buf.pad = grow(buf.pad, c*hp*wp)
	p := buf.pad
	clear(p)
	for ch := 0; ch < c; ch++ {
		SCopyRows(p[ch*hp*wp+ph*wp+pw:], wp, im[ch*h*w:], w, h, w)
	}
	return p, hp, wp
}

// packT32 packs Bᵀ, B being n×k with rows ld apart, in 32-column slivers:
// dst[s·k·32 + p·32 + j] = B[s·32+j][p], zero for columns past n.
func packT32(b []float32, ld, n, k int, dst []float32) {
	var blk [16 * 16]float32
	for s := 0; s*segCols < n; s++ {
		d := dst[s*k*segCols : (s+1)*k*segCols]
		cols := min(segCols, n-s*segCols)
		// Sixteen steps at a time, so that the rows written (2 KB) stay
		// in L1 while every column fills its part of them. Whole 16×16
		// blocks go through transpose16, and so do the sliver's last
		// columns, from a block whose rows past n are zeros (LeNet's 50
		// and 20 output channels leave 18 and 20 columns in a sliver:
		// column by column and row by row clears before).
		for p0 := 0; p0 < k; p0 += 16 {
			p1 := min(k, p0+16)
			if p1-p0 == 16 {
				for j := 0; j < segCols; j += 16 {
					o := (s*segCols + j) * ld
					switch rows := min(16, cols-j); {
					case rows == 16:
						transpose16(b[o+p0:], ld, d[p0*segCols+j:], segCols)
					case rows > 0:
						SCopyRows(blk[:], 16, b[o+p0:], ld, rows, 16)
						clear(blk[rows*16:])
						transpose16(blk[:], 16, d[p0*segCols+j:], segCols)
					default:
						for p := p0; p < p1; p++ {
							clear(d[p*segCols+j : p*segCols+j+16])
						}
					}
				}
				continue
			}
			for j := 0; j < cols; j++ {
				o := (s*segCols + j) * ld
				for p, v := range b[o+p0 : o+p1] {
					d[(p0+p)*segCols+j] = v
				}
			}
			if cols < segCols {
				for p := p0; p < p1; p++ {
					clear(d[p*segCols+cols : (p+1)*segCols])
				}
			}
		}
	}
}

// product sets C (m×n, row stride ldc) to A·B, or with add adds it,
// where A (m×k, k = len(buf.segs)·seglen) has element (i, s·seglen+t) at
// a[buf.rows[i] + buf.segs[s] + t·acs] and B is bp, packed by packT32.
// It panics, as indexing would, if a row's last segment runs past a.
func (buf *implicitBuf) product(m, n int, a []float32, seglen, acs int, bp []float32, c []float32, ldc int, add bool) {
	rows, segs, edge := buf.rows, buf.segs, &buf.edge
	k := len(segs) * seglen
	if m <= 0 || n <= 0 {
		return
	}
	if k == 0 {
		if !add {
			scaleRows(0, m, n, c, ldc)
		}
		return
	}
	// The bounds the assembly relies on: every row's every segment.
	lo, hi := rows[0], rows[0]
	for _, o := range rows[:m] {
		lo, hi = min(lo, o), max(hi, o)
	}
	slo, shi := segs[0], segs[0]
	for _, o := range segs {
		slo, shi = min(slo, o), max(shi, o)
	}
	_, _ = a[lo+slo], a[hi+shi+(seglen-1)*acs]
	buf.segB = grow(buf.segB, len(segs))
	segB := buf.segB
	for i, o := range segs {
		segB[i] = 4 * o
	}
	// K in blocks of whole segments, about kc steps each, so that a
	// block of B (kc×32) stays in L1 while every row tile reads it.
	per := max(1, kc/seglen)
	tr, tc := segTile()
	for s0 := 0; s0 < len(segs); s0 += per {
		s1 := min(len(segs), s0+per)
		addb := add || s0 > 0
		for ir := 0; ir < m; ir += tr {
			nr := min(tr, m-ir)
			// Missing rows repeat the first; their results are dropped.
			var aoff [segRows]int
			for r := range nr {
				aoff[r] = 4 * (rows[ir+r] - rows[ir])
			}
			for j0 := 0; j0 < n; j0 += tc {
				nc := min(tc, n-j0)
				s := j0 / segCols
				b := bp[s*k*segCols+s0*seglen*segCols+j0%segCols : s*k*segCols+s1*seglen*segCols]
				if nr == tr && nc == tc {
					_ = c[(ir+tr-1)*ldc+j0+tc-1]
					segKernel(seglen, a, rows[ir], &aoff, acs, segB[s0:s1], b, c[ir*ldc+j0:], ldc, addb)
					continue
				}
				segKernel(seglen, a, rows[ir], &aoff, acs, segB[s0:s1], b, edge[:], segCols, false)
				if addb {
					SAddRows(c[ir*ldc+j0:], ldc, edge[:], segCols, nr, nc)
				} else {
					SCopyRows(c[ir*ldc+j0:], ldc, edge[:], segCols, nr, nc)
				}
			}
		}
	}
}

// kernelSegGo is segKernel in plain Go, for a tr×tc tile (at most
// segRows×segCols): C (row stride ldc) = the product, or += with add; row
// r of A reads a[base + aoff[r]/4 + segB[s]/4 + t·acs] (byte offsets, as
// the assembly takes them), and B's rows are segCols apart.
func kernelSegGo(tr, tc, seglen int, a []float32, base int, aoff *[segRows]int, acs int, segB []int, b []float32, c []float32, ldc int, add bool) {
	var acc [segRows * segCols]float32
	p := 0
	for _, so := range segB {
		for t := 0; t < seglen; t++ {
			brow := b[p*segCols : p*segCols+tc]
			for r := range tr {
				av := a[base+(aoff[r]+so)/4+t*acs]
				row := acc[r*segCols : r*segCols+tc]
				for j, bv := range brow {
					row[j] += av * bv
				}
			}
			p++
		}
	}
	for r := range tr {
		crow := c[r*ldc : r*ldc+tc]
		for j := range crow {
			if add {
				crow[j] += acc[r*segCols+j]
			} else {
				crow[j] = acc[r*segCols+j]
			}
		}
	}
}

// transpose16Go is transpose16 in plain Go.
func transpose16Go(src []float32, ld int, dst []float32, ldd int) {
	for i := range 16 {
		for t, v := range src[i*ld : i*ld+16] {
			dst[t*ldd+i] = v
		}
	}
}
