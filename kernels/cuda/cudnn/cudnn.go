//go:build cuda

package cudnn

// #cgo LDFLAGS: -ldl
// #include <dlfcn.h>
// #include <stddef.h>
// #include <stdlib.h>
//
// // cuDNN's legacy C API as far as GoCaffe calls it (cudnn_ops.h,
// // cudnn_cnn.h of cuDNN 8 and 9): handles and descriptors are pointers,
// // enums and status are int, streams are CUstream. The perf structs of
// // the three algorithm searches share this layout.
// typedef struct { int algo; int status; float time; size_t memory; int determinism; int mathType; int reserved[3]; } gc_perf;
//
// typedef struct {
// 	void* lib;
// 	size_t (*version)(void);
// 	const char* (*errstr)(int);
// 	int (*create)(void**);
// 	int (*destroy)(void*);
// 	int (*setStream)(void*, void*);
// 	int (*createTensor)(void**);
// 	int (*setTensor4d)(void*, int, int, int, int, int, int);
// 	int (*destroyTensor)(void*);
// 	int (*createFilter)(void**);
// 	int (*setFilter4d)(void*, int, int, int, int, int, int);
// 	int (*destroyFilter)(void*);
// 	int (*createConv)(void**);
// 	int (*setConv2d)(void*, int, int, int, int, int, int, int, int);
// 	int (*setGroups)(void*, int);
// 	int (*setMath)(void*, int);
// 	int (*destroyConv)(void*);
// 	int (*outDim)(void*, void*, void*, int*, int*, int*, int*);
// 	int (*fwdAlgo)(void*, void*, void*, void*, void*, int, int*, gc_perf*);
// 	int (*bwdDataAlgo)(void*, void*, void*, void*, void*, int, int*, gc_perf*);
// 	int (*bwdFilterAlgo)(void*, void*, void*, void*, void*, int, int*, gc_perf*);
// 	int (*findFwd)(void*, void*, void*, void*, void*, int, int*, gc_perf*);
// 	int (*findBwdData)(void*, void*, void*, void*, void*, int, int*, gc_perf*);
// 	int (*findBwdFilter)(void*, void*, void*, void*, void*, int, int*, gc_perf*);
// 	int (*fwd)(void*, const void*, void*, const void*, void*, const void*, void*, int, void*, size_t, const void*, void*, void*);
// 	int (*bwdData)(void*, const void*, void*, const void*, void*, const void*, void*, int, void*, size_t, const void*, void*, void*);
// 	int (*bwdFilter)(void*, const void*, void*, const void*, void*, const void*, void*, int, void*, size_t, const void*, void*, void*);
// } gc_cudnn;
//
// // gc_open loads path and its entry points; on failure returns the
// // loader's message (static storage) and closes what it opened.
// static const char* gc_open(const char* path, gc_cudnn* c) {
// 	c->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
// 	if (!c->lib) return dlerror();
// 	#define SYM(f, name) if (!(c->f = (void*)dlsym(c->lib, name))) { dlclose(c->lib); c->lib = NULL; return "lacks " name; }
// 	SYM(version, "cudnnGetVersion")
// 	SYM(errstr, "cudnnGetErrorString")
// 	SYM(create, "cudnnCreate")
// 	SYM(destroy, "cudnnDestroy")
// 	SYM(setStream, "cudnnSetStream")
// 	SYM(createTensor, "cudnnCreateTensorDescriptor")
// 	SYM(setTensor4d, "cudnnSetTensor4dDescriptor")
// 	SYM(destroyTensor, "cudnnDestroyTensorDescriptor")
// 	SYM(createFilter, "cudnnCreateFilterDescriptor")
// 	SYM(setFilter4d, "cudnnSetFilter4dDescriptor")
// 	SYM(destroyFilter, "cudnnDestroyFilterDescriptor")
// 	SYM(createConv, "cudnnCreateConvolutionDescriptor")
// 	SYM(setConv2d, "cudnnSetConvolution2dDescriptor")
// 	SYM(setGroups, "cudnnSetConvolutionGroupCount")
// 	SYM(setMath, "cudnnSetConvolutionMathType")
// 	SYM(destroyConv, "cudnnDestroyConvolutionDescriptor")
// 	SYM(outDim, "cudnnGetConvolution2dForwardOutputDim")
// 	SYM(fwdAlgo, "cudnnGetConvolutionForwardAlgorithm_v7")
// 	SYM(bwdDataAlgo, "cudnnGetConvolutionBackwardDataAlgorithm_v7")
// 	SYM(bwdFilterAlgo, "cudnnGetConvolutionBackwardFilterAlgorithm_v7")
// 	SYM(findFwd, "cudnnFindConvolutionForwardAlgorithm")
// 	SYM(findBwdData, "cudnnFindConvolutionBackwardDataAlgorithm")
// 	SYM(findBwdFilter, "cudnnFindConvolutionBackwardFilterAlgorithm")
// 	SYM(fwd, "cudnnConvolutionForward")
// 	SYM(bwdData, "cudnnConvolutionBackwardData")
// 	SYM(bwdFilter, "cudnnConvolutionBackwardFilter")
// 	#undef SYM
// 	return NULL;
// }
// static size_t gc_version(gc_cudnn* c) { return c->version(); }
// static const char* gc_errstr(gc_cudnn* c, int s) { return c->errstr(s); }
// static int gc_create(gc_cudnn* c, void** h) { return c->create(h); }
// static int gc_destroy(gc_cudnn* c, void* h) { return c->destroy(h); }
// static int gc_set_stream(gc_cudnn* c, void* h, void* s) { return c->setStream(h, s); }
// static int gc_create_tensor(gc_cudnn* c, void** d) { return c->createTensor(d); }
// static int gc_set_tensor(gc_cudnn* c, void* d, int dtype, int n, int ch, int h, int w) { return c->setTensor4d(d, 0, dtype, n, ch, h, w); }
// static int gc_destroy_tensor(gc_cudnn* c, void* d) { return c->destroyTensor(d); }
// static int gc_create_filter(gc_cudnn* c, void** d) { return c->createFilter(d); }
// static int gc_set_filter(gc_cudnn* c, void* d, int dtype, int k, int ch, int h, int w) { return c->setFilter4d(d, dtype, 0, k, ch, h, w); }
// static int gc_destroy_filter(gc_cudnn* c, void* d) { return c->destroyFilter(d); }
// static int gc_create_conv(gc_cudnn* c, void** d) { return c->createConv(d); }
// static int gc_set_conv(gc_cudnn* c, void* d, int ph, int pw, int sh, int sw, int dh, int dw, int dtype) {
// 	return c->setConv2d(d, ph, pw, sh, sw, dh, dw, 1 /* CUDNN_CROSS_CORRELATION */, dtype);
// }
// static int gc_set_groups(gc_cudnn* c, void* d, int g) { return c->setGroups(d, g); }
// static int gc_set_math(gc_cudnn* c, void* d, int m) { return c->setMath(d, m); }
// static int gc_destroy_conv(gc_cudnn* c, void* d) { return c->destroyConv(d); }
// static int gc_out_dim(gc_cudnn* c, void* conv, void* x, void* w, int* n, int* ch, int* h, int* wd) { return c->outDim(conv, x, w, n, ch, h, wd); }
// static int gc_fwd_algo(gc_cudnn* c, void* h, void* x, void* w, void* conv, void* y, int req, int* ret, gc_perf* p) { return c->fwdAlgo(h, x, w, conv, y, req, ret, p); }
// static int gc_bwd_data_algo(gc_cudnn* c, void* h, void* w, void* dy, void* conv, void* dx, int req, int* ret, gc_perf* p) { return c->bwdDataAlgo(h, w, dy, conv, dx, req, ret, p); }
// static int gc_bwd_filter_algo(gc_cudnn* c, void* h, void* x, void* dy, void* conv, void* dw, int req, int* ret, gc_perf* p) { return c->bwdFilterAlgo(h, x, dy, conv, dw, req, ret, p); }
// // The searches that run each algorithm (on memory cuDNN allocates) and
// // return them fastest first; same arguments as the _v7 queries.
// static int gc_find_fwd(gc_cudnn* c, void* h, void* x, void* w, void* conv, void* y, int req, int* ret, gc_perf* p) { return c->findFwd(h, x, w, conv, y, req, ret, p); }
// static int gc_find_bwd_data(gc_cudnn* c, void* h, void* w, void* dy, void* conv, void* dx, int req, int* ret, gc_perf* p) { return c->findBwdData(h, w, dy, conv, dx, req, ret, p); }
// static int gc_find_bwd_filter(gc_cudnn* c, void* h, void* x, void* dy, void* conv, void* dw, int req, int* ret, gc_perf* p) { return c->findBwdFilter(h, x, dy, conv, dw, req, ret, p); }
//
// // The scaling factors are host values of the data's type: float for
// // float data, double for double (elem is 4 or 8).
// typedef struct { float f; double d; } gc_scale;
// static const void* gc_ptr(const gc_scale* s, int elem) { return elem == 4 ? (const void*)&s->f : (const void*)&s->d; }
// static int gc_fwd(gc_cudnn* c, void* h, int elem, double alpha, void* xd, size_t x, void* wd, size_t w, void* conv, int algo,
//                   size_t ws, size_t wsb, double beta, void* yd, size_t y) {
// 	gc_scale a = {(float)alpha, alpha}, b = {(float)beta, beta};
// 	return c->fwd(h, gc_ptr(&a, elem), xd, (const void*)x, wd, (const void*)w, conv, algo, (void*)ws, wsb, gc_ptr(&b, elem), yd, (void*)y);
// }
// static int gc_bwd_data(gc_cudnn* c, void* h, int elem, double alpha, void* wd, size_t w, void* dyd, size_t dy, void* conv, int algo,
//                        size_t ws, size_t wsb, double beta, void* dxd, size_t dx) {
// 	gc_scale a = {(float)alpha, alpha}, b = {(float)beta, beta};
// 	return c->bwdData(h, gc_ptr(&a, elem), wd, (const void*)w, dyd, (const void*)dy, conv, algo, (void*)ws, wsb, gc_ptr(&b, elem), dxd, (void*)dx);
// }
// static int gc_bwd_filter(gc_cudnn* c, void* h, int elem, double alpha, void* xd, size_t x, void* dyd, size_t dy, void* conv, int algo,
//                          size_t ws, size_t wsb, double beta, void* dwd, size_t dw) {
// 	gc_scale a = {(float)alpha, alpha}, b = {(float)beta, beta};
// 	return c->bwdFilter(h, gc_ptr(&a, elem), xd, (const void*)x, dyd, (const void*)dy, conv, algo, (void*)ws, wsb, gc_ptr(&b, elem), dwd, (void*)dw);
// }
//
// // gc_preload loads every file in paths (NULL-terminated) with
// // RTLD_GLOBAL, in passes until a pass loads nothing more (a file whose
// // dependencies are not loaded yet fails once, then loads), so that the
// // library finds its sub-libraries beside it. Returns how many loaded.
// static int gc_preload(const char** paths, int n) {
// 	char done[64] = {0};
// 	int loaded = 0, progress = 1;
// 	if (n > 64) n = 64;
// 	while (progress) {
// 		progress = 0;
// 		for (int i = 0; i < n; i++) {
// 			if (done[i]) continue;
// 			if (dlopen(paths[i], RTLD_NOW | RTLD_GLOBAL)) { done[i] = 1; loaded++; progress = 1; }
// 		}
// 	}
// 	return loaded;
// }
import "C"

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"github.com/gocaffe/gocaffe/kernels/cuda/libsearch"
)

// Loaded is a loaded cuDNN.
type Loaded struct {
	c       C.gc_cudnn
	Path    string // what was loaded (a name on the library path or a file)
	Version int    // cudnnGetVersion: 90100 for 9.1.0, 8902 for 8.9.2
}

var (
	preloadOnce sync.Once
	loadOnce    sync.Once
	loaded      *Loaded
	loadNote    string
)

// Load finds and loads cuDNN once per process (FromEnv's search). It
// returns nil and the one line to log when there is none; with a library,
// the line says which one was loaded and from where.
func Load() (*Loaded, string) {
	loadOnce.Do(func() { loaded, loadNote = LoadFrom(FromEnv()) })
	return loaded, loadNote
}

// LoadFrom tries s's candidates in order and returns the first that loads
// with every entry point GoCaffe calls, or nil and s.NotFound's line.
func LoadFrom(s libsearch.Search) (*Loaded, string) {
	var tried []string
	for _, c := range s.Candidates() {
		l := &Loaded{Path: c.Lib}
		cs := C.CString(c.Lib)
		msg := C.gc_open(cs, &l.c)
		C.free(unsafe.Pointer(cs))
		if msg == nil {
			l.Version = int(C.gc_version(&l.c))
			if l.Version < 8000 {
				tried = append(tried, fmt.Sprintf("%s: version %d (8 or later needed)", c.Lib, l.Version))
				continue
			}
			return l, fmt.Sprintf("cuDNN %d loaded from %s (%s)", l.Version, c.Lib, c.Where)
		}
		m := C.GoString(msg)
		if c.Where == "library path" && strings.Contains(m, "No such file") {
			continue // not on the library path: said once in NotFound
		}
		tried = append(tried, fmt.Sprintf("%s: %s", c.Lib, m))
	}
	return nil, s.NotFound(tried)
}

// preloadSubLibraries loads, RTLD_GLOBAL, the sub-libraries beside a
// libcudnn.so.N file (cuDNN 9: libcudnn_graph, _engines_*, _heuristic,
// _ops, _cnn; cuDNN 8: _ops_infer, _cnn_train, ...), which the library
// opens by name when first used: cuDNN 9's wheels find them beside it
// (RPATH $ORIGIN), cuDNN 8's and some system installs only on the library
// path. The RNN and attention library (_adv) is not needed. Done before
// the first handle, not at Load: a cuDNN found but not used costs no
// more than its small front library.
func preloadSubLibraries(lib string) {
	if !strings.ContainsRune(lib, '/') {
		return // found on the library path: so are its sub-libraries
	}
	base := filepath.Base(lib) // libcudnn.so.9
	suffix := strings.TrimPrefix(base, "libcudnn")
	all, _ := filepath.Glob(filepath.Join(filepath.Dir(lib), "libcudnn_*"+suffix))
	var m []string
	for _, p := range all {
		if !strings.HasPrefix(filepath.Base(p), "libcudnn_adv") {
			m = append(m, p)
		}
	}
	if len(m) == 0 {
		return
	}
	cs := make([]*C.char, len(m))
	for i, p := range m {
		cs[i] = C.CString(p)
	}
	arr := (**C.char)(C.malloc(C.size_t(len(cs)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	copy(unsafe.Slice(arr, len(cs)), cs)
	C.gc_preload(arr, C.int(len(cs)))
	C.free(unsafe.Pointer(arr))
	for _, c := range cs {
		C.free(unsafe.Pointer(c))
	}
}

func (l *Loaded) status(what string, r C.int) error {
	if r == 0 {
		return nil
	}
	return fmt.Errorf("cuDNN %s: %s (status %d)", what, C.GoString(C.gc_errstr(&l.c, r)), int(r))
}

// Handle is a cuDNN handle issuing on one stream, created in the CUDA
// context current on the calling thread (cuDNN uses the runtime, which
// takes the driver context current on the thread).
type Handle struct {
	l *Loaded
	h unsafe.Pointer
}

// NewHandle creates a handle issuing on stream (a CUstream), so that its
// calls are ordered with the stream's kernels and captured with them.
func (l *Loaded) NewHandle(stream unsafe.Pointer) (*Handle, error) {
	preloadOnce.Do(func() { preloadSubLibraries(l.Path) })
	var h unsafe.Pointer
	if err := l.status("create", C.gc_create(&l.c, &h)); err != nil {
		return nil, err
	}
	hd := &Handle{l: l, h: h}
	if err := l.status("set stream", C.gc_set_stream(&l.c, h, stream)); err != nil {
		hd.Destroy()
		return nil, err
	}
	return hd, nil
}

// SetStream makes the handle issue on stream (a CUstream) from now on.
func (h *Handle) SetStream(stream unsafe.Pointer) error {
	return h.l.status("set stream", C.gc_set_stream(&h.l.c, h.h, stream))
}

// Destroy releases the handle.
func (h *Handle) Destroy() {
	if h.h != nil {
		C.gc_destroy(&h.l.c, h.h)
		h.h = nil
	}
}

// Shape is one 2-D convolution (cross-correlation, as Caffe's): N images
// of C×H×W into K channels of OH×OW, NCHW, the channels in Groups groups,
// weights K×(C/Groups)×KH×KW.
type Shape struct {
	N, C, H, W, K, Groups          int
	KH, KW, SH, SW, PH, PW, DH, DW int
	OH, OW                         int
}

// cuDNN enum values (cudnn_graph.h / cudnn_ops.h of cuDNN 9; the same in 8).
const (
	dataFloat     = 0 // CUDNN_DATA_FLOAT
	dataDouble    = 1 // CUDNN_DATA_DOUBLE
	mathTensorOp  = 1 // CUDNN_TENSOR_OP_MATH: TF32 tensor cores for float data
	mathFMA       = 3 // CUDNN_FMA_MATH: no tensor cores, true fp32
	deterministic = 1 // CUDNN_DETERMINISTIC
)

// Conv is one Shape's descriptors and the algorithms chosen for it.
type Conv struct {
	l                    *Loaded
	h                    *Handle
	elem                 int
	x, y, w, conv        unsafe.Pointer
	fwd, bwdData, bwdFlt int
	// chosen says which directions' algorithms are chosen (ChooseFor):
	// a test net's convolutions never run backward, and never search for
	// backward algorithms.
	chosen       [3]bool
	maxWorkspace int
	// Workspace is the most device memory any of the chosen algorithms
	// needs, in bytes: the workspace passed to each call must be as large.
	Workspace int
	// Choice is how the algorithms are chosen (Auto resolved).
	Choice Choice
}

// Direction is one of a convolution's three computations.
type Direction int

const (
	ForwardDir Direction = iota
	BackwardDataDir
	BackwardFilterDir
)

func (d Direction) String() string {
	return [...]string{"forward", "backward data", "backward filter"}[d]
}

// Choice is how NewConv picks each direction's algorithm.
type Choice int

const (
	// Auto is Fastest for a convolution of at least AutoFindMACs
	// multiply-adds and Heuristic below: on an H100, cuDNN's trial runs
	// picked algorithms 1.2-1.7x faster than the heuristics' at LeNet
	// b4096 and CIFAR-10 quick b100 and b1000 (every convolution at least
	// 245M multiply-adds), but slower ones at LeNet b64 (18M and 102M),
	// where one algorithm's extra kernels cost more than its trial showed.
	Auto Choice = iota
	// Fastest runs every algorithm once on this shape (cuDNN's Find
	// searches, on memory cuDNN allocates for the search) and takes the
	// fastest that fits the workspace bound: what Caffe's cuDNN layers and
	// PyTorch's cudnn.benchmark aim at. Some of cuDNN's fastest
	// algorithms sum with atomics, so the last bits of a gradient may
	// differ from run to run.
	Fastest
	// Deterministic is Fastest among the algorithms cuDNN marks
	// deterministic (any algorithm if none fits): a run repeats bit for bit.
	Deterministic
	// Heuristic asks cuDNN's heuristics (the _v7 queries; nothing runs on
	// the device) and takes their first fitting answer, deterministic
	// ones first.
	Heuristic
)

// AutoFindMACs is the size, in multiply-adds, from which Auto runs
// cuDNN's trials.
const AutoFindMACs = 1 << 27

// MACs is the convolution's multiply-adds in one forward pass.
func (s Shape) MACs() int64 {
	return int64(s.N) * int64(s.K) * int64(s.OH) * int64(s.OW) * int64(s.C/max(s.Groups, 1)) * int64(s.KH) * int64(s.KW)
}

// ParseChoice reads a Choice's name: auto, fastest, deterministic or
// heuristic.
func ParseChoice(s string) (Choice, error) {
	for c := Auto; c <= Heuristic; c++ {
		if s == c.String() {
			return c, nil
		}
	}
	return 0, fmt.Errorf("%q is not a cuDNN algorithm choice (auto, fastest, deterministic or heuristic)", s)
}

func (c Choice) String() string {
	return [...]string{"auto", "fastest", "deterministic", "heuristic"}[c]
}

// NewConv describes s in elem-byte elements (4 or 8), TF32 tensor cores
// allowed for float data when tf32, and chooses the forward algorithm as
// choice says, within maxWorkspace bytes of workspace; ChooseFor chooses
// the backward ones when first needed. Call both before any stream
// capture (Fastest and Deterministic run kernels and wait for them).
func (h *Handle) NewConv(elem int, s Shape, tf32 bool, maxWorkspace int, choice Choice) (*Conv, error) {
	c, err := h.l.Describe(elem, s, tf32)
	if err != nil {
		return nil, err
	}
	c.h = h
	if choice == Auto {
		choice = Heuristic
		if s.MACs() >= AutoFindMACs {
			choice = Fastest
		}
	}
	c.Choice, c.maxWorkspace = choice, maxWorkspace
	if err := c.ChooseFor(ForwardDir); err != nil {
		c.Destroy()
		return nil, err
	}
	return c, nil
}

// Describe makes s's descriptors (no handle, nothing on the device) and
// checks that cuDNN computes the output size GoCaffe does: a Conv without
// algorithms, which NewConv completes.
func (l *Loaded) Describe(elem int, s Shape, tf32 bool) (*Conv, error) {
	c := &Conv{l: l, elem: elem}
	dt := C.int(dataFloat)
	if elem == 8 {
		dt = dataDouble
	}
	fail := func(err error) (*Conv, error) {
		c.Destroy()
		return nil, err
	}
	if err := l.status("create tensor descriptor", C.gc_create_tensor(&l.c, &c.x)); err != nil {
		return fail(err)
	}
	if err := l.status("create tensor descriptor", C.gc_create_tensor(&l.c, &c.y)); err != nil {
		return fail(err)
	}
	if err := l.status("create filter descriptor", C.gc_create_filter(&l.c, &c.w)); err != nil {
		return fail(err)
	}
	if err := l.status("create convolution descriptor", C.gc_create_conv(&l.c, &c.conv)); err != nil {
		return fail(err)
	}
	if err := l.status(fmt.Sprintf("input %d×%d×%d×%d", s.N, s.C, s.H, s.W), C.gc_set_tensor(&l.c, c.x, dt, C.int(s.N), C.int(s.C), C.int(s.H), C.int(s.W))); err != nil {
		return fail(err)
	}
	if err := l.status(fmt.Sprintf("output %d×%d×%d×%d", s.N, s.K, s.OH, s.OW), C.gc_set_tensor(&l.c, c.y, dt, C.int(s.N), C.int(s.K), C.int(s.OH), C.int(s.OW))); err != nil {
		return fail(err)
	}
	if err := l.status(fmt.Sprintf("filter %d×%d×%d×%d", s.K, s.C/s.Groups, s.KH, s.KW), C.gc_set_filter(&l.c, c.w, dt, C.int(s.K), C.int(s.C/s.Groups), C.int(s.KH), C.int(s.KW))); err != nil {
		return fail(err)
	}
	if err := l.status(fmt.Sprintf("convolution (pad %d×%d, stride %d×%d, dilation %d×%d)", s.PH, s.PW, s.SH, s.SW, s.DH, s.DW),
		C.gc_set_conv(&l.c, c.conv, C.int(s.PH), C.int(s.PW), C.int(s.SH), C.int(s.SW), C.int(s.DH), C.int(s.DW), dt)); err != nil {
		return fail(err)
	}
	if err := l.status(fmt.Sprintf("group count %d", s.Groups), C.gc_set_groups(&l.c, c.conv, C.int(s.Groups))); err != nil {
		return fail(err)
	}
	m := C.int(mathFMA)
	if tf32 && elem == 4 {
		m = mathTensorOp
	}
	if err := l.status("math type", C.gc_set_math(&l.c, c.conv, m)); err != nil {
		return fail(err)
	}
	var n, k, oh, ow C.int
	if err := l.status("output size", C.gc_out_dim(&l.c, c.conv, c.x, c.w, &n, &k, &oh, &ow)); err != nil {
		return fail(err)
	}
	if int(n) != s.N || int(k) != s.K || int(oh) != s.OH || int(ow) != s.OW {
		return fail(fmt.Errorf("cuDNN gives output %d×%d×%d×%d where GoCaffe computes %d×%d×%d×%d", n, k, oh, ow, s.N, s.K, s.OH, s.OW))
	}
	return c, nil
}

// Chosen reports whether dir's algorithm is chosen.
func (c *Conv) Chosen(dir Direction) bool { return c.chosen[dir] }

// ChooseFor chooses dir's algorithm, if not yet chosen, as c.Choice says
// (cuDNN's heuristics, or its trial runs of every algorithm) within the
// workspace bound, growing c.Workspace to what it needs.
func (c *Conv) ChooseFor(dir Direction) error {
	if c.chosen[dir] {
		return nil
	}
	l, h := c.l, c.h
	var perf [16]C.gc_perf
	var got C.int
	n, find := C.int(len(perf)), c.Choice != Heuristic
	var r C.int
	switch {
	case dir == ForwardDir && find:
		r = C.gc_find_fwd(&l.c, h.h, c.x, c.w, c.conv, c.y, n, &got, &perf[0])
	case dir == ForwardDir:
		r = C.gc_fwd_algo(&l.c, h.h, c.x, c.w, c.conv, c.y, n, &got, &perf[0])
	case dir == BackwardDataDir && find:
		r = C.gc_find_bwd_data(&l.c, h.h, c.w, c.y, c.conv, c.x, n, &got, &perf[0])
	case dir == BackwardDataDir:
		r = C.gc_bwd_data_algo(&l.c, h.h, c.w, c.y, c.conv, c.x, n, &got, &perf[0])
	case find:
		r = C.gc_find_bwd_filter(&l.c, h.h, c.x, c.y, c.conv, c.w, n, &got, &perf[0])
	default:
		r = C.gc_bwd_filter_algo(&l.c, h.h, c.x, c.y, c.conv, c.w, n, &got, &perf[0])
	}
	if err := l.status(dir.String()+" algorithm search", r); err != nil {
		return err
	}
	best := -1
	for pass := 0; pass < 2 && best < 0; pass++ {
		for i := 0; i < int(got); i++ {
			p := perf[i]
			if p.status == 0 && int(p.memory) <= c.maxWorkspace && (pass == 1 || c.Choice == Fastest || p.determinism == deterministic) {
				best = i
				break
			}
		}
	}
	if best < 0 {
		return fmt.Errorf("cuDNN has no %s algorithm for this shape within %d bytes of workspace (%d considered)", dir, c.maxWorkspace, int(got))
	}
	c.Workspace = max(c.Workspace, int(perf[best].memory))
	algo := int(perf[best].algo)
	switch dir {
	case ForwardDir:
		c.fwd = algo
	case BackwardDataDir:
		c.bwdData = algo
	default:
		c.bwdFlt = algo
	}
	c.chosen[dir] = true
	return nil
}

// Algorithms names the chosen algorithms (cuDNN's enum values).
func (c *Conv) Algorithms() string {
	algo := func(dir Direction, a int) string {
		if !c.chosen[dir] {
			return "not chosen yet"
		}
		return fmt.Sprint(a)
	}
	return fmt.Sprintf("forward %s, backward data %s, backward filter %s (%s), workspace %d bytes",
		algo(ForwardDir, c.fwd), algo(BackwardDataDir, c.bwdData), algo(BackwardFilterDir, c.bwdFlt), c.Choice, c.Workspace)
}

// Forward is y = alpha·conv(x, w) + beta·y on the handle's stream; ws is
// at least Workspace bytes of device memory.
func (c *Conv) Forward(alpha float64, x, w uintptr, beta float64, y, ws uintptr, wsBytes int) error {
	l := c.l
	return l.status("convolution forward", C.gc_fwd(&l.c, c.h.h, C.int(c.elem), C.double(alpha), c.x, C.size_t(x), c.w, C.size_t(w), c.conv,
		C.int(c.fwd), C.size_t(ws), C.size_t(wsBytes), C.double(beta), c.y, C.size_t(y)))
}

// BackwardData is dx = alpha·(the gradient of conv(x, w) by x, given dy)
// + beta·dx.
func (c *Conv) BackwardData(alpha float64, w, dy uintptr, beta float64, dx, ws uintptr, wsBytes int) error {
	l := c.l
	return l.status("convolution backward data", C.gc_bwd_data(&l.c, c.h.h, C.int(c.elem), C.double(alpha), c.w, C.size_t(w), c.y, C.size_t(dy), c.conv,
		C.int(c.bwdData), C.size_t(ws), C.size_t(wsBytes), C.double(beta), c.x, C.size_t(dx)))
}

// BackwardFilter is dw = alpha·(the gradient of conv(x, w) by w, given
// dy) + beta·dw.
func (c *Conv) BackwardFilter(alpha float64, x, dy uintptr, beta float64, dw, ws uintptr, wsBytes int) error {
	l := c.l
	return l.status("convolution backward filter", C.gc_bwd_filter(&l.c, c.h.h, C.int(c.elem), C.double(alpha), c.x, C.size_t(x), c.y, C.size_t(dy), c.conv,
		C.int(c.bwdFlt), C.size_t(ws), C.size_t(wsBytes), C.double(beta), c.w, C.size_t(dw)))
}

// Destroy releases the descriptors.
func (c *Conv) Destroy() {
	l := c.l
	if c.x != nil {
		C.gc_destroy_tensor(&l.c, c.x)
	}
	if c.y != nil {
		C.gc_destroy_tensor(&l.c, c.y)
	}
	if c.w != nil {
		C.gc_destroy_filter(&l.c, c.w)
	}
	if c.conv != nil {
		C.gc_destroy_conv(&l.c, c.conv)
	}
	c.x, c.y, c.w, c.conv = nil, nil, nil, nil
}
