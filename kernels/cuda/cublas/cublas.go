//go:build cuda

package cublas

// #cgo LDFLAGS: -ldl
// #include <dlfcn.h>
// #include <stddef.h>
// #include <stdlib.h>
//
// // cuBLAS's C API as far as GoCaffe calls it (cublas_api.h, v2): handles
// // are pointers, enums and status are int, streams are CUstream.
// typedef int (*create_t)(void**);
// typedef int (*destroy_t)(void*);
// typedef int (*version_t)(void*, int*);
// typedef int (*setstream_t)(void*, void*);
// typedef int (*setws_t)(void*, void*, size_t);
// typedef int (*setmath_t)(void*, int);
// typedef int (*sgemm_t)(void*, int, int, int, int, int, const float*, const float*, int, long long,
//                        const float*, int, long long, const float*, float*, int, long long, int);
// typedef int (*dgemm_t)(void*, int, int, int, int, int, const double*, const double*, int, long long,
//                        const double*, int, long long, const double*, double*, int, long long, int);
//
// typedef struct {
// 	void* lib;
// 	create_t create;
// 	destroy_t destroy;
// 	version_t version;
// 	setstream_t setStream;
// 	setws_t setWorkspace;
// 	setmath_t setMath;
// 	sgemm_t sgemm;
// 	dgemm_t dgemm;
// } gc_cublas;
//
// // gc_open loads path and its entry points; on failure returns the
// // loader's message (static storage) and closes what it opened.
// static const char* gc_open(const char* path, gc_cublas* c) {
// 	c->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
// 	if (!c->lib) return dlerror();
// 	#define SYM(f, name) if (!(c->f = (void*)dlsym(c->lib, name))) { dlclose(c->lib); c->lib = NULL; return "lacks " name; }
// 	SYM(create, "cublasCreate_v2")
// 	SYM(destroy, "cublasDestroy_v2")
// 	SYM(version, "cublasGetVersion_v2")
// 	SYM(setStream, "cublasSetStream_v2")
// 	SYM(setWorkspace, "cublasSetWorkspace_v2")
// 	SYM(setMath, "cublasSetMathMode")
// 	SYM(sgemm, "cublasSgemmStridedBatched")
// 	SYM(dgemm, "cublasDgemmStridedBatched")
// 	#undef SYM
// 	return NULL;
// }
// static int gc_create(gc_cublas* c, void** h) { return c->create(h); }
// static int gc_destroy(gc_cublas* c, void* h) { return c->destroy(h); }
// static int gc_version(gc_cublas* c, void* h, int* v) { return c->version(h, v); }
// static int gc_set_stream(gc_cublas* c, void* h, void* s) { return c->setStream(h, s); }
// static int gc_set_workspace(gc_cublas* c, void* h, size_t ws, size_t n) { return c->setWorkspace(h, (void*)ws, n); }
// static int gc_set_math(gc_cublas* c, void* h, int mode) { return c->setMath(h, mode); }
// static int gc_sgemm(gc_cublas* c, void* h, int ta, int tb, int m, int n, int k, float alpha, size_t a, int lda,
//                     long long sa, size_t b, int ldb, long long sb, float beta, size_t cc, int ldc, long long sc, int batch) {
// 	return c->sgemm(h, ta, tb, m, n, k, &alpha, (const float*)a, lda, sa, (const float*)b, ldb, sb, &beta, (float*)cc, ldc, sc, batch);
// }
// static int gc_dgemm(gc_cublas* c, void* h, int ta, int tb, int m, int n, int k, double alpha, size_t a, int lda,
//                     long long sa, size_t b, int ldb, long long sb, double beta, size_t cc, int ldc, long long sc, int batch) {
// 	return c->dgemm(h, ta, tb, m, n, k, &alpha, (const double*)a, lda, sa, (const double*)b, ldb, sb, &beta, (double*)cc, ldc, sc, batch);
// }
import "C"

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"
)

// Lib is a loaded cuBLAS.
type Lib struct {
	c    C.gc_cublas
	Path string // what was loaded (a name on the library path or a file)
}

var (
	loadOnce sync.Once
	loaded   *Lib
	loadNote string
)

// Load finds and loads cuBLAS once per process (FromEnv's search). It
// returns nil and the one line to log when there is none; with a library,
// the line says which one was loaded.
func Load() (*Lib, string) {
	loadOnce.Do(func() { loaded, loadNote = LoadFrom(FromEnv()) })
	return loaded, loadNote
}

// LoadFrom tries s's candidates in order and returns the first that loads
// with every entry point GoCaffe calls, or nil and s.NotFound's line,
// which names the candidates that exist but failed to load.
func LoadFrom(s Search) (*Lib, string) {
	var tried []string
	for _, c := range s.Candidates() {
		if strings.ContainsRune(c.Lib, '/') {
			// A wheel's libcublas finds its libcublasLt beside it.
			lt := filepath.Join(filepath.Dir(c.Lib), strings.Replace(filepath.Base(c.Lib), "libcublas.", "libcublasLt.", 1))
			if isFile(lt) {
				clt := C.CString(lt)
				C.dlopen(clt, C.RTLD_NOW|C.RTLD_GLOBAL)
				C.free(unsafe.Pointer(clt))
			}
		}
		l := &Lib{Path: c.Lib}
		cs := C.CString(c.Lib)
		msg := C.gc_open(cs, &l.c)
		C.free(unsafe.Pointer(cs))
		if msg == nil {
			return l, fmt.Sprintf("cuBLAS loaded from %s (%s): convolution and inner-product GEMMs use it", c.Lib, c.Where)
		}
		m := C.GoString(msg)
		if c.Where == "library path" && strings.Contains(m, "No such file") {
			continue // not on the library path: said once in NotFound
		}
		tried = append(tried, fmt.Sprintf("%s: %s", c.Lib, m))
	}
	return nil, s.NotFound(tried)
}

// Handle is a cuBLAS handle bound to one stream and workspace, created in
// the CUDA context current on the calling thread (cuBLAS uses the runtime,
// which takes the driver context current on the thread).
type Handle struct {
	lib *Lib
	h   unsafe.Pointer
}

// CUBLAS math modes (cublasMath_t).
const (
	mathDefault = 0
	mathTF32    = 3 // CUBLAS_TF32_TENSOR_OP_MATH
)

func status(what string, r C.int) error {
	if r == 0 {
		return nil
	}
	return fmt.Errorf("cuBLAS %s: status %d", what, int(r))
}

// NewHandle creates a handle issuing on stream (a CUstream) with the
// workspace ws of wsBytes device bytes: set explicitly, so that cuBLAS
// allocates nothing itself and its calls can be captured in a CUDA graph.
// Call it with the device's context current.
func (l *Lib) NewHandle(stream unsafe.Pointer, ws uintptr, wsBytes int) (*Handle, error) {
	var h unsafe.Pointer
	if err := status("create", C.gc_create(&l.c, &h)); err != nil {
		return nil, err
	}
	hd := &Handle{lib: l, h: h}
	if err := status("set stream", C.gc_set_stream(&l.c, h, stream)); err != nil {
		hd.Destroy()
		return nil, err
	}
	if err := status("set workspace", C.gc_set_workspace(&l.c, h, C.size_t(ws), C.size_t(wsBytes))); err != nil {
		hd.Destroy()
		return nil, err
	}
	return hd, nil
}

// Bind makes the handle issue on stream with the workspace ws of wsBytes
// bytes from now on (cublasSetStream resets the workspace, so both are
// set together).
func (h *Handle) Bind(stream unsafe.Pointer, ws uintptr, wsBytes int) error {
	if err := status("set stream", C.gc_set_stream(&h.lib.c, h.h, stream)); err != nil {
		return err
	}
	return status("set workspace", C.gc_set_workspace(&h.lib.c, h.h, C.size_t(ws), C.size_t(wsBytes)))
}

// Version is cuBLAS's version number (12xxx for 12.x).
func (h *Handle) Version() int {
	var v C.int
	if C.gc_version(&h.lib.c, h.h, &v) != 0 {
		return -1
	}
	return int(v)
}

// SetTF32 lets float32 GEMMs use TF32 tensor cores (off: full fp32).
func (h *Handle) SetTF32(on bool) error {
	m := mathDefault
	if on {
		m = mathTF32
	}
	return status("set math mode", C.gc_set_math(&h.lib.c, h.h, C.int(m)))
}

// Destroy releases the handle.
func (h *Handle) Destroy() {
	if h.h != nil {
		C.gc_destroy(&h.lib.c, h.h)
		h.h = nil
	}
}

// GemmRowMajor is c_p = alpha·op(a_p)·op(b_p) + beta·c_p for p < batch in
// GoCaffe's row-major layout (ColMajor gives the column-major call), on
// the handle's stream. a, b, c are device addresses; elem is 4 (float32)
// or 8 (float64); strides are in elements.
func (h *Handle) GemmRowMajor(elem int, ta, tb bool, batch, m, n, k int, alpha float64, a uintptr, lda, strideA int,
	b uintptr, ldb, strideB int, beta float64, c uintptr, ldc, strideC int) error {
	g := ColMajor(ta, tb, m, n, k, a, lda, strideA, b, ldb, strideB)
	var r C.int
	if elem == 4 {
		r = C.gc_sgemm(&h.lib.c, h.h, C.int(g.TransA), C.int(g.TransB), C.int(g.M), C.int(g.N), C.int(g.K), C.float(alpha),
			C.size_t(g.A), C.int(g.LDA), C.longlong(g.StrideA), C.size_t(g.B), C.int(g.LDB), C.longlong(g.StrideB),
			C.float(beta), C.size_t(c), C.int(ldc), C.longlong(strideC), C.int(batch))
	} else {
		r = C.gc_dgemm(&h.lib.c, h.h, C.int(g.TransA), C.int(g.TransB), C.int(g.M), C.int(g.N), C.int(g.K), C.double(alpha),
			C.size_t(g.A), C.int(g.LDA), C.longlong(g.StrideA), C.size_t(g.B), C.int(g.LDB), C.longlong(g.StrideB),
			C.double(beta), C.size_t(c), C.int(ldc), C.longlong(strideC), C.int(batch))
	}
	return status(fmt.Sprintf("gemm (%d×%d×%d, batch %d)", m, n, k, batch), r)
}
