//go:build goexperiment.simd && amd64

#include "textflag.h"

// func vzeroupper()
TEXT ·vzeroupper(SB), NOSPLIT, $0-0
	VZEROUPPER
	RET

// func xinuse() uint64
// XGETBV with ECX = 1: the processor's XINUSE bitmap (bit 2: the upper
// halves of YMM0-15 are in use; bit 6: the upper halves of ZMM0-15). Only
// where CPUID.(EAX=0DH, ECX=1):EAX[2] says it is supported.
TEXT ·xinuse(SB), NOSPLIT, $0-8
	MOVL $1, CX
	BYTE $0x0f; BYTE $0x01; BYTE $0xd0 // XGETBV
	SHLQ $32, DX
	ORQ DX, AX
	MOVQ AX, ret+0(FP)
	RET

// func cpuidD1() uint32
// CPUID leaf 0DH, sub-leaf 1: EAX (bit 2: XGETBV with ECX = 1).
TEXT ·cpuidD1(SB), NOSPLIT, $0-4
	MOVL $0x0d, AX
	MOVL $1, CX
	CPUID
	MOVL AX, ret+0(FP)
	RET
