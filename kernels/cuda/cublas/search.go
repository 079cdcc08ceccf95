package cublas

import "github.com/gocaffe/gocaffe/kernels/cuda/libsearch"

// Setting is the environment variable that names the cuBLAS library to
// load, or "off" to use GoCaffe's own GEMM kernels only.
const Setting = "GOCAFFE_CUBLAS"

// Names are the library file names tried, newest first: on the dynamic
// loader's path and in each wheel folder.
var Names = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so"}

// wheelLibs are the folders, under a site-packages, where NVIDIA's pip
// wheels put libcublas (12.x: nvidia/cublas/lib; 13.x: nvidia/cu13/lib).
var wheelLibs = []string{"nvidia/cublas/lib", "nvidia/cu13/lib", "nvidia/cu12/lib"}

// lib is cuBLAS for libsearch.
func lib() libsearch.Lib {
	return libsearch.Lib{Name: "cuBLAS", Var: Setting, Names: Names, Wheels: wheelLibs,
		Instead: "GEMMs run on GoCaffe's own CUDA kernels"}
}

// Search is where to look for cuBLAS (libsearch.Search for cuBLAS): the
// setting's value, the PATH entries whose python3 leads to site-packages,
// and further prefixes (a folder with lib/python3.*/{site,dist}-packages).
type Search struct {
	Setting  string   // GOCAFFE_CUBLAS: a path, "off", or ""
	Path     []string // PATH's folders
	Prefixes []string // more install prefixes (/usr/local, /usr, ~/.local)
}

func (s Search) lib() libsearch.Search {
	return libsearch.Search{Lib: lib(), Setting: s.Setting, Path: s.Path, Prefixes: s.Prefixes}
}

// FromEnv is the search this process makes: GOCAFFE_CUBLAS, PATH, and the
// prefixes /usr/local, /usr, /opt/conda and ~/.local.
func FromEnv() Search {
	l := libsearch.FromEnv(lib())
	return Search{Setting: l.Setting, Path: l.Path, Prefixes: l.Prefixes}
}

// Off reports whether the setting turns cuBLAS off.
func (s Search) Off() bool { return s.lib().Off() }

// Candidate is one library to try (libsearch.Candidate).
type Candidate = libsearch.Candidate

// Candidates returns the libraries to try, in order: the setting's path
// alone when it is set; else the names on the library path, then each
// existing wheel folder's files. Nothing when the setting is "off".
func (s Search) Candidates() []Candidate { return s.lib().Candidates() }

// WheelDirs returns the existing wheel lib folders, in search order.
func (s Search) WheelDirs() []string { return s.lib().WheelDirs() }

// NotFound is the one log line for a node without cuBLAS: where it looked.
func (s Search) NotFound(tried []string) string { return s.lib().NotFound(tried) }

func isFile(p string) bool { return libsearch.IsFile(p) }
