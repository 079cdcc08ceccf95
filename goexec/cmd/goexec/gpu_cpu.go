//go:build !cuda

package main

import (
	"errors"

	"github.com/rs/zerolog"

	"github.com/gocaffe/gocaffe/kernels"
)

// cudaBuild is whether this goexec has the CUDA backend.
const cudaBuild = false

func openGPU(ordinal int) (kernels.Device, error) {
	return nil, errors.New("this goexec is the CPU build (goexec-cuda has the CUDA backend)")
}

// cudaCommands are the CUDA build's extra commands.
func cudaCommands() map[string]command { return nil }

// deviceErr is a GPU device's pending CUDA error (none on the CPU build).
func deviceErr(kernels.Device) error { return nil }

// devicePeak is a GPU device's most allocated bytes (0: not a GPU).
func devicePeak(kernels.Device) int64 { return 0 }

// deviceGEMM says which GEMMs a GPU device uses ("" on the CPU build).
func deviceGEMM(kernels.Device) string { return "" }

// devicePrecision is "fp32": the CPU build has no TF32.
func devicePrecision(kernels.Device) string { return "fp32" }

// logConvChoices logs nothing: the CPU build has no GPU convolutions.
func logConvChoices(kernels.Device, zerolog.Logger, int) int { return 0 }
