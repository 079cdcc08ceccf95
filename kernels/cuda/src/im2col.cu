// Convolution lowering, as Caffe's im2col_gpu/col2im_gpu.
//   im  (c×h×w), col ((c·kh·kw)×(oh·ow)); geometry kh,kw stride sh,sw pad ph,pw
//   dilation dh,dw. Padding reads as 0.
#include "common.cuh"

// One thread per (channel, output pixel): writes kh·kw values of col.
template <typename T>
__device__ void im2col_t(const T* __restrict__ im, int c, int h, int w, int kh, int kw, int sh, int sw, int ph,
                         int pw, int dh, int dw, int oh, int ow, T* __restrict__ col) {
  const int n = c * oh * ow;
  GRID_STRIDE(i, n) {
    const int ox = i % ow, oy = (i / ow) % oh, ch = i / (ow * oh);
    const int y0 = oy * sh - ph, x0 = ox * sw - pw;
    T* out = col + ((long)ch * kh * kw) * (oh * ow) + oy * ow + ox;
    const T* in = im + (long)ch * h * w;
    for (int ky = 0; ky < kh; ky++) {
      const int y = y0 + ky * dh;
      for (int kx = 0; kx < kw; kx++) {
        const int x = x0 + kx * dw;
        *out = (y >= 0 && x >= 0 && y < h && x < w) ? in[y * w + x] : T(0);
        out += oh * ow;
      }
    }
  }
}

// col2im overwrites im: one thread per image element gathers every column
// entry that reads it (deterministic, no atomics).
template <typename T>
__device__ void col2im_t(const T* __restrict__ col, int c, int h, int w, int kh, int kw, int sh, int sw, int ph,
                         int pw, int dh, int dw, int oh, int ow, T* __restrict__ im) {
  const int n = c * h * w;
  GRID_STRIDE(i, n) {
    const int x = i % w + pw, y = (i / w) % h + ph, ch = i / (w * h);
    T v = T(0);
    for (int ky = 0; ky < kh; ky++) {
      const int ty = y - ky * dh;
      if (ty < 0 || ty % sh != 0) continue;
      const int oy = ty / sh;
      if (oy >= oh) continue;
      for (int kx = 0; kx < kw; kx++) {
        const int tx = x - kx * dw;
        if (tx < 0 || tx % sw != 0) continue;
        const int ox = tx / sw;
        if (ox >= ow) continue;
        v += col[(((long)ch * kh + ky) * kw + kx) * (oh * ow) + oy * ow + ox];
      }
    }
    im[i] = v;
  }
}

KERNEL(im2col,
       (const T* im, int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh,
        int ow, T* col),
       (im, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, col))
KERNEL(col2im,
       (const T* col, int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh,
        int ow, T* im),
       (col, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, im))
