// Softmax over the channel axis of (outer×channels×inner), the softmax
// loss and the accuracy. One thread per (outer, inner) position.
#include "common.cuh"

// softmax_at: yp[c·inner] = softmax over c of xp[c·inner], one position
// (max subtracted, then normalised by the sum of the exponentials).
template <typename T>
__device__ __forceinline__ void softmax_at(const T* __restrict__ xp, T* __restrict__ yp, int channels, int inner) {
  T m = xp[0];
  for (int c = 1; c < channels; c++) m = max(m, xp[c * inner]);
  T s = T(0);
  for (int c = 0; c < channels; c++) {
    const T e = dev_exp<T>(xp[c * inner] - m);
    yp[c * inner] = e;
    s += e;
  }
  for (int c = 0; c < channels; c++) yp[c * inner] /= s;
}

template <typename T>
__device__ void softmax_fwd_t(const T* __restrict__ x, T* __restrict__ y, int outer, int channels, int inner) {
  GRID_STRIDE(i, outer * inner) {
    const long off = (long)(i / inner) * channels * inner + i % inner;
    softmax_at(x + off, y + off, channels, inner);
  }
}

// softmax_rows: softmax_fwd for inner = 1 (a classifier's scores, rows ×
// channels), one warp per row: the lanes read the row together (coalesced)
// and combine its maximum and sum with shuffles, where one thread per row
// read 1000 scores alone (AlexNet b256: 0.67 ms).
template <typename T> __device__ void softmax_rows_t(const T* __restrict__ x, T* __restrict__ y, int rows, int channels) {
  const int lane = threadIdx.x & 31;
  const int warps = (gridDim.x * blockDim.x) >> 5;
  for (int r = (blockIdx.x * blockDim.x + threadIdx.x) >> 5; r < rows; r += warps) {
    const T* xr = x + (size_t)r * channels;
    T* yr = y + (size_t)r * channels;
    T m = xr[0];
    for (int c = lane; c < channels; c += 32) m = max(m, xr[c]);
    for (int o = 16; o > 0; o >>= 1) m = max(m, __shfl_xor_sync(0xffffffffu, m, o));
    T s = T(0);
    for (int c = lane; c < channels; c += 32) {
      const T e = dev_exp<T>(xr[c] - m);
      yr[c] = e;
      s += e;
    }
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    for (int c = lane; c < channels; c += 32) yr[c] /= s;
  }
}

// dx = (dy − Σ_c dy·y) ⊙ y; dx may alias dy.
template <typename T>
__device__ void softmax_bwd_t(const T* y, const T* dy, T* dx, int outer, int channels, int inner) {
  GRID_STRIDE(i, outer * inner) {
    const long base = (long)(i / inner) * channels * inner + i % inner;
    T d = T(0);
    for (int c = 0; c < channels; c++) d += dy[base + c * inner] * y[base + c * inner];
    for (int c = 0; c < channels; c++) dx[base + c * inner] = (dy[base + c * inner] - d) * y[base + c * inner];
  }
}

// softmax_loss_fwd: loss[0] = −Σ log max(prob[cls], FLT_MIN) / norm over
// the positions (outer×inner) whose class cls (int32) is not negative,
// summed in double. One block of 256 threads, fixed summation order.
template <typename T>
__device__ void softmax_loss_fwd_t(const T* prob, const int* cls, int outer, int channels, int inner, double norm,
                                   T* loss) {
  __shared__ double part[256];
  double s = 0;
  for (int i = threadIdx.x; i < outer * inner; i += blockDim.x) {
    const int l = cls[i];
    if (l < 0) continue;
    const int o = i / inner, in = i % inner;
    s -= log(max((double)prob[(long)o * channels * inner + (long)l * inner + in], 1.1754943508222875e-38));
  }
  const double total = block_sum(s, part);
  if (threadIdx.x == 0) loss[0] = T(total / norm);
}

// softmax_loss_bwd: dx = scale·(prob − onehot(cls)), 0 over the channels
// of a position whose class is negative. One thread per element.
template <typename T>
__device__ void softmax_loss_bwd_t(const T* prob, const int* cls, int outer, int channels, int inner, T scale, T* dx) {
  const int n = outer * channels * inner;
  GRID_STRIDE(i, n) {
    const int in = i % inner, c = (i / inner) % channels, o = i / (inner * channels);
    const int l = cls[o * inner + in];
    dx[i] = l < 0 ? T(0) : scale * (prob[i] - (c == l ? T(1) : T(0)));
  }
}

// accuracy_hit: whether class l is among the top_k scores of the position
// at xp (channels scores inner apart): a score equal to the class's, or
// NaN, counts against it, and a NaN class score is never right (the CPU's
// Accuracy layer).
template <typename T> __device__ bool accuracy_hit(const T* xp, int l, int channels, int inner, int top_k) {
  const T truth = xp[(long)l * inner];
  int better = truth != truth ? top_k : -1;  // the class counts itself
  for (int c = 0; c < channels && better < top_k; c++) {
    const T v = xp[(long)c * inner];
    if (v >= truth || v != v) better++;
  }
  return better < top_k;
}

// accuracy_cls: x (outer×channels×inner), cls (outer×inner int32, -1 where
// ignored): acc[0] = hits / labelled positions (0 if none); per_class
// (channels, or null) = the same share per class (0 for an absent class).
// One block of 256 threads; integer counts, so the result is exact.
template <typename T>
__device__ void accuracy_cls_t(const T* x, const int* cls, int outer, int channels, int inner, int top_k, T* acc,
                               T* per_class) {
  __shared__ int part[256];
  int h = 0, n = 0;
  for (int i = threadIdx.x; i < outer * inner; i += blockDim.x) {
    const int l = cls[i];
    if (l < 0) continue;
    n++;
    if (accuracy_hit(x + (long)(i / inner) * channels * inner + i % inner, l, channels, inner, top_k)) h++;
  }
  h = block_sum(h, part);
  n = block_sum(n, part);
  if (threadIdx.x == 0) acc[0] = n ? T((double)h / (double)n) : T(0);
  if (!per_class) return;
  for (int c = threadIdx.x; c < channels; c += blockDim.x) {
    int hc = 0, nc = 0;
    for (int i = 0; i < outer * inner; i++) {
      if (cls[i] != c) continue;
      nc++;
      if (accuracy_hit(x + (long)(i / inner) * channels * inner + i % inner, c, channels, inner, top_k)) hc++;
    }
    per_class[c] = nc ? T((double)hc / (double)nc) : T(0);
  }
}

// softmax_loss_acc: softmax_fwd, softmax_loss_fwd and, when acc is not
// null, the accuracy in one launch of one block of 256 threads (one thread
// per position, strided): prob = softmax(x) over the channels with
// softmax_fwd's operations in its order; loss[0] = −Σ log max(prob[cls],
// FLT_MIN) / norm over the positions whose class cls (int32) is not
// negative, summed in double as softmax_loss_fwd sums; acc[0] = the share
// of those positions whose class is among the top_k scores of x (not of
// prob, which may round distinct scores together), a score equal to the
// class's counting against it and a NaN score never right, as the CPU's
// Accuracy layer counts. Fixed summation order.
template <typename T>
__device__ void softmax_loss_acc_t(const T* __restrict__ x, T* __restrict__ prob, const int* __restrict__ cls,
                                   int outer, int channels, int inner, double norm, T* loss, int top_k, T* acc) {
  __shared__ double part[256];
  __shared__ int count[256];
  double s = 0;
  int h = 0, nv = 0;
  for (int i = threadIdx.x; i < outer * inner; i += blockDim.x) {
    const long off = (long)(i / inner) * channels * inner + i % inner;
    const T* xp = x + off;
    T* yp = prob + off;
    softmax_at(xp, yp, channels, inner);
    const int l = cls[i];
    if (l < 0) continue;
    s -= log(max((double)yp[(long)l * inner], 1.1754943508222875e-38));
    if (acc) {
      nv++;
      if (accuracy_hit(xp, l, channels, inner, top_k)) h++;
    }
  }
  s = block_sum(s, part);
  if (threadIdx.x == 0) loss[0] = T(s / norm);
  if (!acc) return;
  h = block_sum(h, count);
  nv = block_sum(nv, count);
  if (threadIdx.x == 0) acc[0] = nv ? T((double)h / (double)nv) : T(0);
}

KERNEL(accuracy_cls,
       (const T* x, const int* cls, int outer, int channels, int inner, int top_k, T* acc, T* per_class),
       (x, cls, outer, channels, inner, top_k, acc, per_class))
KERNEL(softmax_fwd, (const T* x, T* y, int outer, int channels, int inner), (x, y, outer, channels, inner))
KERNEL(softmax_rows, (const T* x, T* y, int rows, int channels), (x, y, rows, channels))
KERNEL(softmax_bwd, (const T* y, const T* dy, T* dx, int outer, int channels, int inner),
       (y, dy, dx, outer, channels, inner))
KERNEL(softmax_loss_fwd, (const T* prob, const int* cls, int outer, int channels, int inner, double norm, T* loss),
       (prob, cls, outer, channels, inner, norm, loss))
KERNEL(softmax_loss_bwd, (const T* prob, const int* cls, int outer, int channels, int inner, T scale, T* dx),
       (prob, cls, outer, channels, inner, scale, dx))
KERNEL(softmax_loss_acc,
       (const T* x, T* prob, const int* cls, int outer, int channels, int inner, double norm, T* loss, int top_k,
        T* acc),
       (x, prob, cls, outer, channels, inner, norm, loss, top_k, acc))
