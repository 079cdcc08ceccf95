package cpu

import (
	"os"
	"strings"
)

// Level is a family of kernels the CPU can run: the fastest one it has is
// used unless GOCAFFE_CPU_LEVEL names a lower one.
type Level int

const (
	// LevelGeneric is portable Go (any CPU, any build).
	LevelGeneric Level = iota
	// LevelAVX2 is AVX2 + FMA (Intel Haswell and later, AMD Zen 1-3).
	LevelAVX2
	// LevelAVX512 is AVX-512 (Intel Skylake-SP and later, AMD Zen 4).
	LevelAVX512
)

// String names the level as GOCAFFE_CPU_LEVEL spells it.
func (l Level) String() string {
	switch l {
	case LevelAVX2:
		return "avx2"
	case LevelAVX512:
		return "avx512"
	}
	return "generic"
}

// LevelEnv caps the kernel level, for testing the slower paths on a fast
// CPU (CI forces avx2 and generic on its AVX-512 machine) or working around
// a CPU fault: avx512, avx2 or generic. It can only lower the level.
const LevelEnv = "GOCAFFE_CPU_LEVEL"

// level is the kernel level in use, fixed at startup.
var level = capLevel(hardwareLevel(), os.Getenv(LevelEnv))

// KernelLevel returns the kernel level in use.
func KernelLevel() Level { return level }

// HardwareLevel returns the best level this CPU and build support.
func HardwareLevel() Level { return hardwareLevel() }

func capLevel(hw Level, env string) Level {
	want := hw
	switch strings.ToLower(strings.TrimSpace(env)) {
	case "generic", "portable":
		want = LevelGeneric
	case "avx2":
		want = LevelAVX2
	}
	return min(hw, want)
}
