// Package cudnn loads NVIDIA's cuDNN at run time (dlopen, never linked,
// never required) and runs 2-D convolutions through its legacy API
// (cudnnConvolutionForward, BackwardData, BackwardFilter). The C
// prototypes it calls are declared in its cgo preamble: GoCaffe builds
// without cuDNN's headers or library. Where it is looked for is
// libsearch's search (GOCAFFE_CUDNN, the library path, NVIDIA's wheels).
package cudnn

import "github.com/gocaffe/gocaffe/kernels/cuda/libsearch"

// Setting is the environment variable that names the cuDNN library to
// load, or "off" to run convolutions on GoCaffe's own CUDA kernels only.
const Setting = "GOCAFFE_CUDNN"

// Names are the library file names tried, newest first.
var Names = []string{"libcudnn.so.9", "libcudnn.so.8", "libcudnn.so"}

// wheelLibs are the folders, under a site-packages, where NVIDIA's pip
// wheels (nvidia-cudnn-cu12, nvidia-cudnn-cu13; PyTorch's wheels depend
// on them) put libcudnn.
var wheelLibs = []string{"nvidia/cudnn/lib", "nvidia/cu13/lib"}

// Lib is cuDNN for libsearch.
func Lib() libsearch.Lib {
	return libsearch.Lib{Name: "cuDNN", Var: Setting, Names: Names, Wheels: wheelLibs,
		Instead: "convolutions run on GoCaffe's own CUDA kernels"}
}

// FromEnv is the search this process makes for cuDNN.
func FromEnv() libsearch.Search { return libsearch.FromEnv(Lib()) }
