//go:build goexperiment.simd && amd64

package cpu

import "simd/archsimd"

// hasAVX512 is fixed at startup from the CPU's features.
var hasAVX512 = archsimd.X86.AVX512()

// SIMD reports whether the AVX-512 fast paths are in use.
func SIMD() bool { return hasAVX512 }

// microKernel adds the mr×nr (6×32) product of a packed A sliver and a
// packed B sliver into C, with twelve 16-float accumulators.
func microKernel(kb int, a, b []float32, c []float32, ldc int) {
	if !hasAVX512 {
		microKernelGo(kb, a, b, c, ldc)
		return
	}
	var c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51 archsimd.Float32x16
	a = a[:kb*mr]
	b = b[:kb*nr]
	for p := 0; p < kb; p++ {
		bp := b[p*nr : p*nr+nr]
		b0 := archsimd.LoadFloat32x16((*[16]float32)(bp[0:16]))
		b1 := archsimd.LoadFloat32x16((*[16]float32)(bp[16:32]))
		ap := a[p*mr : p*mr+mr]
		a0 := archsimd.BroadcastFloat32x16(ap[0])
		c00 = a0.MulAdd(b0, c00)
		c01 = a0.MulAdd(b1, c01)
		a1 := archsimd.BroadcastFloat32x16(ap[1])
		c10 = a1.MulAdd(b0, c10)
		c11 = a1.MulAdd(b1, c11)
		a2 := archsimd.BroadcastFloat32x16(ap[2])
		c20 = a2.MulAdd(b0, c20)
		c21 = a2.MulAdd(b1, c21)
		a3 := archsimd.BroadcastFloat32x16(ap[3])
		c30 = a3.MulAdd(b0, c30)
		c31 = a3.MulAdd(b1, c31)
		a4 := archsimd.BroadcastFloat32x16(ap[4])
		c40 = a4.MulAdd(b0, c40)
		c41 = a4.MulAdd(b1, c41)
		a5 := archsimd.BroadcastFloat32x16(ap[5])
		c50 = a5.MulAdd(b0, c50)
		c51 = a5.MulAdd(b1, c51)
	}
	addRow(c[0*ldc:], c00, c01)
	addRow(c[1*ldc:], c10, c11)
	addRow(c[2*ldc:], c20, c21)
	addRow(c[3*ldc:], c30, c31)
	addRow(c[4*ldc:], c40, c41)
	addRow(c[5*ldc:], c50, c51)
}

// addRow adds two accumulators into c[0:32].
func addRow(c []float32, x0, x1 archsimd.Float32x16) {
	p0 := (*[16]float32)(c[0:16])
	p1 := (*[16]float32)(c[16:32])
	archsimd.LoadFloat32x16(p0).Add(x0).Store(p0)
	archsimd.LoadFloat32x16(p1).Add(x1).Store(p1)
}

// Saxpy computes y += alpha*x over len(x) elements.
func Saxpy(alpha float32, x, y []float32) {
	y = y[:len(x)]
	if !hasAVX512 {
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
	if !hasAVX512 {
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
	y = y[:len(x)]
	if !hasAVX512 {
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
