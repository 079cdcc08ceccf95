package cpu

import (
	"sync"

	"github.com/gocaffe/gocaffe/kernels"
)

// Winograd F(2×2, 3×3) convolution (Lavin and Gray, 2015) of one image and
// one group: each 2×2 block of the output comes from a 4×4 tile of the
// padded input, and the 3×3 products of a tile become 16 elementwise
// products in the transformed domain, which over the channels are 16 GEMMs
// [oc × c]·[c × tiles] on the package's SGEMM (every kernel level; float64
// through GemmRef). It does 16/36 of the direct convolution's multiplies
// (2.25× fewer), plus the transforms, linear in c·tiles and oc·tiles.
//
//	out (oc, oh, ow) = conv3x3(im (c, h, w), w (oc, c, 3, 3)), stride 1, pad (ph, pw)
//
// With Bᵀ, G, Aᵀ the F(2,3) matrices, V = Bᵀ d B per input tile d,
// U = G g Gᵀ per 3×3 filter g, and y = Aᵀ (Σ_c U ⊙ V) A per output tile.

// WinogradTakes reports whether the Winograd kernels take a convolution of
// window g: 3×3, stride 1, dilation 1 (any padding).
func WinogradTakes(g kernels.ConvGeom) bool {
	return g.KH == 3 && g.KW == 3 && g.SH == 1 && g.SW == 1 && g.DH == 1 && g.DW == 1
}

// winogradAlpha is the side of the input tile (and of the transformed
// domain) for output tiles of m×m: m+2.
func winogradAlpha(m int) int { return m + 2 }

// checkWinogradTile panics on an output tile size other than 2 (F(2,3))
// or 4 (F(4,3)): the callers choose it from a route, never from input.
func checkWinogradTile(m int) {
	if m != 2 && m != 4 {
		panic("cpu: Winograd output tile must be 2 or 4")
	}
}

// WinogradPackLen is the length of WinogradPack's transform of oc×c×3×3
// weights for output tiles of m×m: (m+2)² matrices of oc×c.
func WinogradPackLen(m, oc, c int) int {
	checkWinogradTile(m)
	a := winogradAlpha(m)
	return a * a * oc * c
}

// WinogradPack writes the transformed weights u[ξ][k][ch] = (G g Gᵀ)[ξ]
// of the filters w (oc×c×3×3, row-major) for output tiles of m×m into u
// (WinogradPackLen values), over all cores for more than
// winogradPackSerial filters (VGG's 512×512 take 10 ms on one core: it
// runs once per pass, beside images that take a few ms each).
func WinogradPack[T Float](m int, w []T, oc, c int, u []T) {
	n := oc * c
	_ = u[WinogradPackLen(m, oc, c)-1]
	w = w[:9*n]
	pack, serial := winogradPackRange[T], winogradPackSerial
	if m == 4 {
		// F(4,3)'s transform is about 4× the work a filter (0.84 ms for
		// 128×128 filters on one core of the development VM, F(2,3)'s 0.18).
		pack, serial = winograd4PackRange[T], winogradPackSerial/4
	}
	if n <= serial {
		zeroUpper() // the transforms are SSE code
		pack(w, n, 0, n, u)
		return
	}
	Parallel(n, func(_, lo, hi int) {
		zeroUpper()
		pack(w, n, lo, hi, u)
	})
}

// winogradPackSerial is the most filters WinogradPack transforms on the
// calling core.
const winogradPackSerial = 1 << 14

// winogradPackRange is WinogradPack of filters [lo, hi) of n for F(2,3),
// in blocks of winogradPackBlock filters (see winograd4PackRange).
func winogradPackRange[T Float](w []T, n, lo, hi int, u []T) {
	var o [16][]T
	for xi := range o {
		o[xi] = u[xi*n : (xi+1)*n : (xi+1)*n]
	}
	var blk [16][winogradPackBlock]T
	for f0 := lo; f0 < hi; f0 += winogradPackBlock {
		nb := min(winogradPackBlock, hi-f0)
		for b := 0; b < nb; b++ {
			f := f0 + b
			g := w[9*f : 9*f+9 : 9*f+9]
			// t = G g (4×3), column by column.
			t00, t01, t02 := g[0], g[1], g[2]
			t10, t11, t12 := (g[0]+g[3]+g[6])/2, (g[1]+g[4]+g[7])/2, (g[2]+g[5]+g[8])/2
			t20, t21, t22 := (g[0]-g[3]+g[6])/2, (g[1]-g[4]+g[7])/2, (g[2]-g[5]+g[8])/2
			t30, t31, t32 := g[6], g[7], g[8]
			// u = t Gᵀ (4×4), row by row.
			blk[0][b], blk[1][b], blk[2][b], blk[3][b] = t00, (t00+t01+t02)/2, (t00-t01+t02)/2, t02
			blk[4][b], blk[5][b], blk[6][b], blk[7][b] = t10, (t10+t11+t12)/2, (t10-t11+t12)/2, t12
			blk[8][b], blk[9][b], blk[10][b], blk[11][b] = t20, (t20+t21+t22)/2, (t20-t21+t22)/2, t22
			blk[12][b], blk[13][b], blk[14][b], blk[15][b] = t30, (t30+t31+t32)/2, (t30-t31+t32)/2, t32
		}
		for xi := range blk {
			copy(o[xi][f0:f0+nb], blk[xi][:nb])
		}
	}
}

// winogradBuf is the scratch of one WinogradForward: the padded image,
// one chunk of tiles' transformed inputs V and products M (or top diffs
// E), F(4,3)'s column transforms of a tile row (winograd4Input), and the
// padded top diff (WinogradWeightGrad).
type winogradBuf[T Float] struct {
	pad, v, m, rows, dy []T
}

// winogradPools recycle winogradBuf per element type; they hold no state
// that outlives a call.
var winogradPools [2]sync.Pool

func winogradPool[T Float]() *sync.Pool {
	var z T
	if _, ok := any(z).(float32); ok {
		return &winogradPools[0]
	}
	return &winogradPools[1]
}

// getWinogradBuf takes a scratch from the pool (put it back with
// winogradPool[T]().Put), or a new one.
func getWinogradBuf[T Float]() *winogradBuf[T] {
	if buf, ok := winogradPool[T]().Get().(*winogradBuf[T]); ok {
		return buf
	}
	return new(winogradBuf[T])
}

// winogradChunkBytes bounds one chunk's V and M (α²·(c+oc)·tiles values),
// so that the GEMMs' B and C are still in cache between the transforms:
// of 512 KiB (with 64 tiles at least), 2 MiB (128) and 4 MiB (256),
// 2 MiB was as fast or faster at BenchmarkConv3x3's five shapes on the
// 2-core AVX2 EPYC VM (4 MiB lost 1.5× at 64 × 56², 512 KiB up to 10 %).
const winogradChunkBytes = 2048 << 10

// winogradMinTiles is the fewest tiles a chunk takes where the image has
// them (the GEMMs' N): four of the SGEMM's 32-column slivers.
const winogradMinTiles = 128

// WinogradForward overwrites out (oc×oh×ow) with the 3×3, stride-1
// convolution of one image im (c×h×w, padding ph, pw; oh = h+2ph-2,
// ow = w+2pw-2) by the weights u that WinogradPack transformed for
// output tiles of m×m: F(2,3) for m = 2, F(4,3) for m = 4.
func WinogradForward[T Float](m int, im []T, c, h, w, ph, pw, oh, ow int, u []T, oc int, out []T) {
	checkWinogradTile(m)
	if oh <= 0 || ow <= 0 || oc <= 0 {
		return
	}
	th, tw := (oh+m-1)/m, (ow+m-1)/m
	_ = out[oc*oh*ow-1]
	if c == 0 {
		clear(out[:oc*oh*ow])
		return
	}
	a := winogradAlpha(m)
	aa := a * a
	_ = u[aa*oc*c-1]
	buf := getWinogradBuf[T]()
	defer winogradPool[T]().Put(buf)

	xp, hp, wp := buf.padImage(m, im, c, h, w, ph, pw, th, tw)

	// Chunks of whole tile rows, about winogradChunkBytes of V and M, and
	// at least winogradMinTiles tiles (the GEMMs' N): VGG's 512 channels at
	// 7×7 take all 16 tiles at once.
	rowsPer := winogradRowsPer[T](aa, c+oc, tw)
	for ty0 := 0; ty0 < th; ty0 += rowsPer {
		ty1 := min(th, ty0+rowsPer)
		n := (ty1 - ty0) * tw
		v, ldv := buf.inputChunk(m, xp, c, hp, wp, ty0, ty1, tw)
		ldm := oc*n + winogradSlack // slack as in V: see inputChunk
		buf.m = grow(buf.m, aa*ldm)
		mm := buf.m
		for xi := 0; xi < aa; xi++ {
			GemmSerial(false, false, oc, n, c, 1, u[xi*oc*c:(xi+1)*oc*c], c, v[xi*ldv:xi*ldv+c*n], n, 0, mm[xi*ldm:xi*ldm+oc*n], n)
		}
		for k := 0; k < oc; k++ {
			if m == 4 {
				winograd4Output(mm[k*n:], ldm, ty0, ty1, tw, out[k*oh*ow:(k+1)*oh*ow], oh, ow)
			} else {
				winogradOutput(mm[k*n:], ldm, ty0, ty1, tw, out[k*oh*ow:(k+1)*oh*ow], oh, ow)
			}
		}
	}
}

// winogradRowsPer is how many tile rows a chunk takes: about
// winogradChunkBytes of transformed values for channels channels (the
// inputs' and the products' or the top diff's), at least winogradMinTiles
// tiles.
func winogradRowsPer[T Float](aa, channels, tw int) int {
	var z T
	return max(1, winogradChunkBytes/(aa*channels*int(sizeOf(z))*tw), (winogradMinTiles+tw-1)/tw)
}

// padImage writes the padded image of im (c×h×w) into b.pad and returns
// it with its rows a plane and values a row: it covers every tile,
// m·th+2 rows of m·tw+2 columns per channel, zeros outside the image;
// F(4,3) keeps it by phase (winograd4Pad).
func (b *winogradBuf[T]) padImage(m int, im []T, c, h, w, ph, pw, th, tw int) (xp []T, hp, wp int) {
	hp, wp = m*th+2, m*tw+2
	if m == 4 {
		wp = 4 * winograd4PhaseLen(tw)
		b.rows = grow(b.rows, winograd4TmpLen(wp/4))
	}
	b.pad = grow(b.pad, c*hp*wp)
	xp = b.pad
	clear(xp)
	for ch := 0; ch < c; ch++ {
		src := im[ch*h*w : (ch+1)*h*w]
		dst := xp[ch*hp*wp : (ch+1)*hp*wp]
		if m == 4 {
			winograd4Pad(src, h, w, ph, pw, hp, wp/4, dst)
			continue
		}
		for y := 0; y < h; y++ {
			if py := y + ph; py >= 0 && py < hp {
				x0 := max(0, -pw)
				x1 := min(w, wp-pw)
				if x0 < x1 {
					copy(dst[py*wp+pw+x0:py*wp+pw+x1], src[y*w+x0:y*w+x1])
				}
			}
		}
	}
	return xp, hp, wp
}

// inputChunk transforms the tiles of tile rows [ty0, ty1) of every
// channel of the padded image xp into b.v and returns it and its
// transform elements' distance: element ξ of channel ch's tile t at
// v[ξ·ldv + ch·n + t]. Each element's block ends in winogradSlack values,
// so that F(4,3)'s vector transforms may write eight tiles past a
// channel's last one.
func (b *winogradBuf[T]) inputChunk(m int, xp []T, c, hp, wp, ty0, ty1, tw int) (v []T, ldv int) {
	a := winogradAlpha(m)
	n := (ty1 - ty0) * tw
	ldv = c*n + winogradSlack
	b.v = grow(b.v, a*a*ldv)
	v = b.v
	for ch := 0; ch < c; ch++ {
		p := xp[ch*hp*wp : (ch+1)*hp*wp]
		if m == 4 {
			winograd4Input(p, wp/4, ty0, ty1, tw, v[ch*n:], ldv, b.rows)
		} else {
			winogradInput(p, wp, ty0, ty1, tw, v[ch*n:], ldv)
		}
	}
	return v, ldv
}

// winogradSlack is how many values past a chunk's tiles each transform
// element's block of V and M keeps (see WinogradForward).
const winogradSlack = 8

// sizeOf is the size of a T in bytes.
func sizeOf[T Float](z T) uintptr {
	if _, ok := any(z).(float32); ok {
		return 4
	}
	return 8
}

// winogradRows cuts the sixteen transform elements' rows, each n long and
// ld apart, from buf: indexing them needs no bounds checks once t < n is
// known.
func winogradRows[T Float](buf []T, ld, n int) (r [16][]T) {
	for xi := range r {
		r[xi] = buf[xi*ld : xi*ld+n : xi*ld+n]
	}
	return r
}

// winogradInput writes V = Bᵀ d B of the tiles of tile rows [ty0, ty1)
// of one padded channel plane xp (rows wp apart) to v: element ξ of the
// chunk's tile t at v[ξ·ld + t].
//
//	Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
func winogradInput[T Float](xp []T, wp, ty0, ty1, tw int, v []T, ld int) {
	n := (ty1 - ty0) * tw
	o := winogradRows(v, ld, n)
	t := 0
	for ty := ty0; ty < ty1; ty++ {
		r0 := xp[2*ty*wp : 2*ty*wp+2*tw+2]
		r1 := xp[(2*ty+1)*wp : (2*ty+1)*wp+2*tw+2]
		r2 := xp[(2*ty+2)*wp : (2*ty+2)*wp+2*tw+2]
		r3 := xp[(2*ty+3)*wp : (2*ty+3)*wp+2*tw+2]
		for x := 0; x+3 < len(r0) && t < n; x, t = x+2, t+1 {
			// Bᵀ d: the rows, column by column.
			a0, a1, a2, a3 := r0[x]-r2[x], r0[x+1]-r2[x+1], r0[x+2]-r2[x+2], r0[x+3]-r2[x+3]
			b0, b1, b2, b3 := r1[x]+r2[x], r1[x+1]+r2[x+1], r1[x+2]+r2[x+2], r1[x+3]+r2[x+3]
			c0, c1, c2, c3 := r2[x]-r1[x], r2[x+1]-r1[x+1], r2[x+2]-r1[x+2], r2[x+3]-r1[x+3]
			d0, d1, d2, d3 := r1[x]-r3[x], r1[x+1]-r3[x+1], r1[x+2]-r3[x+2], r1[x+3]-r3[x+3]
			// (Bᵀ d) B: the columns.
			o[0][t], o[1][t], o[2][t], o[3][t] = a0-a2, a1+a2, a2-a1, a1-a3
			o[4][t], o[5][t], o[6][t], o[7][t] = b0-b2, b1+b2, b2-b1, b1-b3
			o[8][t], o[9][t], o[10][t], o[11][t] = c0-c2, c1+c2, c2-c1, c1-c3
			o[12][t], o[13][t], o[14][t], o[15][t] = d0-d2, d1+d2, d2-d1, d1-d3
		}
	}
}

// winogradOutput writes y = Aᵀ M A of one output channel's tiles of tile
// rows [ty0, ty1) into its plane out (oh×ow), dropping the last block's
// row or column past the plane; element ξ of tile t is m[ξ·ld + t].
//
//	Aᵀ = [1 1 1 0; 0 1 -1 -1]
func winogradOutput[T Float](m []T, ld, ty0, ty1, tw int, out []T, oh, ow int) {
	n := (ty1 - ty0) * tw
	q := winogradRows(m, ld, n)
	t := 0
	for ty := ty0; ty < ty1; ty++ {
		y := 2 * ty
		y0 := out[y*ow : (y+1)*ow]
		y1 := y0
		full := y+1 < oh
		if full {
			y1 = out[(y+1)*ow : (y+2)*ow]
		}
		for tx := 0; tx < tw && t < n; tx, t = tx+1, t+1 {
			// Aᵀ M: two rows of four.
			s0 := q[0][t] + q[4][t] + q[8][t]
			s1 := q[1][t] + q[5][t] + q[9][t]
			s2 := q[2][t] + q[6][t] + q[10][t]
			s3 := q[3][t] + q[7][t] + q[11][t]
			s4 := q[4][t] - q[8][t] - q[12][t]
			s5 := q[5][t] - q[9][t] - q[13][t]
			s6 := q[6][t] - q[10][t] - q[14][t]
			s7 := q[7][t] - q[11][t] - q[15][t]
			x := 2 * tx
			if x+1 < len(y0) {
				y0[x], y0[x+1] = s0+s1+s2, s1-s2-s3
				if full {
					y1[x], y1[x+1] = s4+s5+s6, s5-s6-s7
				}
				continue
			}
			y0[x] = s0 + s1 + s2
			if full {
				y1[x] = s4 + s5 + s6
			}
		}
	}
}
