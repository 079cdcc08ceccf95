//go:build !(goexperiment.simd && amd64)

package cpu

// Builds without GOEXPERIMENT=simd (or off amd64) have only the portable Go
// kernels.
func hardwareLevel() Level { return LevelGeneric }

func setLevel(l Level) { level = l }
