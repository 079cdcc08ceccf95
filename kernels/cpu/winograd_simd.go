//go:build goexperiment.simd && amd64

package cpu

import "simd/archsimd"

// winogradInput32 is winogradInput's tile loop in AVX2 vectors of eight
// tiles (AVX-512 machines run it too): tiles [0, k) of one tile row, k the
// largest multiple of 8 not over tw, written at outputs t0..t0+k; it
// returns k, or 0 below the AVX2 level.
func winogradInput32(e, d *[4][]float32, tw int, o *[16][]float32, t0 int) int {
	if !hasAVX2 {
		return 0
	}
	ld8 := func(s []float32, i int) archsimd.Float32x8 { return archsimd.LoadFloat32x8((*[8]float32)(s[i : i+8])) }
	st8 := func(v archsimd.Float32x8, s []float32, i int) { v.Store((*[8]float32)(s[i : i+8])) }
	k := tw &^ 7
	for tx := 0; tx < k; tx += 8 {
		t := t0 + tx
		var a, b, c, f [4]archsimd.Float32x8
		for j := range 2 {
			// Bᵀ d over the tile's columns: 0 and 2 are the even runs at
			// tx and tx+1, 1 and 3 the odd ones.
			src := e
			if j == 1 {
				src = d
			}
			for q := range 2 {
				col := j + 2*q
				r0, r1, r2, r3 := ld8(src[0], tx+q), ld8(src[1], tx+q), ld8(src[2], tx+q), ld8(src[3], tx+q)
				a[col] = r0.Sub(r2)
				b[col] = r1.Add(r2)
				c[col] = r2.Sub(r1)
				f[col] = r1.Sub(r3)
			}
		}
		for i, row := range [4]*[4]archsimd.Float32x8{&a, &b, &c, &f} {
			st8(row[0].Sub(row[2]), o[4*i], t)
			st8(row[1].Add(row[2]), o[4*i+1], t)
			st8(row[2].Sub(row[1]), o[4*i+2], t)
			st8(row[1].Sub(row[3]), o[4*i+3], t)
		}
	}
	return k
}

// winogradOutput32 is winogradOutput's tile loop in AVX2 vectors of eight
// tiles (AVX-512 machines run it too): tiles [0, k) of one tile row read
// at t0..t0+k, k the largest multiple of 8 whose 2k columns fit in the
// output rows y0 and (with full) y1; it returns k, or 0 below the AVX2
// level.
func winogradOutput32(q *[16][]float32, tw, t0 int, y0, y1 []float32, full bool) int {
	if !hasAVX2 {
		return 0
	}
	ld8 := func(s []float32, i int) archsimd.Float32x8 { return archsimd.LoadFloat32x8((*[8]float32)(s[i : i+8])) }
	// st16 stores a and b interleaved: a0 b0 a1 b1 ... a7 b7.
	st16 := func(a, b archsimd.Float32x8, s []float32) {
		lo, hi := a.SelectFromPairGrouped(0, 4, 1, 5, b), a.SelectFromPairGrouped(2, 6, 3, 7, b)
		lo.Select128FromPair(0, 2, hi).Store((*[8]float32)(s[0:8]))
		lo.Select128FromPair(1, 3, hi).Store((*[8]float32)(s[8:16]))
	}
	k := min(tw, len(y0)/2) &^ 7
	for tx := 0; tx < k; tx += 8 {
		t := t0 + tx
		var m [16]archsimd.Float32x8
		for xi := range m {
			m[xi] = ld8(q[xi], t)
		}
		// Aᵀ M: two rows of four.
		s0 := m[0].Add(m[4]).Add(m[8])
		s1 := m[1].Add(m[5]).Add(m[9])
		s2 := m[2].Add(m[6]).Add(m[10])
		s3 := m[3].Add(m[7]).Add(m[11])
		st16(s0.Add(s1).Add(s2), s1.Sub(s2).Sub(s3), y0[2*tx:2*tx+16])
		if full {
			s4 := m[4].Sub(m[8]).Sub(m[12])
			s5 := m[5].Sub(m[9]).Sub(m[13])
			s6 := m[6].Sub(m[10]).Sub(m[14])
			s7 := m[7].Sub(m[11]).Sub(m[15])
			st16(s4.Add(s5).Add(s6), s5.Sub(s6).Sub(s7), y1[2*tx:2*tx+16])
		}
	}
	return k
}
