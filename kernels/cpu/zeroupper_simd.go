//go:build goexperiment.simd && amd64

package cpu

import "simd/archsimd"

func vzeroupper()

// xinuse and cpuidD1 (zeroupper_amd64.s) let the tests check that kernels
// leave the upper halves clean.
func xinuse() uint64
func cpuidD1() uint32

// hasAVX reports whether VZEROUPPER may run (it faults without AVX).
var hasAVX = archsimd.X86.AVX()

// zeroUpper clears the upper halves of the vector registers (VZEROUPPER)
// before a loop of scalar float arithmetic. Go compiles scalar float32 and
// float64 code to legacy-encoded SSE instructions, and code built with
// GOEXPERIMENT=simd (the archsimd kernels, and the runtime itself) leaves
// those halves dirty; every SSE instruction then pays an AVX-SSE
// transition. On the development VM's Xeon that made math.Exp 50–80×
// slower (640 calls: 214–540 µs against 4–7 µs after VZEROUPPER), and the
// scalar ReLU, softmax and pooling loops pay the same. The state belongs
// to the core, so each loop clears it where it starts, on its own
// goroutine, and every archsimd kernel of this package clears it on its
// way out (defer zeroUpper()): Go code between kernel calls copies and
// zeroes structs and arrays with SSE moves too. Max pooling at CIFAR-10's
// shapes, whose Go loop calls MaxPoolRow once per output row, ran 2.8×
// faster with that alone.
func zeroUpper() {
	if hasAVX {
		vzeroupper()
	}
}
