// Pooling over planes (planes×h×w) into (planes×oh×ow), as Caffe's
// PoolingLayer: window [oy·sh−ph, +kh) clipped to the plane for max; for
// average the divisor counts padding (window clipped to h+ph first).
// mask holds the argmax's index within its plane (-1 if the window is empty).
#include "common.cuh"

template <typename T>
__device__ void maxpool_fwd_t(const T* __restrict__ x, int planes, int h, int w, int oh, int ow, int kh, int kw,
                              int sh, int sw, int ph, int pw, T* __restrict__ y, int* __restrict__ mask) {
  const int n = planes * oh * ow;
  GRID_STRIDE(i, n) {
    const int ox = i % ow, oy = (i / ow) % oh, p = i / (ow * oh);
    int y0 = oy * sh - ph, x0 = ox * sw - pw;
    const int y1 = min(y0 + kh, h), x1 = min(x0 + kw, w);
    y0 = max(y0, 0);
    x0 = max(x0, 0);
    const T* in = x + (long)p * h * w;
    T best = neg_flt_max<T>();
    int arg = -1;
    for (int yy = y0; yy < y1; yy++)
      for (int xx = x0; xx < x1; xx++) {
        const T v = in[yy * w + xx];
        if (v > best) { best = v; arg = yy * w + xx; }
      }
    y[i] = best;
    mask[i] = arg;
  }
}

// One thread per input element: sums dy over the outputs whose argmax it is.
template <typename T>
__device__ void maxpool_bwd_t(const T* __restrict__ dy, const int* __restrict__ mask, int planes, int h, int w,
                              int oh, int ow, int kh, int kw, int sh, int sw, int ph, int pw, T* __restrict__ dx) {
  const int n = planes * h * w;
  GRID_STRIDE(i, n) {
    const int xx = i % w, yy = (i / w) % h, p = i / (w * h);
    const int py0 = (yy + ph < kh) ? 0 : (yy + ph - kh) / sh + 1, py1 = min((yy + ph) / sh + 1, oh);
    const int px0 = (xx + pw < kw) ? 0 : (xx + pw - kw) / sw + 1, px1 = min((xx + pw) / sw + 1, ow);
    const long base = (long)p * oh * ow;
    const int self = yy * w + xx;
    T g = T(0);
    for (int py = py0; py < py1; py++)
      for (int px = px0; px < px1; px++)
        if (mask[base + py * ow + px] == self) g += dy[base + py * ow + px];
    dx[i] = g;
  }
}

// Windows that tile the plane (stride = kernel, no padding, the last ones
// clipped to it; Go checks they cover it): one thread per window writes
// the whole window, dy at the argmax and 0 elsewhere, since each input
// element lies in exactly one window. A quarter of the threads of
// maxpool_bwd at LeNet's 2×2, and no search of the windows around.
template <typename T>
__device__ void maxpool_bwd_tiled_t(const T* __restrict__ dy, const int* __restrict__ mask, int planes, int h,
                                    int w, int oh, int ow, int kh, int kw, int sh, int sw, int ph, int pw,
                                    T* __restrict__ dx) {
  const int n = planes * oh * ow;
  GRID_STRIDE(i, n) {
    const int ox = i % ow, oy = (i / ow) % oh, p = i / (ow * oh);
    const int y0 = oy * kh, x0 = ox * kw, y1 = min(y0 + kh, h), x1 = min(x0 + kw, w);
    const int m = mask[i];
    const T g = dy[i];
    T* out = dx + (long)p * h * w;
    for (int yy = y0; yy < y1; yy++)
      for (int xx = x0; xx < x1; xx++) {
        const int e = yy * w + xx;
        out[e] = e == m ? g : T(0);
      }
  }
}

template <typename T>
__device__ void avepool_fwd_t(const T* __restrict__ x, int planes, int h, int w, int oh, int ow, int kh, int kw,
                              int sh, int sw, int ph, int pw, T* __restrict__ y) {
  const int n = planes * oh * ow;
  GRID_STRIDE(i, n) {
    const int ox = i % ow, oy = (i / ow) % oh, p = i / (ow * oh);
    int y0 = oy * sh - ph, x0 = ox * sw - pw;
    int y1 = min(y0 + kh, h + ph), x1 = min(x0 + kw, w + pw);
    const int size = (y1 - y0) * (x1 - x0);
    y0 = max(y0, 0);
    x0 = max(x0, 0);
    y1 = min(y1, h);
    x1 = min(x1, w);
    const T* in = x + (long)p * h * w;
    T s = T(0);
    for (int yy = y0; yy < y1; yy++)
      for (int xx = x0; xx < x1; xx++) s += in[yy * w + xx];
    y[i] = s / T(size);
  }
}

template <typename T>
__device__ void avepool_bwd_t(const T* __restrict__ dy, int planes, int h, int w, int oh, int ow, int kh, int kw,
                              int sh, int sw, int ph, int pw, T* __restrict__ dx) {
  const int n = planes * h * w;
  GRID_STRIDE(i, n) {
    const int xx = i % w + pw, yy = (i / w) % h + ph, p = i / (w * h);
    const int py0 = (yy < kh) ? 0 : (yy - kh) / sh + 1, py1 = min(yy / sh + 1, oh);
    const int px0 = (xx < kw) ? 0 : (xx - kw) / sw + 1, px1 = min(xx / sw + 1, ow);
    const T* g = dy + (long)p * oh * ow;
    T s = T(0);
    for (int py = py0; py < py1; py++)
      for (int px = px0; px < px1; px++) {
        const int y0 = py * sh - ph, x0 = px * sw - pw;
        const int y1 = min(y0 + kh, h + ph), x1 = min(x0 + kw, w + pw);
        s += g[py * ow + px] / T((y1 - y0) * (x1 - x0));
      }
    dx[i] = s;
  }
}

#define POOL_GEOM int planes, int h, int w, int oh, int ow, int kh, int kw, int sh, int sw, int ph, int pw
#define POOL_ARGS planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw
KERNEL(maxpool_fwd, (const T* x, POOL_GEOM, T* y, int* mask), (x, POOL_ARGS, y, mask))
KERNEL(maxpool_bwd, (const T* dy, const int* mask, POOL_GEOM, T* dx), (dy, mask, POOL_ARGS, dx))
KERNEL(maxpool_bwd_tiled, (const T* dy, const int* mask, POOL_GEOM, T* dx), (dy, mask, POOL_ARGS, dx))
KERNEL(avepool_fwd, (const T* x, POOL_GEOM, T* y), (x, POOL_ARGS, y))
KERNEL(avepool_bwd, (const T* dy, POOL_GEOM, T* dx), (dy, POOL_ARGS, dx))
