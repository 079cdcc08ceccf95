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
