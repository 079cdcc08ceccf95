// Elementwise operations, reductions, bias and ReLU. x, y, a, b: n elements.
#include "common.cuh"

template <typename T> __device__ void fill_t(T* x, int n, T v) { GRID_STRIDE(i, n) x[i] = v; }
template <typename T> __device__ void axpy_t(int n, T alpha, const T* x, T* y) { GRID_STRIDE(i, n) y[i] += alpha * x[i]; }
template <typename T> __device__ void axpby_t(int n, T alpha, const T* x, T beta, T* y) {
  GRID_STRIDE(i, n) y[i] = alpha * x[i] + beta * y[i];
}
template <typename T> __device__ void scal_t(int n, T alpha, T* x) { GRID_STRIDE(i, n) x[i] *= alpha; }
template <typename T> __device__ void shift_t(int n, T alpha, T* x) { GRID_STRIDE(i, n) x[i] += alpha; }
template <typename T> __device__ void mul_t(int n, const T* a, const T* b, T* y) { GRID_STRIDE(i, n) y[i] = a[i] * b[i]; }
template <typename T> __device__ void divide_t(int n, const T* a, const T* b, T* y) { GRID_STRIDE(i, n) y[i] = a[i] / b[i]; }

// eltwise_max: one bottom k of Eltwise MAX, x, y (n), mask (n int32):
// k == 0: y = x, mask = 0; else where x > y: y = x, mask = k.
template <typename T> __device__ void eltwise_max_t(int n, const T* x, T* y, int* mask, int k) {
  GRID_STRIDE(i, n) {
    if (k == 0) {
      y[i] = x[i];
      mask[i] = 0;
    } else if (x[i] > y[i]) {
      y[i] = x[i];
      mask[i] = k;
    }
  }
}

// mask_select: dy, dx (n), mask (n int32): dx = mask == k ? dy : 0.
template <typename T> __device__ void mask_select_t(int n, const T* dy, const int* mask, int k, T* dx) {
  GRID_STRIDE(i, n) dx[i] = mask[i] == k ? dy[i] : T(0);
}

// dot_t: dst[0] = Σ x·y (y == nullptr: Σ x), grid-stride, in a fixed
// order for a given grid (grid_sum): reproducible. ws and count are the
// device's reduction workspace.
template <typename T> __device__ void dot_t(int n, const T* x, const T* y, T* dst, T* ws, unsigned* count) {
  __shared__ T part[1024];
  T s = T(0);
  GRID_STRIDE(i, n) s += y ? x[i] * y[i] : x[i];
  grid_sum(s, part, ws, count, dst);
}

// add_bias: y (outer×channels×inner) += bias[c].
template <typename T> __device__ void add_bias_t(T* y, const T* bias, int outer, int channels, int inner) {
  const int n = outer * channels * inner;
  GRID_STRIDE(i, n) y[i] += bias[(i / inner) % channels];
}

// add_bias_relu: y (outer×channels×inner) = relu(y + bias[c]) with ReLU's
// negative slope: add_bias then relu_fwd in place in one pass (the same
// roundings: one addition, then a product by the slope where negative).
template <typename T>
__device__ void add_bias_relu_t(T* y, const T* bias, int outer, int channels, int inner, T slope) {
  const int n = outer * channels * inner;
  GRID_STRIDE(i, n) {
    const T v = y[i] + bias[(i / inner) % channels];
    y[i] = v > T(0) ? v : v * slope;
  }
}

// bias_grad: db[c] += Σ_{o,i} dy[o][c][i]. One block per channel.
template <typename T> __device__ void bias_grad_t(const T* dy, T* db, int outer, int channels, int inner) {
  __shared__ T part[256];
  const int c = blockIdx.x;
  T s = T(0);
  for (int j = threadIdx.x; j < outer * inner; j += blockDim.x) {
    const int o = j / inner, i = j % inner;
    s += dy[((long)o * channels + c) * inner + i];
  }
  const T total = block_sum(s, part);
  if (threadIdx.x == 0) db[c] += total;
}

// bias_grad_split: ws[z·channels + c] = Σ_{o in split z, i} dy[o][c][i],
// for few channels over a large batch (LeNet's conv1: 20 channels, 64×576
// values each). grid (channels, splits), block 256; gemm_split_sum then
// adds the splits into db in a fixed order.
template <typename T> __device__ void bias_grad_split_t(const T* dy, T* ws, int outer, int channels, int inner) {
  __shared__ T part[256];
  const int c = blockIdx.x, z = blockIdx.y, s = gridDim.y;
  const int o0 = (int)((long)z * outer / s), o1 = (int)((long)(z + 1) * outer / s);
  const int cnt = (o1 - o0) * inner;
  T acc = T(0);
  for (int j = threadIdx.x; j < cnt; j += blockDim.x) {
    const int o = o0 + j / inner, i = j % inner;
    acc += dy[((long)o * channels + c) * inner + i];
  }
  const T total = block_sum(acc, part);
  if (threadIdx.x == 0) ws[(long)z * channels + c] = total;
}

// scale_channels: y (outer×channels×inner) = x ⊙ s[c] (y may alias x).
template <typename T> __device__ void scale_channels_t(const T* x, const T* s, T* y, int outer, int channels, int inner) {
  const int n = outer * channels * inner;
  GRID_STRIDE(i, n) y[i] = x[i] * s[(i / inner) % channels];
}

// channel_dot: d[c] += Σ_o (Σ_i a[o][c][i]·b[o][c][i]), one block per
// channel; each (o, c) block's sum is reduced, then added in order of o
// (a fixed order: the result is reproducible).
template <typename T> __device__ void channel_dot_t(const T* a, const T* b, T* d, int outer, int channels, int inner) {
  __shared__ T part[256];
  const int c = blockIdx.x;
  T acc = T(0);
  for (int o = 0; o < outer; o++) {
    const long base = ((long)o * channels + c) * inner;
    T s = T(0);
    for (int i = threadIdx.x; i < inner; i += blockDim.x) s += a[base + i] * b[base + i];
    const T total = block_sum(s, part);
    if (threadIdx.x == 0) acc += total;
  }
  if (threadIdx.x == 0) d[c] += acc;
}

// add_trans: b (cols×rows) += aᵀ, a (rows×cols). One thread per element of b.
template <typename T> __device__ void add_trans_t(const T* a, int rows, int cols, T* b) {
  GRID_STRIDE(i, rows * cols) {
    const int r = i % rows, c = i / rows;
    b[i] += a[(long)r * cols + c];
  }
}

// act_fwd: y = f(x), n elements, computed in double and rounded to T as
// the CPU computes: a 0 sigmoid (0.5·tanh(0.5·x) + 0.5), 1 tanh.
template <typename T> __device__ void act_fwd_t(int a, int n, const T* x, T* y) {
  GRID_STRIDE(i, n) {
    const double v = (double)x[i];
    y[i] = a == 0 ? T(0.5 * tanh(0.5 * v) + 0.5) : T(tanh(v));
  }
}
// act_bwd: dx = dy·f'(x) through y: sigmoid dy·y·(1−y), tanh dy·(1−y²).
template <typename T> __device__ void act_bwd_t(int a, int n, const T* y, const T* dy, T* dx) {
  GRID_STRIDE(i, n) {
    const T v = y[i];
    dx[i] = a == 0 ? dy[i] * v * (T(1) - v) : dy[i] * (T(1) - v * v);
  }
}

template <typename T> __device__ void relu_fwd_t(int n, const T* x, T* y, T slope) {
  GRID_STRIDE(i, n) {
    const T v = x[i];
    y[i] = v > T(0) ? v : slope * v;
  }
}
template <typename T> __device__ void relu_bwd_t(int n, const T* x, const T* dy, T* dx, T slope) {
  GRID_STRIDE(i, n) dx[i] = x[i] > T(0) ? dy[i] : slope * dy[i];
}

KERNEL(fill, (T * x, int n, T v), (x, n, v))
KERNEL(axpy, (int n, T alpha, const T* x, T* y), (n, alpha, x, y))
KERNEL(axpby, (int n, T alpha, const T* x, T beta, T* y), (n, alpha, x, beta, y))
KERNEL(scal, (int n, T alpha, T* x), (n, alpha, x))
KERNEL(shift, (int n, T alpha, T* x), (n, alpha, x))
KERNEL(mul, (int n, const T* a, const T* b, T* y), (n, a, b, y))
KERNEL(divide, (int n, const T* a, const T* b, T* y), (n, a, b, y))
KERNEL(eltwise_max, (int n, const T* x, T* y, int* mask, int k), (n, x, y, mask, k))
KERNEL(mask_select, (int n, const T* dy, const int* mask, int k, T* dx), (n, dy, mask, k, dx))
KERNEL(dot, (int n, const T* x, const T* y, T* dst, T* ws, unsigned* count), (n, x, y, dst, ws, count))
KERNEL(add_bias, (T * y, const T* bias, int outer, int channels, int inner), (y, bias, outer, channels, inner))
KERNEL(add_bias_relu, (T * y, const T* bias, int outer, int channels, int inner, T slope),
       (y, bias, outer, channels, inner, slope))
KERNEL(bias_grad, (const T* dy, T* db, int outer, int channels, int inner), (dy, db, outer, channels, inner))
KERNEL(bias_grad_split, (const T* dy, T* ws, int outer, int channels, int inner), (dy, ws, outer, channels, inner))
KERNEL(scale_channels, (const T* x, const T* s, T* y, int outer, int channels, int inner), (x, s, y, outer, channels, inner))
KERNEL(channel_dot, (const T* a, const T* b, T* d, int outer, int channels, int inner), (a, b, d, outer, channels, inner))
KERNEL(add_trans, (const T* a, int rows, int cols, T* b), (a, rows, cols, b))
KERNEL(act_fwd, (int a, int n, const T* x, T* y), (a, n, x, y))
KERNEL(act_bwd, (int a, int n, const T* y, const T* dy, T* dx), (a, n, y, dy, dx))
KERNEL(relu_fwd, (int n, const T* x, T* y, T slope), (n, x, y, slope))
KERNEL(relu_bwd, (int n, const T* x, const T* dy, T* dx, T slope), (n, x, dy, dx, slope))
