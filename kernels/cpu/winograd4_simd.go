//go:build goexperiment.simd && amd64

package cpu

import "simd/archsimd"

// F(4,3)'s transforms on 8-lane vectors, eight tiles at a time (AVX2 and
// AVX-512 levels; the phase layout makes every load contiguous). Rounding
// differs from the portable transforms' only by the fused multiply-adds.

// winograd4BVec is winograd4B on eight columns.
func winograd4BVec(d0, d1, d2, d3, d4, d5, c2, c4, c5 archsimd.Float32x8) (t0, t1, t2, t3, t4, t5 archsimd.Float32x8) {
	t0 = d0.MulAdd(c4, d4).Sub(d2.Mul(c5))
	t1 = d3.Add(d4).Sub(d1.Add(d2).Mul(c4))
	t2 = d1.Sub(d2).MulAdd(c4, d4.Sub(d3))
	a, b := d4.Sub(d2), d3.Sub(d1)
	t3 = b.MulAdd(c2, a)
	t4 = a.Sub(b.Mul(c2))
	t5 = d1.MulAdd(c4, d5).Sub(d3.Mul(c5))
	return
}

// winograd4AVec is winograd4A on eight tiles.
func winograd4AVec(m0, m1, m2, m3, m4, m5, c2, c4, c8 archsimd.Float32x8) (y0, y1, y2, y3 archsimd.Float32x8) {
	p12, d12 := m1.Add(m2), m1.Sub(m2)
	p34, d34 := m3.Add(m4), m3.Sub(m4)
	return m0.Add(p12).Add(p34), d34.MulAdd(c2, d12), p34.MulAdd(c4, p12), d34.MulAdd(c8, d12.Add(m5))
}

func load8(s []float32) archsimd.Float32x8 { return archsimd.LoadFloat32x8((*[8]float32)(s[:8])) }

// winograd4InputF32 is winograd4Input on vectors; false, doing nothing,
// on the portable level. A tile row's last eight tiles may run past it
// (winograd4SlackRows): no scalar code runs between the vector loops.
func winograd4InputF32(xq []float32, L, ty0, ty1, tw int, v []float32, ld int, tmp []float32) bool {
	if !hasAVX2 {
		return false
	}
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	n := (ty1 - ty0) * tw
	o := winograd4SlackRows(v, ld, n)
	c2, c4, c5 := archsimd.BroadcastFloat32x8(2), archsimd.BroadcastFloat32x8(4), archsimd.BroadcastFloat32x8(5)
	lt := L + 8
	for ty := ty0; ty < ty1; ty++ {
		// Bᵀ d over whole phase rows (L is a multiple of 8).
		for j := 0; j < 4; j++ {
			var d, r [6][]float32
			for i := range d {
				d[i] = xq[((4*ty+i)*4+j)*L : ((4*ty+i)*4+j+1)*L]
				r[i] = tmp[(4*i+j)*lt : (4*i+j+1)*lt]
			}
			for q := 0; q < L; q += 8 {
				t0, t1, t2, t3, t4, t5 := winograd4BVec(load8(d[0][q:]), load8(d[1][q:]), load8(d[2][q:]), load8(d[3][q:]), load8(d[4][q:]), load8(d[5][q:]), c2, c4, c5)
				t0.Store((*[8]float32)(r[0][q : q+8]))
				t1.Store((*[8]float32)(r[1][q : q+8]))
				t2.Store((*[8]float32)(r[2][q : q+8]))
				t3.Store((*[8]float32)(r[3][q : q+8]))
				t4.Store((*[8]float32)(r[4][q : q+8]))
				t5.Store((*[8]float32)(r[5][q : q+8]))
			}
		}
		// (Bᵀ d) B, eight tiles at a time.
		t0 := (ty - ty0) * tw
		for i := 0; i < 6; i++ {
			p0, p1 := tmp[4*i*lt:(4*i+1)*lt], tmp[(4*i+1)*lt:(4*i+2)*lt]
			p2, p3 := tmp[(4*i+2)*lt:(4*i+3)*lt], tmp[(4*i+3)*lt:(4*i+4)*lt]
			for tx := 0; tx < tw; tx += 8 {
				t := t0 + tx
				e0, e1, e2, e3, e4, e5 := winograd4BVec(load8(p0[tx:]), load8(p1[tx:]), load8(p2[tx:]), load8(p3[tx:]), load8(p0[tx+1:]), load8(p1[tx+1:]), c2, c4, c5)
				e0.Store((*[8]float32)(o[6*i][t : t+8]))
				e1.Store((*[8]float32)(o[6*i+1][t : t+8]))
				e2.Store((*[8]float32)(o[6*i+2][t : t+8]))
				e3.Store((*[8]float32)(o[6*i+3][t : t+8]))
				e4.Store((*[8]float32)(o[6*i+4][t : t+8]))
				e5.Store((*[8]float32)(o[6*i+5][t : t+8]))
			}
		}
	}
	return true
}

// interleave4 transposes four vectors of eight tiles' output columns
// (y0 the first column of each tile, …) into the tiles' 32 values in
// order, as four vectors: each tile's four columns side by side.
func interleave4(y0, y1, y2, y3 archsimd.Float32x8) (o0, o1, o2, o3 archsimd.Float32x8) {
	v0 := y0.SelectFromPairGrouped(0, 1, 4, 5, y1) // a0 a1 b0 b1 | a4 a5 b4 b5
	v1 := y2.SelectFromPairGrouped(0, 1, 4, 5, y3) // c0 c1 d0 d1 | c4 c5 d4 d5
	v2 := y0.SelectFromPairGrouped(2, 3, 6, 7, y1) // a2 a3 b2 b3 | a6 a7 b6 b7
	v3 := y2.SelectFromPairGrouped(2, 3, 6, 7, y3) // c2 c3 d2 d3 | c6 c7 d6 d7
	u0 := v0.SelectFromPairGrouped(0, 2, 4, 6, v1) // a0 b0 c0 d0 | a4 b4 c4 d4
	u1 := v0.SelectFromPairGrouped(1, 3, 5, 7, v1) // a1 b1 c1 d1 | a5 b5 c5 d5
	u2 := v2.SelectFromPairGrouped(0, 2, 4, 6, v3) // a2 b2 c2 d2 | a6 b6 c6 d6
	u3 := v2.SelectFromPairGrouped(1, 3, 5, 7, v3) // a3 b3 c3 d3 | a7 b7 c7 d7
	return u0.Select128FromPair(0, 2, u1), u2.Select128FromPair(0, 2, u3), u0.Select128FromPair(1, 3, u1), u2.Select128FromPair(1, 3, u3)
}

// winograd4OutputF32 is winograd4OutputRange on vectors for a whole tile
// row, eight tiles at a time; it returns how many tiles it wrote: tw, or
// 0 on the portable level. Loads may run past the chunk's last tile
// (winograd4SlackRows); the tiles past the plane's width go through a
// buffer.
func winograd4OutputF32(q *[36][]float32, t0, tw, y int, out []float32, oh, ow int) int {
	if !hasAVX2 {
		return 0
	}
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	ny := min(4, oh-y)
	c2, c4, c8 := archsimd.BroadcastFloat32x8(2), archsimd.BroadcastFloat32x8(4), archsimd.BroadcastFloat32x8(8)
	var s [4][6]archsimd.Float32x8
	var last [4][32]float32 // the row's last tiles, when they pass the plane's width
	tail := -1
	for tx := 0; tx < tw; tx += 8 {
		t := t0 + tx
		for j := 0; j < 6; j++ {
			s[0][j], s[1][j], s[2][j], s[3][j] = winograd4AVec(load8(q[j][t:]), load8(q[6+j][t:]), load8(q[12+j][t:]),
				load8(q[18+j][t:]), load8(q[24+j][t:]), load8(q[30+j][t:]), c2, c4, c8)
		}
		x := 4 * tx
		for i := 0; i < ny; i++ {
			o0, o1, o2, o3 := interleave4(winograd4AVec(s[i][0], s[i][1], s[i][2], s[i][3], s[i][4], s[i][5], c2, c4, c8))
			row := last[i][:]
			if x+32 <= ow {
				row = out[(y+i)*ow+x : (y+i)*ow+x+32]
			} else {
				tail = x
			}
			o0.Store((*[8]float32)(row[0:8]))
			o1.Store((*[8]float32)(row[8:16]))
			o2.Store((*[8]float32)(row[16:24]))
			o3.Store((*[8]float32)(row[24:32]))
		}
	}
	if tail >= 0 {
		zeroUpper() // copy may be SSE code
		for i := 0; i < ny; i++ {
			copy(out[(y+i)*ow+tail:(y+i+1)*ow], last[i][:])
		}
	}
	return tw
}

// deinterleave4 is interleave4 backwards: from 32 values of eight tiles
// of four columns each (x0 holds tiles 0-1, x1 tiles 2-3, …), the tiles'
// first columns, second columns, and so on.
func deinterleave4(x0, x1, x2, x3 archsimd.Float32x8) (c0, c1, c2, c3 archsimd.Float32x8) {
	p0 := x0.Select128FromPair(0, 2, x2)           // t0 | t4
	p1 := x0.Select128FromPair(1, 3, x2)           // t1 | t5
	p2 := x1.Select128FromPair(0, 2, x3)           // t2 | t6
	p3 := x1.Select128FromPair(1, 3, x3)           // t3 | t7
	q0 := p0.SelectFromPairGrouped(0, 1, 4, 5, p1) // t0c0 t0c1 t1c0 t1c1
	q1 := p0.SelectFromPairGrouped(2, 3, 6, 7, p1) // t0c2 t0c3 t1c2 t1c3
	q2 := p2.SelectFromPairGrouped(0, 1, 4, 5, p3) // t2c0 t2c1 t3c0 t3c1
	q3 := p2.SelectFromPairGrouped(2, 3, 6, 7, p3) // t2c2 t2c3 t3c2 t3c3
	return q0.SelectFromPairGrouped(0, 2, 4, 6, q2), q0.SelectFromPairGrouped(1, 3, 5, 7, q2),
		q1.SelectFromPairGrouped(0, 2, 4, 6, q3), q1.SelectFromPairGrouped(1, 3, 5, 7, q3)
}

// winograd4AEVec is A·(e0, e1, e2, e3) on eight tiles (winogradA, m = 4).
func winograd4AEVec(e0, e1, e2, e3, c2, c4, c8 archsimd.Float32x8) (a0, a1, a2, a3, a4, a5 archsimd.Float32x8) {
	p02, p13 := e0.Add(e2), e1.Add(e3)
	q02, q13 := e2.MulAdd(c4, e0), e3.MulAdd(c8, e1.Mul(c2))
	return e0, p02.Add(p13), p02.Sub(p13), q02.Add(q13), q02.Sub(q13), e3
}

// winograd4TopDiffF32 is winogradTopDiff for F(4,3) on vectors, eight
// tiles at a time; false, doing nothing, on the portable level. The last
// vector of a tile row may write past the row's last tile
// (WinogradWeightGrad leaves slack).
func winograd4TopDiffF32(dyp []float32, ldy, ty0, ty1, tw int, e []float32, ld int) bool {
	if !hasAVX2 {
		return false
	}
	defer zeroUpper() // the caller may be SSE code: see zeroUpper
	n := (ty1 - ty0) * tw
	o := winograd4SlackRows(e, ld, n)
	c2, c4, c8 := archsimd.BroadcastFloat32x8(2), archsimd.BroadcastFloat32x8(4), archsimd.BroadcastFloat32x8(8)
	var h [4][6][8]float32 // A along each of the tile's rows: row i, element q, tile
	for ty := ty0; ty < ty1; ty++ {
		t0 := (ty - ty0) * tw
		for tx := 0; tx < tw; tx += 8 {
			for i := 0; i < 4; i++ {
				row := dyp[(4*ty+i)*ldy+4*tx:]
				c0, c1, cc2, c3 := deinterleave4(load8(row[0:]), load8(row[8:]), load8(row[16:]), load8(row[24:]))
				a0, a1, a2, a3, a4, a5 := winograd4AEVec(c0, c1, cc2, c3, c2, c4, c8)
				a0.Store(&h[i][0])
				a1.Store(&h[i][1])
				a2.Store(&h[i][2])
				a3.Store(&h[i][3])
				a4.Store(&h[i][4])
				a5.Store(&h[i][5])
			}
			t := t0 + tx
			for q := 0; q < 6; q++ {
				a0, a1, a2, a3, a4, a5 := winograd4AEVec(archsimd.LoadFloat32x8(&h[0][q]), archsimd.LoadFloat32x8(&h[1][q]),
					archsimd.LoadFloat32x8(&h[2][q]), archsimd.LoadFloat32x8(&h[3][q]), c2, c4, c8)
				a0.Store((*[8]float32)(o[q][t : t+8]))
				a1.Store((*[8]float32)(o[6+q][t : t+8]))
				a2.Store((*[8]float32)(o[12+q][t : t+8]))
				a3.Store((*[8]float32)(o[18+q][t : t+8]))
				a4.Store((*[8]float32)(o[24+q][t : t+8]))
				a5.Store((*[8]float32)(o[30+q][t : t+8]))
			}
		}
	}
	return true
}

// winograd4FinishF32 is the output transform Gᵀ U G of the weight
// gradient (winogradFinishRange, m = 4) of a block of 16 filters, eight
// at a time: element ξ of filter b at blk[ξ][b], tap k of filter b to
// out[k][b]. False, doing nothing, on the portable level.
func winograd4FinishF32(blk *[36][winogradPackBlock]float32, out *[9][winogradPackBlock]float32) bool {
	if !hasAVX2 {
		return false
	}
	defer zeroUpper() // the caller's loop is SSE code: see zeroUpper
	quarter := archsimd.BroadcastFloat32x8(0.25)
	sixth, twelfth, twentyFourth := archsimd.BroadcastFloat32x8(1.0/6), archsimd.BroadcastFloat32x8(1.0/12), archsimd.BroadcastFloat32x8(1.0/24)
	gt := func(u0, u1, u2, u3, u4, u5 archsimd.Float32x8) (z0, z1, z2 archsimd.Float32x8) {
		p12, d12 := u1.Add(u2), u2.Sub(u1)
		p34, d34 := u3.Add(u4), u3.Sub(u4)
		return u0.Mul(quarter).Sub(p12.Mul(sixth)).Add(p34.Mul(twentyFourth)), d12.Mul(sixth).Add(d34.Mul(twelfth)), p34.Sub(p12).Mul(sixth).Add(u5)
	}
	var t [3][6][8]float32 // Gᵀ U: row i, column j, filter
	for h := 0; h < winogradPackBlock; h += 8 {
		for j := 0; j < 6; j++ {
			z0, z1, z2 := gt(load8(blk[j][h:]), load8(blk[6+j][h:]), load8(blk[12+j][h:]), load8(blk[18+j][h:]), load8(blk[24+j][h:]), load8(blk[30+j][h:]))
			z0.Store(&t[0][j])
			z1.Store(&t[1][j])
			z2.Store(&t[2][j])
		}
		for i := 0; i < 3; i++ {
			z0, z1, z2 := gt(archsimd.LoadFloat32x8(&t[i][0]), archsimd.LoadFloat32x8(&t[i][1]), archsimd.LoadFloat32x8(&t[i][2]),
				archsimd.LoadFloat32x8(&t[i][3]), archsimd.LoadFloat32x8(&t[i][4]), archsimd.LoadFloat32x8(&t[i][5]))
			z0.Store((*[8]float32)(out[3*i][h : h+8]))
			z1.Store((*[8]float32)(out[3*i+1][h : h+8]))
			z2.Store((*[8]float32)(out[3*i+2][h : h+8]))
		}
	}
	return true
}
