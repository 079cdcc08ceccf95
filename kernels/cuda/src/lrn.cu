// Local response normalisation (Caffe's LRN layer), across channels
// (ACROSS_CHANNELS: AlexNet, CaffeNet, GoogLeNet) and within a channel
// (WITHIN_CHANNEL), as kernels/cpu/lrn.go computes them. x, scale, y, dy,
// dx are N×C×H×W. lrn_within_fwd and lrn_within_bwd run one thread per
// element, each summing its own window; lrn_across_fwd and lrn_across_bwd
// one thread per pixel walking the channels.
#include "common.cuh"

template <typename T> __device__ __forceinline__ T dev_pow(T x, T y);
template <> __device__ __forceinline__ float dev_pow<float>(float x, float y) { return powf(x, y); }
template <> __device__ __forceinline__ double dev_pow<double>(double x, double y) { return pow(x, y); }

// The window of element (r, q) within its channel: rows [r0, r1) and
// columns [q0, q1) (kernels.LRNGeom's SpatialWindow).
struct lrn_window {
  int r0, r1, q0, q1;
};

__device__ __forceinline__ lrn_window lrn_window_of(int size, int H, int W, int r, int q) {
  const int p = (size - 1) / 2;
  return lrn_window{max(r - p, 0), min(r + p + 1, H), max(q - p, 0), min(q + p + 1, W)};
}

// lrn_within_fwd: scale = 1 + aos·Σ_window x², y = x·scale^negBeta (aos is
// alpha over the window's element count).
template <typename T>
__device__ void lrn_within_fwd_t(int total, const T* x, T* scale, T* y, int H, int W, int size, T aos, T negBeta) {
  const int plane = H * W;
  GRID_STRIDE(idx, total) {
    const int i = idx % plane;
    const lrn_window w = lrn_window_of(size, H, W, i / W, i % W);
    const T* xp = x + (size_t)(idx / plane) * plane;
    T sum = 0;
    for (int r = w.r0; r < w.r1; r++)
      for (int q = w.q0; q < w.q1; q++) {
        const T v = xp[r * W + q];
        sum += v * v;
      }
    const T s = T(1) + aos * sum;
    scale[idx] = s;
    y[idx] = x[idx] * dev_pow(s, negBeta);
  }
}

// lrn_within_bwd: dx = dy·scale^negBeta − cr·x·Σ_window dy·y/scale (cr is
// 2·alpha·beta over the window's element count).
template <typename T>
__device__ void lrn_within_bwd_t(int total, const T* x, const T* y, const T* scale, const T* dy, T* dx, int H, int W,
                                 int size, T cr, T negBeta) {
  const int plane = H * W;
  GRID_STRIDE(idx, total) {
    const int i = idx % plane;
    const lrn_window w = lrn_window_of(size, H, W, i / W, i % W);
    const size_t base = (size_t)(idx / plane) * plane;
    T sum = 0;
    for (int r = w.r0; r < w.r1; r++)
      for (int q = w.q0; q < w.q1; q++) {
        const size_t j = base + r * W + q;
        sum += dy[j] * y[j] / scale[j];
      }
    dx[idx] = dy[idx] * dev_pow(scale[idx], negBeta) - cr * x[idx] * sum;
  }
}

// lrn_across_fwd and lrn_across_bwd are LRN across
// channels with one thread per (image, pixel) walking the channels with a
// running window sum (Caffe's LRNFillScale): each value is read once or
// twice instead of size times. AlexNet b256's LRN backward took 1.4 and
// 2.2 ms as one thread per element.
template <typename T>
__device__ void lrn_across_fwd_t(int npix, const T* x, T* scale, T* y, int C, int plane, int size, T aos, T k, T negBeta) {
  const int pre = (size - 1) / 2, post = size - pre - 1;
  GRID_STRIDE(t, npix) {
    const size_t base = (size_t)(t / plane) * C * plane + t % plane;
    const T* xp = x + base;
    T acc = 0;
    for (int j = 0; j < post && j < C; j++) acc += xp[(size_t)j * plane] * xp[(size_t)j * plane];
    for (int c = 0; c < C; c++) {
      if (c + post < C) {
        const T v = xp[(size_t)(c + post) * plane];
        acc += v * v;
      }
      if (c - pre - 1 >= 0) {
        const T v = xp[(size_t)(c - pre - 1) * plane];
        acc -= v * v;
      }
      const T s = k + aos * acc;
      const size_t i = base + (size_t)c * plane;
      scale[i] = s;
      y[i] = x[i] * dev_pow(s, negBeta);
    }
  }
}

template <typename T>
__device__ void lrn_across_bwd_t(int npix, const T* x, const T* y, const T* scale, const T* dy, T* dx, int C, int plane,
                                 int size, T cr, T negBeta) {
  const int pre = (size - 1) / 2, post = size - pre - 1;
  GRID_STRIDE(t, npix) {
    const size_t base = (size_t)(t / plane) * C * plane + t % plane;
    T acc = 0;
    for (int j = 0; j < post && j < C; j++) {
      const size_t i = base + (size_t)j * plane;
      acc += dy[i] * y[i] / scale[i];
    }
    for (int c = 0; c < C; c++) {
      if (c + post < C) {
        const size_t i = base + (size_t)(c + post) * plane;
        acc += dy[i] * y[i] / scale[i];
      }
      if (c - pre - 1 >= 0) {
        const size_t i = base + (size_t)(c - pre - 1) * plane;
        acc -= dy[i] * y[i] / scale[i];
      }
      const size_t i = base + (size_t)c * plane;
      dx[i] = dy[i] * dev_pow(scale[i], negBeta) - cr * x[i] * acc;
    }
  }
}

KERNEL(lrn_across_fwd, (int npix, const T* x, T* scale, T* y, int C, int plane, int size, T aos, T k, T negBeta),
       (npix, x, scale, y, C, plane, size, aos, k, negBeta))
KERNEL(lrn_across_bwd,
       (int npix, const T* x, const T* y, const T* scale, const T* dy, T* dx, int C, int plane, int size, T cr,
        T negBeta),
       (npix, x, y, scale, dy, dx, C, plane, size, cr, negBeta))
KERNEL(lrn_within_fwd, (int total, const T* x, T* scale, T* y, int H, int W, int size, T aos, T negBeta),
       (total, x, scale, y, H, W, size, aos, negBeta))
KERNEL(lrn_within_bwd,
       (int total, const T* x, const T* y, const T* scale, const T* dy, T* dx, int H, int W, int size, T cr, T negBeta),
       (total, x, y, scale, dy, dx, H, W, size, cr, negBeta))
