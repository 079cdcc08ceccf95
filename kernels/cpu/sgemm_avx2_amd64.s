//go:build goexperiment.simd && amd64

#include "textflag.h"

// AVX2 + FMA SGEMM micro-kernels for CPUs without AVX-512: the product of
// four rows of A and a 24- or 16-column strip of a B sliver, accumulated
// in registers over kb steps (12 or 8 ymm accumulators), scaled by alpha
// and stored to c (row r at c + r·ldc), or with add added there, as
// sgemm4x64 stores its 4×64 tile. Each step loads one strip row of B (3 or
// 2 vectors), broadcasts A(r, p) for the four rows, and issues 12 (or 8)
// FMAs. The Go side runs strips across the tile's columns; a strip past
// the tile's last row or column goes to scratch (alpha 1, no add).
//
// Arguments as sgemm4x64's (sgemm_amd64.s); b and c point at the strip's
// first column.

// func sgemm4x24avx2(kb int, a *float32, aoff *[4]int, acs int, b *float32, ldb int, c *float32, ldc int, alpha float32, add bool)
TEXT ·sgemm4x24avx2(SB), NOSPLIT, $0-69
	MOVQ kb+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ aoff+16(FP), AX
	MOVQ 8(AX), R8
	MOVQ 16(AX), R9
	MOVQ 24(AX), R10
	MOVQ acs+24(FP), DX
	SHLQ $2, DX
	MOVQ b+32(FP), BX
	MOVQ ldb+40(FP), DI
	SHLQ $2, DI
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15
	TESTQ CX, CX
	JLE sgemm4x24avx2_store
sgemm4x24avx2_loop:
	VMOVUPS 0(BX), Y0
	VMOVUPS 32(BX), Y1
	VMOVUPS 64(BX), Y2
	VBROADCASTSS (SI), Y3
	VFMADD231PS Y0, Y3, Y4
	VFMADD231PS Y1, Y3, Y5
	VFMADD231PS Y2, Y3, Y6
	VBROADCASTSS (SI)(R8*1), Y3
	VFMADD231PS Y0, Y3, Y7
	VFMADD231PS Y1, Y3, Y8
	VFMADD231PS Y2, Y3, Y9
	VBROADCASTSS (SI)(R9*1), Y3
	VFMADD231PS Y0, Y3, Y10
	VFMADD231PS Y1, Y3, Y11
	VFMADD231PS Y2, Y3, Y12
	VBROADCASTSS (SI)(R10*1), Y3
	VFMADD231PS Y0, Y3, Y13
	VFMADD231PS Y1, Y3, Y14
	VFMADD231PS Y2, Y3, Y15
	ADDQ DX, SI
	ADDQ DI, BX
	DECQ CX
	JNZ sgemm4x24avx2_loop
sgemm4x24avx2_store:
	MOVQ c+48(FP), BX
	MOVQ ldc+56(FP), R11
	SHLQ $2, R11
	LEAQ (BX)(R11*1), R8
	LEAQ (R8)(R11*1), R9
	LEAQ (R9)(R11*1), R10
	VBROADCASTSS alpha+64(FP), Y0
	MOVBLZX add+68(FP), AX
	TESTQ AX, AX
	JNZ sgemm4x24avx2_add
	VMULPS Y0, Y4, Y4
	VMULPS Y0, Y5, Y5
	VMULPS Y0, Y6, Y6
	VMULPS Y0, Y7, Y7
	VMULPS Y0, Y8, Y8
	VMULPS Y0, Y9, Y9
	VMULPS Y0, Y10, Y10
	VMULPS Y0, Y11, Y11
	VMULPS Y0, Y12, Y12
	VMULPS Y0, Y13, Y13
	VMULPS Y0, Y14, Y14
	VMULPS Y0, Y15, Y15
	JMP sgemm4x24avx2_put
sgemm4x24avx2_add:
	VFMADD213PS (BX), Y0, Y4
	VFMADD213PS 32(BX), Y0, Y5
	VFMADD213PS 64(BX), Y0, Y6
	VFMADD213PS (R8), Y0, Y7
	VFMADD213PS 32(R8), Y0, Y8
	VFMADD213PS 64(R8), Y0, Y9
	VFMADD213PS (R9), Y0, Y10
	VFMADD213PS 32(R9), Y0, Y11
	VFMADD213PS 64(R9), Y0, Y12
	VFMADD213PS (R10), Y0, Y13
	VFMADD213PS 32(R10), Y0, Y14
	VFMADD213PS 64(R10), Y0, Y15
sgemm4x24avx2_put:
	VMOVUPS Y4, (BX)
	VMOVUPS Y5, 32(BX)
	VMOVUPS Y6, 64(BX)
	VMOVUPS Y7, (R8)
	VMOVUPS Y8, 32(R8)
	VMOVUPS Y9, 64(R8)
	VMOVUPS Y10, (R9)
	VMOVUPS Y11, 32(R9)
	VMOVUPS Y12, 64(R9)
	VMOVUPS Y13, (R10)
	VMOVUPS Y14, 32(R10)
	VMOVUPS Y15, 64(R10)
	VZEROUPPER
	RET

// func sgemm4x16avx2(kb int, a *float32, aoff *[4]int, acs int, b *float32, ldb int, c *float32, ldc int, alpha float32, add bool)
TEXT ·sgemm4x16avx2(SB), NOSPLIT, $0-69
	MOVQ kb+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ aoff+16(FP), AX
	MOVQ 8(AX), R8
	MOVQ 16(AX), R9
	MOVQ 24(AX), R10
	MOVQ acs+24(FP), DX
	SHLQ $2, DX
	MOVQ b+32(FP), BX
	MOVQ ldb+40(FP), DI
	SHLQ $2, DI
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	TESTQ CX, CX
	JLE sgemm4x16avx2_store
sgemm4x16avx2_loop:
	VMOVUPS 0(BX), Y0
	VMOVUPS 32(BX), Y1
	VBROADCASTSS (SI), Y3
	VFMADD231PS Y0, Y3, Y4
	VFMADD231PS Y1, Y3, Y5
	VBROADCASTSS (SI)(R8*1), Y3
	VFMADD231PS Y0, Y3, Y6
	VFMADD231PS Y1, Y3, Y7
	VBROADCASTSS (SI)(R9*1), Y3
	VFMADD231PS Y0, Y3, Y8
	VFMADD231PS Y1, Y3, Y9
	VBROADCASTSS (SI)(R10*1), Y3
	VFMADD231PS Y0, Y3, Y10
	VFMADD231PS Y1, Y3, Y11
	ADDQ DX, SI
	ADDQ DI, BX
	DECQ CX
	JNZ sgemm4x16avx2_loop
sgemm4x16avx2_store:
	MOVQ c+48(FP), BX
	MOVQ ldc+56(FP), R11
	SHLQ $2, R11
	LEAQ (BX)(R11*1), R8
	LEAQ (R8)(R11*1), R9
	LEAQ (R9)(R11*1), R10
	VBROADCASTSS alpha+64(FP), Y0
	MOVBLZX add+68(FP), AX
	TESTQ AX, AX
	JNZ sgemm4x16avx2_add
	VMULPS Y0, Y4, Y4
	VMULPS Y0, Y5, Y5
	VMULPS Y0, Y6, Y6
	VMULPS Y0, Y7, Y7
	VMULPS Y0, Y8, Y8
	VMULPS Y0, Y9, Y9
	VMULPS Y0, Y10, Y10
	VMULPS Y0, Y11, Y11
	JMP sgemm4x16avx2_put
sgemm4x16avx2_add:
	VFMADD213PS (BX), Y0, Y4
	VFMADD213PS 32(BX), Y0, Y5
	VFMADD213PS (R8), Y0, Y6
	VFMADD213PS 32(R8), Y0, Y7
	VFMADD213PS (R9), Y0, Y8
	VFMADD213PS 32(R9), Y0, Y9
	VFMADD213PS (R10), Y0, Y10
	VFMADD213PS 32(R10), Y0, Y11
sgemm4x16avx2_put:
	VMOVUPS Y4, (BX)
	VMOVUPS Y5, 32(BX)
	VMOVUPS Y6, (R8)
	VMOVUPS Y7, 32(R8)
	VMOVUPS Y8, (R9)
	VMOVUPS Y9, 32(R9)
	VMOVUPS Y10, (R10)
	VMOVUPS Y11, 32(R10)
	VZEROUPPER
	RET

// sgemm6x16segavx2 is sgemm8x32seg (sgemm_amd64.s) on AVX2: a 6×16 tile
// of an implicit product, in 12 ymm accumulators, over nseg segments of
// seglen steps. Segment s of row r reads A at a + segoff[s] + aoff[r]
// (byte offsets; aoff[0] is 0, aoff[6] and aoff[7] unused), stepping acs
// elements; B runs on one packed row (32 values, 128 bytes) a step, of
// which the tile reads 16 from b. Each step loads two vectors of B,
// broadcasts A(r, p) for the six rows and issues 12 FMAs. The tile is
// stored to c (row r at c + r·ldc), or with add added there.
//
// func sgemm6x16segavx2(nseg, seglen int, a *float32, aoff *[8]int, acs int, segoff *int, b *float32, c *float32, ldc int, add bool)
TEXT ·sgemm6x16segavx2(SB), NOSPLIT, $0-73
	MOVQ aoff+24(FP), AX
	MOVQ 8(AX), R8
	MOVQ 16(AX), R9
	MOVQ 24(AX), R10
	MOVQ 32(AX), R11
	MOVQ 40(AX), R12
	MOVQ a+16(FP), R13
	MOVQ acs+32(FP), DX
	SHLQ $2, DX
	MOVQ segoff+40(FP), DI
	MOVQ b+48(FP), BX
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15
	MOVQ nseg+0(FP), AX
	TESTQ AX, AX
	JLE sgemm6x16segavx2_store
	MOVQ seglen+8(FP), CX
	TESTQ CX, CX
	JLE sgemm6x16segavx2_store
sgemm6x16segavx2_seg:
	MOVQ R13, SI
	ADDQ (DI), SI
	ADDQ $8, DI
	MOVQ seglen+8(FP), CX
sgemm6x16segavx2_loop:
	VMOVUPS (BX), Y0
	VMOVUPS 32(BX), Y1
	VBROADCASTSS (SI), Y2
	VFMADD231PS Y0, Y2, Y4
	VFMADD231PS Y1, Y2, Y5
	VBROADCASTSS (SI)(R8*1), Y3
	VFMADD231PS Y0, Y3, Y6
	VFMADD231PS Y1, Y3, Y7
	VBROADCASTSS (SI)(R9*1), Y2
	VFMADD231PS Y0, Y2, Y8
	VFMADD231PS Y1, Y2, Y9
	VBROADCASTSS (SI)(R10*1), Y3
	VFMADD231PS Y0, Y3, Y10
	VFMADD231PS Y1, Y3, Y11
	VBROADCASTSS (SI)(R11*1), Y2
	VFMADD231PS Y0, Y2, Y12
	VFMADD231PS Y1, Y2, Y13
	VBROADCASTSS (SI)(R12*1), Y3
	VFMADD231PS Y0, Y3, Y14
	VFMADD231PS Y1, Y3, Y15
	ADDQ DX, SI
	ADDQ $128, BX
	DECQ CX
	JNZ sgemm6x16segavx2_loop
	DECQ AX
	JNZ sgemm6x16segavx2_seg
sgemm6x16segavx2_store:
	MOVQ c+56(FP), BX
	MOVQ ldc+64(FP), R11
	SHLQ $2, R11
	LEAQ (BX)(R11*1), R8
	LEAQ (R8)(R11*1), R9
	LEAQ (R9)(R11*1), R10
	LEAQ (R10)(R11*1), R12
	LEAQ (R12)(R11*1), R13
	MOVBLZX add+72(FP), AX
	TESTQ AX, AX
	JZ sgemm6x16segavx2_put
	VADDPS (BX), Y4, Y4
	VADDPS 32(BX), Y5, Y5
	VADDPS (R8), Y6, Y6
	VADDPS 32(R8), Y7, Y7
	VADDPS (R9), Y8, Y8
	VADDPS 32(R9), Y9, Y9
	VADDPS (R10), Y10, Y10
	VADDPS 32(R10), Y11, Y11
	VADDPS (R12), Y12, Y12
	VADDPS 32(R12), Y13, Y13
	VADDPS (R13), Y14, Y14
	VADDPS 32(R13), Y15, Y15
sgemm6x16segavx2_put:
	VMOVUPS Y4, (BX)
	VMOVUPS Y5, 32(BX)
	VMOVUPS Y6, (R8)
	VMOVUPS Y7, 32(R8)
	VMOVUPS Y8, (R9)
	VMOVUPS Y9, 32(R9)
	VMOVUPS Y10, (R10)
	VMOVUPS Y11, 32(R10)
	VMOVUPS Y12, (R12)
	VMOVUPS Y13, 32(R12)
	VMOVUPS Y14, (R13)
	VMOVUPS Y15, 32(R13)
	VZEROUPPER
	RET

// transpose8avx2 writes the transpose of the 8×8 block at src (rows ld
// floats apart) to dst (rows ldd apart): rows are interleaved in pairs
// (VUNPCKLPS/VUNPCKHPS), then in fours (VSHUFPS), and the 128-bit halves
// are exchanged (VPERM2F128).
//
// func transpose8avx2(src *float32, ld int, dst *float32, ldd int)
TEXT ·transpose8avx2(SB), NOSPLIT, $0-32
	MOVQ src+0(FP), SI
	MOVQ ld+8(FP), AX
	SHLQ $2, AX
	MOVQ dst+16(FP), DI
	MOVQ ldd+24(FP), DX
	SHLQ $2, DX
	LEAQ (AX)(AX*2), BX // 3·ld
	LEAQ (SI)(AX*4), CX // row 4
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(AX*1), Y1
	VMOVUPS (SI)(AX*2), Y2
	VMOVUPS (SI)(BX*1), Y3
	VMOVUPS (CX), Y4
	VMOVUPS (CX)(AX*1), Y5
	VMOVUPS (CX)(AX*2), Y6
	VMOVUPS (CX)(BX*1), Y7
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15
	VSHUFPS $0x44, Y10, Y8, Y0
	VSHUFPS $0xEE, Y10, Y8, Y1
	VSHUFPS $0x44, Y11, Y9, Y2
	VSHUFPS $0xEE, Y11, Y9, Y3
	VSHUFPS $0x44, Y14, Y12, Y4
	VSHUFPS $0xEE, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xEE, Y15, Y13, Y7
	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x20, Y5, Y1, Y9
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y4, Y0, Y12
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x31, Y7, Y3, Y15
	LEAQ (DX)(DX*2), BX // 3·ldd
	LEAQ (DI)(DX*4), CX // row 4
	VMOVUPS Y8, (DI)
	VMOVUPS Y9, (DI)(DX*1)
	VMOVUPS Y10, (DI)(DX*2)
	VMOVUPS Y11, (DI)(BX*1)
	VMOVUPS Y12, (CX)
	VMOVUPS Y13, (CX)(DX*1)
	VMOVUPS Y14, (CX)(DX*2)
	VMOVUPS Y15, (CX)(BX*1)
	VZEROUPPER
	RET
