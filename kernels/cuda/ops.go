//go:build cuda

package cuda

import (
	"unsafe"

	"github.com/gocaffe/gocaffe/kernels"
)

// Float is an element type the kernels exist for.
type Float interface{ ~float32 | ~float64 }

// Ops issues the kernels of element type T on a device. Pointers are
// device addresses of the first element each operation touches; shapes
// are as the kernels' comments in src/*.cu give them. Every operation is
// queued on the device's stream; errors are launch errors (asynchronous
// faults surface at the next Sync or Download).
type Ops[T Float] struct{ D *Device }

func isF64[T Float]() bool {
	var z T
	_, ok := any(z).(float64)
	return ok
}

// Size is the size of T in bytes.
func Size[T Float]() int {
	var z T
	return int(unsafe.Sizeof(z))
}

// At is p advanced by i elements of T.
func At[T Float](p Ptr, i int) Ptr { return p + Ptr(i*Size[T]()) }

func (o Ops[T]) name(k string) string {
	if isF64[T]() {
		return k + "_f64"
	}
	return k + "_f32"
}

func farg[T Float](v T) arg {
	if isF64[T]() {
		return f64arg(float64(v))
	}
	return f32arg(float32(v))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// gemmKernel is GoCaffe's GEMM kernel name: the TF32 tensor-core one for
// float32 when the device allows TF32 (src/gemm.cu), else the fp32/fp64 one.
func (o Ops[T]) gemmKernel(k string) string {
	if !isF64[T]() && o.D.TF32() {
		return k + "_tf32_f32"
	}
	return o.name(k)
}

// Gemm: c (m×n) = alpha·op(a)·op(b) + beta·c (row-major, leading dims).
func (o Ops[T]) Gemm(ta, tb bool, m, n, k int, alpha T, a Ptr, lda int, b Ptr, ldb int, beta T, c Ptr, ldc int) error {
	return o.GemmBatchSum(ta, tb, 1, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc)
}

// GemmBatchSum: c = alpha·Σ_{p<batch} op(a_p)·op(b_p) + beta·c, a_p at a +
// p·strideA elements, b_p at b + p·strideB. A plain GEMM (batch 1) goes to
// cuBLAS when the device uses it; a sum over a batch (the convolution's
// weight gradient) runs on GoCaffe's kernel (cuBLAS would need batch
// calls), split over the batch (gemm_split, then gemm_split_sum) when its
// tiles alone would leave multiprocessors idle.
func (o Ops[T]) GemmBatchSum(ta, tb bool, batch, m, n, k int, alpha T, a Ptr, lda, strideA int, b Ptr, ldb, strideB int, beta T, c Ptr, ldc int) error {
	if m == 0 || n == 0 {
		return nil
	}
	if batch == 1 {
		if ok, err := o.D.gemmBLAS(Size[T](), ta, tb, 1, m, n, k, float64(alpha), a, lda, 0, b, ldb, 0, float64(beta), c, ldc, 0); ok {
			return err
		}
		if s := o.D.gemmKSplits(m, n, k); s > 1 {
			// Too few tiles for the multiprocessors and a long k (an inner
			// product's output at a small batch): k cut into s equal slices,
			// summed as a batch of s products over the split path.
			kc := k / s
			strideA, strideB := kc, kc*ldb // a's columns, b's rows
			if ta {
				strideA = kc * lda // rows of the stored k×m
			}
			if tb {
				strideB = kc // columns of the stored n×k
			}
			batch, k = s, kc
			return o.GemmBatchSum(ta, tb, batch, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc)
		}
	}
	if s := o.D.gemmSplits(batch, m, n, Size[T]()); s > 1 {
		ws, err := o.D.splitWorkspace(s * m * n * Size[T]())
		if err != nil {
			return err
		}
		if err := o.D.launch3(o.gemmKernel("gemm_split"), (n+63)/64, (m+63)/64, s, 256,
			iarg(b2i(ta)), iarg(b2i(tb)), iarg(m), iarg(n), iarg(k), parg(a), iarg(lda), larg(strideA),
			parg(b), iarg(ldb), larg(strideB), iarg(batch), parg(ws)); err != nil {
			return err
		}
		return o.D.launch(o.name("gemm_split_sum"), o.D.grid1(m*n), 1, 256,
			iarg(m), iarg(n), iarg(s), parg(ws), farg(alpha), farg(beta), parg(c), iarg(ldc))
	}
	return o.D.launch(o.gemmKernel("gemm"), (n+63)/64, (m+63)/64, 256,
		iarg(b2i(ta)), iarg(b2i(tb)), iarg(m), iarg(n), iarg(k), farg(alpha), parg(a), iarg(lda), larg(strideA),
		parg(b), iarg(ldb), larg(strideB), farg(beta), parg(c), iarg(ldc), iarg(batch))
}

// maxGridZ is the largest third grid dimension a launch may have.
const maxGridZ = 65535

// GemmBatched: c_p = alpha·op(a_p)·op(b_p) + beta·c_p for p < batch, a_p at
// a + p·strideA elements, b_p at b + p·strideB, c_p at c + p·strideC; one
// launch per 65535 matrices.
func (o Ops[T]) GemmBatched(ta, tb bool, batch, m, n, k int, alpha T, a Ptr, lda, strideA int, b Ptr, ldb, strideB int, beta T, c Ptr, ldc, strideC int) error {
	if m == 0 || n == 0 {
		return nil
	}
	if ok, err := o.D.gemmBLAS(Size[T](), ta, tb, batch, m, n, k, float64(alpha), a, lda, strideA, b, ldb, strideB, float64(beta), c, ldc, strideC); ok {
		return err
	}
	for p := 0; p < batch; p += maxGridZ {
		z := min(maxGridZ, batch-p)
		if err := o.D.launch3(o.gemmKernel("gemm_batched"), (n+63)/64, (m+63)/64, z, 256,
			iarg(b2i(ta)), iarg(b2i(tb)), iarg(m), iarg(n), iarg(k), farg(alpha), parg(At[T](a, p*strideA)), iarg(lda), larg(strideA),
			parg(At[T](b, p*strideB)), iarg(ldb), larg(strideB), farg(beta), parg(At[T](c, p*strideC)), iarg(ldc), larg(strideC)); err != nil {
			return err
		}
	}
	return nil
}

// Geom is a convolution window.
type Geom struct{ KH, KW, SH, SW, PH, PW, DH, DW int }

// Im2col: col ((c·kh·kw)×(oh·ow)) from im (c×h×w).
func (o Ops[T]) Im2col(im Ptr, c, h, w int, g Geom, oh, ow int, col Ptr) error {
	return o.D.launch(o.name("im2col"), o.D.grid1(c*oh*ow), 1, 256, parg(im), iarg(c), iarg(h), iarg(w),
		iarg(g.KH), iarg(g.KW), iarg(g.SH), iarg(g.SW), iarg(g.PH), iarg(g.PW), iarg(g.DH), iarg(g.DW), iarg(oh), iarg(ow), parg(col))
}

// Col2im overwrites im (c×h×w) with the adjoint of Im2col applied to col.
func (o Ops[T]) Col2im(col Ptr, c, h, w int, g Geom, oh, ow int, im Ptr) error {
	return o.D.launch(o.name("col2im"), o.D.grid1(c*h*w), 1, 256, parg(col), iarg(c), iarg(h), iarg(w),
		iarg(g.KH), iarg(g.KW), iarg(g.SH), iarg(g.SW), iarg(g.PH), iarg(g.PW), iarg(g.DH), iarg(g.DW), iarg(oh), iarg(ow), parg(im))
}

// Copy: n elements from src to dst.
func (o Ops[T]) Copy(dst, src Ptr, n int) error { return o.D.CopyDtoD(dst, src, n*Size[T]()) }

// Fill sets n elements at x to v.
func (o Ops[T]) Fill(x Ptr, n int, v T) error {
	if n == 0 {
		return nil
	}
	return o.D.launch(o.name("fill"), o.D.grid1(n), 1, 256, parg(x), iarg(n), farg(v))
}

// Axpy: y += alpha·x.
func (o Ops[T]) Axpy(n int, alpha T, x, y Ptr) error {
	return o.D.launch(o.name("axpy"), o.D.grid1(n), 1, 256, iarg(n), farg(alpha), parg(x), parg(y))
}

// Axpby: y = alpha·x + beta·y.
func (o Ops[T]) Axpby(n int, alpha T, x Ptr, beta T, y Ptr) error {
	return o.D.launch(o.name("axpby"), o.D.grid1(n), 1, 256, iarg(n), farg(alpha), parg(x), farg(beta), parg(y))
}

// Scal: x *= alpha.
func (o Ops[T]) Scal(n int, alpha T, x Ptr) error {
	return o.D.launch(o.name("scal"), o.D.grid1(n), 1, 256, iarg(n), farg(alpha), parg(x))
}

// Shift: x += alpha.
func (o Ops[T]) Shift(n int, alpha T, x Ptr) error {
	return o.D.launch(o.name("shift"), o.D.grid1(n), 1, 256, iarg(n), farg(alpha), parg(x))
}

// Mul: y = a ⊙ b.
func (o Ops[T]) Mul(n int, a, b, y Ptr) error {
	return o.D.launch(o.name("mul"), o.D.grid1(n), 1, 256, iarg(n), parg(a), parg(b), parg(y))
}

// LRNForward: scale and y of Caffe's LRN over x (N×C×H×W, g's geometry;
// src/lrn.cu).
func (o Ops[T]) LRNForward(x, scale, y Ptr, g kernels.LRNGeom) error {
	total := g.N * g.C * g.H * g.W
	aos, k := g.Alpha/float64(g.Size), g.K
	if g.Across {
		npix := g.N * g.H * g.W
		return o.D.launch(o.name("lrn_across_fwd"), o.D.grid1(npix), 1, 256, iarg(npix), parg(x), parg(scale), parg(y),
			iarg(g.C), iarg(g.H*g.W), iarg(g.Size), farg(T(aos)), farg(T(k)), farg(T(-g.Beta)))
	}
	aos = g.Alpha / float64(g.Size*g.Size)
	return o.D.launch(o.name("lrn_within_fwd"), o.D.grid1(total), 1, 256, iarg(total), parg(x), parg(scale), parg(y),
		iarg(g.H), iarg(g.W), iarg(g.Size), farg(T(aos)), farg(T(-g.Beta)))
}

// LRNBackward: dx of Caffe's LRN from x, y, scale and dy (src/lrn.cu).
func (o Ops[T]) LRNBackward(x, y, scale, dy, dx Ptr, g kernels.LRNGeom) error {
	total := g.N * g.C * g.H * g.W
	cr := 2 * g.Alpha * g.Beta / float64(g.Size)
	if g.Across {
		npix := g.N * g.H * g.W
		return o.D.launch(o.name("lrn_across_bwd"), o.D.grid1(npix), 1, 256, iarg(npix), parg(x), parg(y), parg(scale), parg(dy), parg(dx),
			iarg(g.C), iarg(g.H*g.W), iarg(g.Size), farg(T(cr)), farg(T(-g.Beta)))
	}
	cr = 2 * g.Alpha * g.Beta / float64(g.Size*g.Size)
	return o.D.launch(o.name("lrn_within_bwd"), o.D.grid1(total), 1, 256, iarg(total), parg(x), parg(y), parg(scale), parg(dy), parg(dx),
		iarg(g.H), iarg(g.W), iarg(g.Size), farg(T(cr)), farg(T(-g.Beta)))
}

// DropoutForward: mask = scale where kept, 0 where dropped (Philox with
// the two-word key at key, threshold thr), y = x·mask (src/random.cu).
func (o Ops[T]) DropoutForward(n int, x, y, mask, key Ptr, thr uint32, scale T) error {
	return o.D.launch(o.name("dropout_fwd"), o.D.grid1((n+3)/4), 1, 256, iarg(n), parg(x), parg(y), parg(mask), parg(key), uint64(thr), farg(scale))
}

// Div: y = a / b.
func (o Ops[T]) Div(n int, a, b, y Ptr) error {
	return o.D.launch(o.name("divide"), o.D.grid1(n), 1, 256, iarg(n), parg(a), parg(b), parg(y))
}

// EltwiseMax: k == 0: y = x, mask = 0; else where x > y: y = x, mask = k.
func (o Ops[T]) EltwiseMax(n int, x, y, mask Ptr, k int) error {
	return o.D.launch(o.name("eltwise_max"), o.D.grid1(n), 1, 256, iarg(n), parg(x), parg(y), parg(mask), iarg(k))
}

// MaskSelect: dx = mask == k ? dy : 0.
func (o Ops[T]) MaskSelect(n int, dy, mask Ptr, k int, dx Ptr) error {
	return o.D.launch(o.name("mask_select"), o.D.grid1(n), 1, 256, iarg(n), parg(dy), parg(mask), iarg(k), parg(dx))
}

// BatchNormForward: the per-channel statistics (batchnorm_stats, one block
// per channel), then y = xnorm = (x − mean)·inv (batchnorm_apply).
func (o Ops[T]) BatchNormForward(x, y, xnorm Ptr, num, channels, spatial int, global bool, eps, maf float64, mean, inv, runMean, runVar, factor Ptr) error {
	if err := o.D.launch(o.name("batchnorm_stats"), channels, 1, 256, parg(x), iarg(num), iarg(channels), iarg(spatial), iarg(b2i(global)),
		f64arg(eps), f64arg(maf), parg(mean), parg(inv), parg(runMean), parg(runVar), parg(factor)); err != nil {
		return err
	}
	return o.D.launch(o.name("batchnorm_apply"), o.D.grid1(num*channels*spatial), 1, 256, parg(x), parg(y), parg(xnorm), iarg(num), iarg(channels), iarg(spatial), parg(mean), parg(inv))
}

// BatchNormBackward: dx from dy, xnorm and inv (batchnorm_bwd, one block
// per channel).
func (o Ops[T]) BatchNormBackward(dy, xnorm, inv, dx Ptr, num, channels, spatial int, global bool) error {
	return o.D.launch(o.name("batchnorm_bwd"), channels, 1, 256, parg(dy), parg(xnorm), parg(inv), parg(dx), iarg(num), iarg(channels), iarg(spatial), iarg(b2i(global)))
}

// ActivationForward: y = f(x), f by kernels.Activation a (0 sigmoid, 1 tanh).
func (o Ops[T]) ActivationForward(a, n int, x, y Ptr) error {
	return o.D.launch(o.name("act_fwd"), o.D.grid1(n), 1, 256, iarg(a), iarg(n), parg(x), parg(y))
}

// ActivationBackward: dx = dy·f'(x) through y.
func (o Ops[T]) ActivationBackward(a, n int, y, dy, dx Ptr) error {
	return o.D.launch(o.name("act_bwd"), o.D.grid1(n), 1, 256, iarg(a), iarg(n), parg(y), parg(dy), parg(dx))
}

// AccuracyCls: acc[0] = the share of the positions of x (outer×channels×
// inner) whose class cls (int32, -1 ignored) is among the topK scores, as
// the CPU's Accuracy layer counts; perClass (channels, or 0 for none) the
// share per class. One block.
func (o Ops[T]) AccuracyCls(x, cls Ptr, outer, channels, inner, topK int, acc, perClass Ptr) error {
	return o.D.launch(o.name("accuracy_cls"), 1, 1, 256, parg(x), parg(cls), iarg(outer), iarg(channels), iarg(inner),
		iarg(topK), parg(acc), parg(perClass))
}

// DotTo writes x·y into dst[0] (y == 0: Σ x) without synchronising.
func (o Ops[T]) DotTo(n int, x, y, dst Ptr) error {
	g, b := reduceGrid(n)
	return o.D.launch(o.name("dot"), g, 1, b, iarg(n), parg(x), parg(y), parg(dst), parg(o.D.redWS), parg(o.D.redCount))
}

// Dot returns x·y (y == 0: Σ x); it waits for the stream.
func (o Ops[T]) Dot(n int, x, y Ptr) (T, error) {
	if err := o.DotTo(n, x, y, o.D.scratch); err != nil {
		return 0, err
	}
	var v T
	err := o.D.Download(unsafe.Pointer(&v), o.D.scratch, Size[T]())
	return v, err
}

// AddBias: y (outer×channels×inner) += bias[c].
func (o Ops[T]) AddBias(y, bias Ptr, outer, channels, inner int) error {
	return o.D.launch(o.name("add_bias"), o.D.grid1(outer*channels*inner), 1, 256, parg(y), parg(bias), iarg(outer), iarg(channels), iarg(inner))
}

// AddBiasReLU: y (outer×channels×inner) = relu(y + bias[c]), negative
// values times slope: AddBias and ReLUForward in place, in one launch.
func (o Ops[T]) AddBiasReLU(y, bias Ptr, outer, channels, inner int, slope T) error {
	return o.D.launch(o.name("add_bias_relu"), o.D.grid1(outer*channels*inner), 1, 256, parg(y), parg(bias), iarg(outer), iarg(channels), iarg(inner), farg(slope))
}

// BiasGrad: db[c] += Σ_{o,i} dy[o][c][i].
func (o Ops[T]) BiasGrad(dy, db Ptr, outer, channels, inner int) error {
	if s := o.D.biasSplits(outer, channels, inner); s > 1 {
		ws, err := o.D.splitWorkspace(s * channels * Size[T]())
		if err != nil {
			return err
		}
		if err := o.D.launch(o.name("bias_grad_split"), channels, s, 256, parg(dy), parg(ws), iarg(outer), iarg(channels), iarg(inner)); err != nil {
			return err
		}
		return o.D.launch(o.name("gemm_split_sum"), o.D.grid1(channels), 1, 256,
			iarg(channels), iarg(1), iarg(s), parg(ws), farg(T(1)), farg(T(1)), parg(db), iarg(1))
	}
	return o.D.launch(o.name("bias_grad"), channels, 1, 256, parg(dy), parg(db), iarg(outer), iarg(channels), iarg(inner))
}

// ScaleChannels: y (outer×channels×inner) = x ⊙ s[c] (y may alias x).
func (o Ops[T]) ScaleChannels(x, s, y Ptr, outer, channels, inner int) error {
	return o.D.launch(o.name("scale_channels"), o.D.grid1(outer*channels*inner), 1, 256, parg(x), parg(s), parg(y), iarg(outer), iarg(channels), iarg(inner))
}

// ChannelDot: d[c] += Σ_{o,i} a[o][c][i]·b[o][c][i], one (o, c) sum at a
// time added in order of o.
func (o Ops[T]) ChannelDot(a, b, d Ptr, outer, channels, inner int) error {
	return o.D.launch(o.name("channel_dot"), channels, 1, 256, parg(a), parg(b), parg(d), iarg(outer), iarg(channels), iarg(inner))
}

// AddTrans: b (cols×rows) += aᵀ, a (rows×cols).
func (o Ops[T]) AddTrans(a Ptr, rows, cols int, b Ptr) error {
	return o.D.launch(o.name("add_trans"), o.D.grid1(rows*cols), 1, 256, parg(a), iarg(rows), iarg(cols), parg(b))
}

// ReLUForward: y = x > 0 ? x : slope·x.
func (o Ops[T]) ReLUForward(n int, x, y Ptr, slope T) error {
	return o.D.launch(o.name("relu_fwd"), o.D.grid1(n), 1, 256, iarg(n), parg(x), parg(y), farg(slope))
}

// ReLUBackward: dx = x > 0 ? dy : slope·dy.
func (o Ops[T]) ReLUBackward(n int, x, dy, dx Ptr, slope T) error {
	return o.D.launch(o.name("relu_bwd"), o.D.grid1(n), 1, 256, iarg(n), parg(x), parg(dy), parg(dx), farg(slope))
}

// Pool is a pooling window over planes of H×W giving OH×OW.
type Pool struct{ H, W, OH, OW, KH, KW, SH, SW, PH, PW int }

func (p Pool) args() []arg {
	return []arg{iarg(p.H), iarg(p.W), iarg(p.OH), iarg(p.OW), iarg(p.KH), iarg(p.KW), iarg(p.SH), iarg(p.SW), iarg(p.PH), iarg(p.PW)}
}

func (o Ops[T]) pool(k string, n int, first []arg, planes int, g Pool, last ...arg) error {
	a := append(append(append(first, iarg(planes)), g.args()...), last...)
	return o.D.launch(o.name(k), o.D.grid1(n), 1, 256, a...)
}

// MaxPoolForward: y (planes×OH×OW) and the argmax within each plane.
func (o Ops[T]) MaxPoolForward(x Ptr, planes int, g Pool, y, mask Ptr) error {
	return o.pool("maxpool_fwd", planes*g.OH*g.OW, []arg{parg(x)}, planes, g, parg(y), parg(mask))
}

// MaxPoolBackward overwrites dx with dy routed through mask: a thread per
// window when the windows tile the plane (LeNet's and VGG's 2×2 stride 2),
// else a thread per input element gathering from the windows over it.
func (o Ops[T]) MaxPoolBackward(dy, mask Ptr, planes int, g Pool, dx Ptr) error {
	if g.tiles() {
		return o.pool("maxpool_bwd_tiled", planes*g.OH*g.OW, []arg{parg(dy), parg(mask)}, planes, g, parg(dx))
	}
	return o.pool("maxpool_bwd", planes*g.H*g.W, []arg{parg(dy), parg(mask)}, planes, g, parg(dx))
}

// tiles reports whether g's windows cover the plane without overlap or
// padding: each input element lies in exactly one window.
func (g Pool) tiles() bool {
	return g.SH == g.KH && g.SW == g.KW && g.PH == 0 && g.PW == 0 && g.OH*g.KH >= g.H && g.OW*g.KW >= g.W &&
		(g.OH-1)*g.KH < g.H && (g.OW-1)*g.KW < g.W
}

// AvePoolForward averages each window (padding counts, as in Caffe).
func (o Ops[T]) AvePoolForward(x Ptr, planes int, g Pool, y Ptr) error {
	return o.pool("avepool_fwd", planes*g.OH*g.OW, []arg{parg(x)}, planes, g, parg(y))
}

// AvePoolBackward overwrites dx with dy spread over each window.
func (o Ops[T]) AvePoolBackward(dy Ptr, planes int, g Pool, dx Ptr) error {
	return o.pool("avepool_bwd", planes*g.H*g.W, []arg{parg(dy)}, planes, g, parg(dx))
}

// SoftmaxForward: y = softmax of x over channels.
func (o Ops[T]) SoftmaxForward(x, y Ptr, outer, channels, inner int) error {
	if inner == 1 && channels >= softmaxRowsMin {
		return o.D.launch(o.name("softmax_rows"), (outer+7)/8, 1, 256, parg(x), parg(y), iarg(outer), iarg(channels))
	}
	return o.D.launch(o.name("softmax_fwd"), o.D.grid1(outer*inner), 1, 256, parg(x), parg(y), iarg(outer), iarg(channels), iarg(inner))
}

// softmaxRowsMin is the fewest channels from which a softmax over rows
// (inner = 1) runs a warp per row (softmax_rows) instead of a thread.
const softmaxRowsMin = 64

// SoftmaxBackward: dx = (dy − Σ_c dy·y) ⊙ y.
func (o Ops[T]) SoftmaxBackward(y, dy, dx Ptr, outer, channels, inner int) error {
	return o.D.launch(o.name("softmax_bwd"), o.D.grid1(outer*inner), 1, 256, parg(y), parg(dy), parg(dx), iarg(outer), iarg(channels), iarg(inner))
}

// SoftmaxLossForward: loss[0] = −Σ log max(prob[cls], FLT_MIN) / norm over
// the positions whose int32 class cls is not negative.
func (o Ops[T]) SoftmaxLossForward(prob, cls Ptr, outer, channels, inner int, norm float64, loss Ptr) error {
	return o.D.launch(o.name("softmax_loss_fwd"), 1, 1, 256, parg(prob), parg(cls), iarg(outer), iarg(channels), iarg(inner),
		f64arg(norm), parg(loss))
}

// SoftmaxLossBackward: dx = scale·(prob − onehot(cls)), 0 where cls < 0.
func (o Ops[T]) SoftmaxLossBackward(prob, cls Ptr, outer, channels, inner int, scale T, dx Ptr) error {
	return o.D.launch(o.name("softmax_loss_bwd"), o.D.grid1(outer*channels*inner), 1, 256, parg(prob), parg(cls), iarg(outer),
		iarg(channels), iarg(inner), farg(scale), parg(dx))
}

// SoftmaxLossAccuracy: prob = softmax(x), loss[0] as SoftmaxLossForward and,
// with topK > 0, acc[0] = the top-k accuracy of x over the positions whose
// class is not negative, in one single-block launch (softmax_loss_acc).
func (o Ops[T]) SoftmaxLossAccuracy(x, prob, cls Ptr, outer, channels, inner int, normalizer float64, loss Ptr, topK int, acc Ptr) error {
	if topK <= 0 {
		acc = 0
	}
	return o.D.launch(o.name("softmax_loss_acc"), 1, 1, 256, parg(x), parg(prob), parg(cls), iarg(outer), iarg(channels),
		iarg(inner), f64arg(normalizer), parg(loss), iarg(topK), parg(acc))
}

// SGDMomentum over n elements: g = norm·diff + decay·data; hist = lr·g +
// mom·hist; diff = hist; data -= hist.
func (o Ops[T]) SGDMomentum(n int, diff, data, hist Ptr, norm, decay, lr, mom T) error {
	return o.D.launch(o.name("sgd_momentum"), o.D.grid1(n), 1, 256, iarg(n), parg(diff), parg(data), parg(hist),
		farg(norm), farg(decay), farg(lr), farg(mom))
}

// SumSq writes Σ x² over n elements, in double, into dst (8 bytes).
func (o Ops[T]) SumSq(n int, x, dst Ptr) error {
	g, b := reduceGrid(n)
	return o.D.launch(o.name("sumsq"), g, 1, b, iarg(n), parg(x), parg(dst), parg(o.D.redWS), parg(o.D.redCount))
}

// SolverUpdate is one solver step over the n elements of diff, data, h0 and
// h1 (h1 0 unless AdaDelta or Adam), nseg segments at offs (nseg+1 int32)
// with their lr_mult and decay_mult at mults (kernels.SolverRule). With
// clipping, the gradient's squared norm is summed into the device's
// scratch first.
func (o Ops[T]) SolverUpdate(n int, r kernels.SolverRule, offs, mults Ptr, nseg int, diff, data, h0, h1 Ptr) error {
	if n == 0 {
		return nil
	}
	if r.Clip >= 0 {
		if err := o.SumSq(n, diff, o.D.scratch); err != nil {
			return err
		}
	}
	return o.D.launch(o.name("solver_update"), o.D.grid1(n), 1, 256, o.SolverUpdateArgs(n, r, offs, mults, nseg, diff, data, h0, h1)...)
}

// SolverUpdateArgs are the solver_update kernel's arguments for SolverUpdate.
func (o Ops[T]) SolverUpdateArgs(n int, r kernels.SolverRule, offs, mults Ptr, nseg int, diff, data, h0, h1 Ptr) []arg {
	var sumsq Ptr
	if r.Clip >= 0 {
		sumsq = o.D.scratch
	}
	return []arg{iarg(n), iarg(int(r.Method)), iarg(b2i(r.L1)),
		f64arg(r.Norm), f64arg(r.Rate), f64arg(r.WeightDecay), f64arg(r.Momentum), f64arg(r.Momentum2), f64arg(r.Delta),
		f64arg(r.RMSDecay), f64arg(r.AdamCorr), f64arg(r.Clip), parg(sumsq), parg(offs), parg(mults), iarg(nseg),
		parg(diff), parg(data), parg(h0), parg(h1)}
}
