// Untiled direct convolutions (one group, any stride, padding and
// dilation): every output computed in one pass over the input, with no
// im2col columns and no GEMM, one thread per position and 8 channels.
// The tiled implicit GEMMs of conv_tile.cu replace them wherever they take
// the shape; these stay for the rest (the data gradient at stride ≠ 1,
// gather tables beyond 48 KiB) and as their check in the tests. The Go
// side (kernels/cuda/conv_direct.go) chooses between them, and times the
// direct kernels against cuDNN's choice at a plan's first use under auto.
//
// Layouts (Caffe's): x N×C×H×W, w K×C×KH×KW, y N×K×OH×OW.
#include "common.cuh"

// Output channels per block of the forward pass and input channels per
// block of the data gradient: the accumulators each thread keeps.
#define DIRECT_KB 8

// conv_direct_fwd: y = conv(x, w). Grid (N·⌈K/8⌉, ⌈OH·OW/blockDim⌉); a
// block stages the weights of 8 output channels in shared memory
// (C·KH·KW·8 values, the Go side checks they fit), and each thread
// computes one output position for those 8 channels.
template <typename T>
__device__ void conv_direct_fwd_t(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y, int C, int H,
                                  int W, int K, int KH, int KW, int SH, int SW, int PH, int PW, int DH, int DW, int OH,
                                  int OW) {
  extern __shared__ unsigned char smem[];
  T* ws = reinterpret_cast<T*>(smem);  // [c·KH·KW][8]
  const int kgroups = (K + DIRECT_KB - 1) / DIRECT_KB;
  const int n = blockIdx.x / kgroups, k0 = (blockIdx.x % kgroups) * DIRECT_KB;
  const int kdim = C * KH * KW;
  for (int i = threadIdx.x; i < kdim * DIRECT_KB; i += blockDim.x) {  // reads along w's rows
    const int r = i % kdim, j = i / kdim;
    ws[r * DIRECT_KB + j] = k0 + j < K ? w[(long)(k0 + j) * kdim + r] : T(0);
  }
  __syncthreads();
  const int p = blockIdx.y * blockDim.x + threadIdx.x;
  if (p >= OH * OW) return;
  const int oy = p / OW, ox = p % OW;
  T acc[DIRECT_KB];
#pragma unroll
  for (int j = 0; j < DIRECT_KB; j++) acc[j] = T(0);
  const T* xn = x + (long)n * C * H * W;
  for (int c = 0; c < C; c++) {
    const T* xc = xn + (long)c * H * W;
    for (int ky = 0; ky < KH; ky++) {
      const int iy = oy * SH - PH + ky * DH;
      if (iy < 0 || iy >= H) continue;
      const T* row = xc + iy * W;
      const T* wr = ws + ((c * KH + ky) * KW) * DIRECT_KB;
      for (int kx = 0; kx < KW; kx++) {
        const int ix = ox * SW - PW + kx * DW;
        if (ix < 0 || ix >= W) continue;
        const T v = __ldg(row + ix);
#pragma unroll
        for (int j = 0; j < DIRECT_KB; j++) acc[j] += v * wr[kx * DIRECT_KB + j];
      }
    }
  }
  T* yn = y + ((long)n * K + k0) * OH * OW + p;
#pragma unroll
  for (int j = 0; j < DIRECT_KB; j++)
    if (k0 + j < K) yn[(long)j * OH * OW] = acc[j];
}
KERNEL(conv_direct_fwd,
       (const T* x, const T* w, T* y, int C, int H, int W, int K, int KH, int KW, int SH, int SW, int PH, int PW, int DH,
        int DW, int OH, int OW),
       (x, w, y, C, H, W, K, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW))

// conv_direct_bwd_data: dx = the gradient of conv by x (overwritten). Grid
// (N·⌈C/8⌉, ⌈H·W/blockDim⌉); a block stages the weights of 8 input
// channels (K·KH·KW·8 values), and each thread sums, for one input
// position and those 8 channels, dy over the outputs whose window holds it.
template <typename T>
__device__ void conv_direct_bwd_data_t(const T* __restrict__ dy, const T* __restrict__ w, T* __restrict__ dx, int C,
                                       int H, int W, int K, int KH, int KW, int SH, int SW, int PH, int PW, int DH,
                                       int DW, int OH, int OW) {
  extern __shared__ unsigned char smem[];
  T* ws = reinterpret_cast<T*>(smem);  // [k·KH·KW][8]
  const int cgroups = (C + DIRECT_KB - 1) / DIRECT_KB;
  const int n = blockIdx.x / cgroups, c0 = (blockIdx.x % cgroups) * DIRECT_KB;
  const int kk = KH * KW;
  for (int i = threadIdx.x; i < K * kk * DIRECT_KB; i += blockDim.x) {  // reads along w's kernels
    const int q = i % kk, k = (i / kk) % K, j = i / (kk * K);
    ws[(k * kk + q) * DIRECT_KB + j] = c0 + j < C ? w[((long)k * C + c0 + j) * kk + q] : T(0);
  }
  __syncthreads();
  const int p = blockIdx.y * blockDim.x + threadIdx.x;
  if (p >= H * W) return;
  const int iy = p / W, ix = p % W;
  T acc[DIRECT_KB];
#pragma unroll
  for (int j = 0; j < DIRECT_KB; j++) acc[j] = T(0);
  const T* dyn = dy + (long)n * K * OH * OW;
  for (int ky = 0; ky < KH; ky++) {
    const int ty = iy + PH - ky * DH;  // = oy·SH
    if (ty < 0 || ty % SH != 0 || ty / SH >= OH) continue;
    const int oy = ty / SH;
    for (int kx = 0; kx < KW; kx++) {
      const int tx = ix + PW - kx * DW;
      if (tx < 0 || tx % SW != 0 || tx / SW >= OW) continue;
      const int o = oy * OW + tx / SW;
      const T* wq = ws + (ky * KW + kx) * DIRECT_KB;
      for (int k = 0; k < K; k++) {
        const T v = __ldg(dyn + (long)k * OH * OW + o);
#pragma unroll
        for (int j = 0; j < DIRECT_KB; j++) acc[j] += v * wq[k * kk * DIRECT_KB + j];
      }
    }
  }
  T* dxn = dx + ((long)n * C + c0) * H * W + p;
#pragma unroll
  for (int j = 0; j < DIRECT_KB; j++)
    if (c0 + j < C) dxn[(long)j * H * W] = acc[j];
}
KERNEL(conv_direct_bwd_data,
       (const T* dy, const T* w, T* dx, int C, int H, int W, int K, int KH, int KW, int SH, int SW, int PH, int PW,
        int DH, int DW, int OH, int OW),
       (dy, w, dx, C, H, W, K, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW))

// The most kernel columns conv_direct_bwd_filter keeps per thread.
#define DIRECT_MAXKW 8

// conv_direct_bwd_filter: dw += the gradient of conv by w. Grid K·C·KH,
// 256 threads: a block sums one kernel row (KW ≤ 8 weights) over every
// image and output position, each thread a strided share of them (the
// positions fastest, so that loads of x and dy are coalesced), then warp
// by warp in a fixed order: the result repeats bit for bit.
template <typename T>
__device__ void conv_direct_bwd_filter_t(const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dw, int N,
                                         int C, int H, int W, int K, int KH, int KW, int SH, int SW, int PH, int PW,
                                         int DH, int DW, int OH, int OW) {
  __shared__ T part[32][DIRECT_MAXKW];
  const int ky = blockIdx.x % KH, c = (blockIdx.x / KH) % C, k = blockIdx.x / (KH * C);
  const int P = OH * OW;
  T acc[DIRECT_MAXKW];
#pragma unroll
  for (int j = 0; j < DIRECT_MAXKW; j++) acc[j] = T(0);
  for (int t = threadIdx.x; t < N * P; t += blockDim.x) {
    const int n = t / P, p = t % P, oy = p / OW, ox = p % OW;
    const int iy = oy * SH - PH + ky * DH;
    if (iy < 0 || iy >= H) continue;
    const T g = __ldg(dy + ((long)n * K + k) * P + p);
    const T* row = x + (((long)n * C + c) * H + iy) * W;
    const int x0 = ox * SW - PW;
#pragma unroll
    for (int j = 0; j < DIRECT_MAXKW; j++) {
      const int ix = x0 + j * DW;
      if (j < KW && ix >= 0 && ix < W) acc[j] += g * __ldg(row + ix);
    }
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int j = 0; j < DIRECT_MAXKW; j++) {
    T v = acc[j];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if (lane == 0) part[warp][j] = v;
  }
  __syncthreads();
  if (threadIdx.x < KW) {
    T s = T(0);
    for (int i = 0; i < (int)(blockDim.x >> 5); i++) s += part[i][threadIdx.x];
    dw[(((long)k * C + c) * KH + ky) * KW + threadIdx.x] += s;
  }
}
KERNEL(conv_direct_bwd_filter,
       (const T* x, const T* dy, T* dw, int N, int C, int H, int W, int K, int KH, int KW, int SH, int SW, int PH,
        int PW, int DH, int DW, int OH, int OW),
       (x, dy, dw, N, C, H, W, K, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW))
