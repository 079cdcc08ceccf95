// Package cu provides an idiomatic interface to the CUDA Driver API.
package cu // import "gorgonia.org/cu"

// This file implements CUDA driver context management

//#include <cuda.h>
import "C"
import (
	"fmt"
)

const initHtml = "https://docs.nvidia.com/cuda/cuda-driver-api/group__CUDA__INITIALIZE.html"

// initErr is cuInit's error, if any (GoCaffe patch: upstream prints it and
// calls os.Exit(1) in init, which makes a CUDA build unusable as a CPU
// fallback on a machine without a GPU).
var initErr error

func init() {
	// Given that the flags must be 0, the CUDA driver is initialized at the package level
	// http://docs.nvidia.com/cuda/cuda-driver-api/group__CUDA__INITIALIZE.html
	if err := result(C.cuInit(C.uint(0))); err != nil {
		initErr = fmt.Errorf("cuInit (see %s): %w", initHtml, err)
	}
}

// InitError returns the error cuInit gave when the package was loaded, or
// nil when the driver initialised (GoCaffe patch).
func InitError() error { return initErr }

// Version returns the version of the CUDA driver
func Version() int {
	var v C.int
	if err := result(C.cuDriverGetVersion(&v)); err != nil {
		return -1
	}
	return int(v)
}
