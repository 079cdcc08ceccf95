package cpu

// Winograd F(4×4, 3×3) (Lavin and Gray, 2015): each 4×4 block of the
// output comes from a 6×6 tile of the padded input, and the 3×3 products
// of a tile become 36 elementwise products in the transformed domain,
// 36 GEMMs [oc × c]·[c × tiles] over the channels. That is 36/144 of the
// direct convolution's multiplies (4× fewer; F(2,3) does 16/36, 2.25×),
// for transforms with larger coefficients (up to 8), so a little more
// rounding. WinogradForward with m = 4 drives it; the matrices, with
// interpolation points 0, ±1, ±2 and ∞:
//
//	Bᵀ = [4  0 -5  0 1 0]   G = [ 1/4     0     0]   Aᵀ = [1 1  1 1  1 0]
//	     [0 -4 -4  1 1 0]       [-1/6  -1/6  -1/6]        [0 1 -1 2 -2 0]
//	     [0  4 -4 -1 1 0]       [-1/6   1/6  -1/6]        [0 1  1 4  4 0]
//	     [0 -2 -1  2 1 0]       [1/24  1/12   1/6]        [0 1 -1 8 -8 1]
//	     [0  2 -1 -2 1 0]       [1/24 -1/12   1/6]
//	     [0  4  0 -5 0 1]       [   0     0     1]

// winograd4Rows cuts the 36 transform elements' rows, each n long and ld
// apart, from buf.
func winograd4Rows[T Float](buf []T, ld, n int) (r [36][]T) {
	for xi := range r {
		r[xi] = buf[xi*ld : xi*ld+n : xi*ld+n]
	}
	return r
}

// winograd4SlackRows is winograd4Rows with winogradSlack values more in
// each row: the vector transforms' last eight tiles of a tile row may run
// past the chunk's last tile into the slack WinogradForward leaves, or
// into the next channel's or tile row's values, written after them.
func winograd4SlackRows[T Float](buf []T, ld, n int) [36][]T {
	return winograd4Rows(buf, ld, n+winogradSlack)
}

// winograd4G is G·(g0, g1, g2): one column (or row) of a filter's
// transform, by multiplications (the weights are transformed every
// pass, and divisions made the transform of 128×128 filters cost more
// than an image's convolution).
func winograd4G[T Float](g0, g1, g2 T) (u0, u1, u2, u3, u4, u5 T) {
	const sixth, twelfth, twentyFourth = 1.0 / 6, 1.0 / 12, 1.0 / 24
	a := g0 + g2
	b, c := g0*twentyFourth+g2*sixth, g1*twelfth
	return g0 / 4, -(a + g1) * sixth, -(a - g1) * sixth, b + c, b - c, g2
}

// winograd4PackRange is WinogradPack of filters [lo, hi) of n for F(4,3):
// u = G g Gᵀ, 6×6 per filter, element ξ = 6i+j of filter f at u[ξ·n+f].
// Filters go in blocks of winogradPackBlock, so that each of the 36
// rows gets a cache line at a time rather than a value.
func winograd4PackRange[T Float](w []T, n, lo, hi int, u []T) {
	o := winograd4Rows(u, n, n)
	var t [6][3]T
	var blk [36][winogradPackBlock]T
	for f0 := lo; f0 < hi; f0 += winogradPackBlock {
		nb := min(winogradPackBlock, hi-f0)
		for b := 0; b < nb; b++ {
			f := f0 + b
			g := w[9*f : 9*f+9 : 9*f+9]
			// t = G g (6×3), column by column.
			for j := 0; j < 3; j++ {
				t[0][j], t[1][j], t[2][j], t[3][j], t[4][j], t[5][j] = winograd4G(g[j], g[3+j], g[6+j])
			}
			// u = t Gᵀ, row by row.
			for i := 0; i < 6; i++ {
				blk[6*i][b], blk[6*i+1][b], blk[6*i+2][b], blk[6*i+3][b], blk[6*i+4][b], blk[6*i+5][b] = winograd4G(t[i][0], t[i][1], t[i][2])
			}
		}
		for xi := range blk {
			copy(o[xi][f0:f0+nb], blk[xi][:nb])
		}
	}
}

// winogradPackBlock is how many filters the weight transforms (both
// packs, and the weight gradient's output transform) take before they
// write them out.
const winogradPackBlock = 16

// winograd4B is Bᵀ·(d0, …, d5): one column (or row) of a tile's input
// transform.
func winograd4B[T Float](d0, d1, d2, d3, d4, d5 T) (t0, t1, t2, t3, t4, t5 T) {
	t0 = 4*d0 - 5*d2 + d4
	t1 = d3 + d4 - 4*(d1+d2)
	t2 = d4 - d3 + 4*(d1-d2)
	t3 = d4 - d2 + 2*(d3-d1)
	t4 = d4 - d2 + 2*(d1-d3)
	t5 = 4*d1 - 5*d3 + d5
	return
}

// F(4,3)'s padded image is kept by phase: padded row py's column px at
// xq[(4·py + px%4)·L + px/4], L ≥ tw+1 values a phase. A tile's six
// columns 4·tx … 4·tx+5 are then phase 0-3 at tx and phases 0-1 at tx+1:
// contiguous in tx, so that the transforms run over eight tiles at a time
// where the kernel level has vectors (winograd4InputF32). L is a multiple
// of 8, and the column transforms' rows (tmp) are 8 longer, so that those
// vectors never run past a row.

// winograd4PhaseLen is L, the length of a phase row, for tw tiles a row:
// tw+1 rounded up to a multiple of 8.
func winograd4PhaseLen(tw int) int { return (tw + 8) &^ 7 }

// winograd4TmpLen is the length of winograd4Input's tmp: 24 rows of L+8.
func winograd4TmpLen(L int) int { return 24 * (L + 8) }

// winograd4Pad writes channel plane src (h×w) into its phase layout dst
// (hp rows of four phases of L, zero where nothing is written), padded by
// ph rows and pw columns.
func winograd4Pad[T Float](src []T, h, w, ph, pw, hp, L int, dst []T) {
	for y := 0; y < h; y++ {
		py := y + ph
		if py < 0 || py >= hp {
			continue
		}
		row := dst[4*py*L : 4*(py+1)*L]
		for x, v := range src[y*w : (y+1)*w] {
			if px := x + pw; px >= 0 && px < 4*L {
				row[(px&3)*L+px>>2] = v
			}
		}
	}
}

// winograd4Input writes V = Bᵀ d B of the tiles of tile rows [ty0, ty1)
// of one channel's padded plane xq (phase layout) to v: element ξ of the
// chunk's tile t at v[ξ·ld + t]. Each tile row's Bᵀ d runs once per phase
// column into tmp (24 rows of L: transform row i, phase j at (4i+j)·L),
// shared by neighbouring tiles, whose columns overlap by two; rows are
// L+8 apart there.
func winograd4Input[T Float](xq []T, L, ty0, ty1, tw int, v []T, ld int, tmp []T) {
	if x32, ok := any(xq).([]float32); ok && winograd4InputF32(x32, L, ty0, ty1, tw, any(v).([]float32), ld, any(tmp).([]float32)) {
		return
	}
	n := (ty1 - ty0) * tw
	o := winograd4Rows(v, ld, n)
	for ty := ty0; ty < ty1; ty++ {
		winograd4Columns(xq, L, ty, tmp, 0, L)
		winograd4Rows6(tmp, L, &o, (ty-ty0)*tw, 0, tw)
	}
}

// winograd4Columns is Bᵀ d of tile row ty's six padded rows, phase
// columns [q0, q1) of each phase, into tmp.
func winograd4Columns[T Float](xq []T, L, ty int, tmp []T, q0, q1 int) {
	for j := 0; j < 4; j++ {
		var d, r [6][]T
		for i := range d {
			d[i] = xq[((4*ty+i)*4+j)*L+q0 : ((4*ty+i)*4+j)*L+q1]
			r[i] = tmp[(4*i+j)*(L+8)+q0 : (4*i+j)*(L+8)+q1]
		}
		for q := range d[0] {
			r[0][q], r[1][q], r[2][q], r[3][q], r[4][q], r[5][q] = winograd4B(d[0][q], d[1][q], d[2][q], d[3][q], d[4][q], d[5][q])
		}
	}
}

// winograd4Rows6 is (Bᵀ d) B of tiles [tx0, tx1) of a tile row from tmp,
// written to the chunk's tiles t0+tx.
func winograd4Rows6[T Float](tmp []T, L int, o *[36][]T, t0, tx0, tx1 int) {
	lt := L + 8
	for i := 0; i < 6; i++ {
		p0, p1 := tmp[4*i*lt:(4*i+1)*lt], tmp[(4*i+1)*lt:(4*i+2)*lt]
		p2, p3 := tmp[(4*i+2)*lt:(4*i+3)*lt], tmp[(4*i+3)*lt:(4*i+4)*lt]
		for tx := tx0; tx < tx1; tx++ {
			t := t0 + tx
			o[6*i][t], o[6*i+1][t], o[6*i+2][t], o[6*i+3][t], o[6*i+4][t], o[6*i+5][t] = winograd4B(p0[tx], p1[tx], p2[tx], p3[tx], p0[tx+1], p1[tx+1])
		}
	}
}

// winograd4A is Aᵀ·(m0, …, m5): one column (or row) of a tile's output
// transform.
func winograd4A[T Float](m0, m1, m2, m3, m4, m5 T) (y0, y1, y2, y3 T) {
	p12, d12 := m1+m2, m1-m2
	p34, d34 := m3+m4, m3-m4
	return m0 + p12 + p34, d12 + 2*d34, p12 + 4*p34, d12 + 8*d34 + m5
}

// winograd4Output writes y = Aᵀ M A of one output channel's tiles of tile
// rows [ty0, ty1) into its plane out (oh×ow), dropping what of the last
// blocks lies past the plane; element ξ of tile t is m[ξ·ld + t].
func winograd4Output[T Float](m []T, ld, ty0, ty1, tw int, out []T, oh, ow int) {
	n := (ty1 - ty0) * tw
	q := winograd4SlackRows(m, ld, n)
	for ty := ty0; ty < ty1; ty++ {
		t0, tx0 := (ty-ty0)*tw, 0
		if q32, ok := any(&q).(*[36][]float32); ok {
			tx0 = winograd4OutputF32(q32, t0, tw, 4*ty, any(out).([]float32), oh, ow)
		}
		winograd4OutputRange(&q, t0, tx0, tw, 4*ty, out, oh, ow)
	}
}

// winograd4OutputRange is winograd4Output of tiles [tx0, tx1) of the tile
// row whose first output row is y and whose tile tx is the chunk's t0+tx.
func winograd4OutputRange[T Float](q *[36][]T, t0, tx0, tx1, y int, out []T, oh, ow int) {
	ny := min(4, oh-y)
	var s [4][6]T
	for tx := tx0; tx < tx1; tx++ {
		t := t0 + tx
		// Aᵀ M: four rows of six.
		for j := 0; j < 6; j++ {
			s[0][j], s[1][j], s[2][j], s[3][j] = winograd4A(q[j][t], q[6+j][t], q[12+j][t], q[18+j][t], q[24+j][t], q[30+j][t])
		}
		x := 4 * tx
		if x+4 <= ow {
			for i := 0; i < ny; i++ {
				row := out[(y+i)*ow+x : (y+i)*ow+x+4 : (y+i)*ow+x+4]
				row[0], row[1], row[2], row[3] = winograd4A(s[i][0], s[i][1], s[i][2], s[i][3], s[i][4], s[i][5])
			}
			continue
		}
		for i := 0; i < ny; i++ {
			var b [4]T
			b[0], b[1], b[2], b[3] = winograd4A(s[i][0], s[i][1], s[i][2], s[i][3], s[i][4], s[i][5])
			copy(out[(y+i)*ow+x:(y+i+1)*ow], b[:])
		}
	}
}
