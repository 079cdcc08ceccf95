package cpu

import (
	"os"
	"testing"
)

func TestCapLevel(t *testing.T) {
	for _, c := range []struct {
		hw   Level
		env  string
		want Level
	}{
		{LevelAVX512, "", LevelAVX512},
		{LevelAVX512, "avx2", LevelAVX2},
		{LevelAVX512, " AVX2 ", LevelAVX2},
		{LevelAVX512, "generic", LevelGeneric},
		{LevelAVX512, "portable", LevelGeneric},
		{LevelAVX2, "avx512", LevelAVX2}, // the variable only lowers the level
		{LevelGeneric, "avx2", LevelGeneric},
		{LevelAVX2, "nonsense", LevelAVX2},
	} {
		if got := capLevel(c.hw, c.env); got != c.want {
			t.Errorf("capLevel(%v, %q) = %v, want %v", c.hw, c.env, got, c.want)
		}
	}
}

// TestLevelFromEnvironment checks that a run with GOCAFFE_CPU_LEVEL set
// (CI forces avx2 and generic) really runs that level, so those runs test
// what they claim to.
func TestLevelFromEnvironment(t *testing.T) {
	env := os.Getenv(LevelEnv)
	want := capLevel(HardwareLevel(), env)
	if KernelLevel() != want {
		t.Fatalf("%s=%q on a %v machine: kernel level %v, want %v", LevelEnv, env, HardwareLevel(), KernelLevel(), want)
	}
	t.Logf("%s=%q: hardware %v, running %v", LevelEnv, env, HardwareLevel(), KernelLevel())
}

// TestEveryLevelMatchesReference runs the kernels' reference tests at each
// level this CPU supports, so the AVX2 paths are tested on an AVX-512
// machine in every run, not only when CI forces the level.
func TestEveryLevelMatchesReference(t *testing.T) {
	saved := KernelLevel()
	defer setLevel(saved)
	for l := LevelGeneric; l <= HardwareLevel(); l++ {
		setLevel(l)
		t.Run(l.String(), func(t *testing.T) {
			t.Run("Sgemm", TestSgemmMatchesReference)
			t.Run("SgemmBetaZero", TestSgemmBetaZeroOverwritesNaN)
			t.Run("MicroKernel", TestMicroKernelMatchesGo)
			t.Run("VectorOps", TestVectorOpsMatchGeneric)
			t.Run("AddRowSums", TestAddRowSums)
			t.Run("CopyAddRows", TestCopyAndAddRows)
			t.Run("Im2colCol2im", TestIm2colCol2imMatchReference)
			t.Run("SGDMomentum", TestSGDMomentumMatchesRef)
			t.Run("GemmNTSum", TestGemmNTSumMatchesReference)
			t.Run("ConvWeightsT", TestConvWeightsTMatchesReference)
			t.Run("ConvForward", TestConvForwardMatchesReference)
			t.Run("SegKernel", TestSegKernelMatchesGo)
			t.Run("Transpose16", TestTranspose16MatchesGo)
			t.Run("MaxPool2x2Plane", TestMaxPool2x2PlaneMatchesGo)
			t.Run("MaxPoolRow", TestMaxPoolRowMatchesGo)
			t.Run("MaxPoolPlane", TestMaxPoolPlaneMatchesScalar)
			t.Run("SReLU", TestSReLUMatchesScalar)
		})
	}
}
