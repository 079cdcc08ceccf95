// Tiled implicit-GEMM convolutions for small batches (one group): each of
// the three passes is one GEMM whose operands are gathered from the
// tensors as the tiles are staged, so no im2col columns are written.
//
//   forward          y (N,K,OH,OW)  : out[K × N·OH·OW]  = w[K × C·KH·KW] · cols(x)
//   data gradient    dx (N,C,H,W)   : out[C × N·H·W]    = wᵀ[C × K·KH·KW] · taps(dy)
//                    (the gather form: each input position sums the dy of
//                    the outputs whose window holds it; stride 1 only)
//   weight gradient  dw (K,C,KH,KW) += dy[K × N·OH·OW] · cols(x)ᵀ,
//                    the N·OH·OW reduction cut into gridDim.z slices of L
//                    positions, each slice's product written to a
//                    workspace and summed in slice order by conv_tile_sum
//                    (one slice: added to dw directly), so that the result
//                    repeats bit for bit.
// A forward pass or data gradient with too few tiles to keep the GPU busy
// may be split the same way over its reduction (gridDim.z shares of the
// steps, summed by conv_tile_sum into y or dx).
//
// Layouts (Caffe's): x N×C×H×W, w K×C×KH×KW, y N×K×OH×OW.
//
// A block computes a BM×BN tile of out with BM·BN/16 threads, each a 4×4
// micro-tile in registers; the reduction goes in steps of 8 through shared
// memory, double-buffered (the next step's values are loaded into
// registers while the current one is multiplied). The gather is driven by
// a table in dynamic shared memory, one int4 per reduction index (forward
// and data gradient: C·KH·KW or K·KH·KW entries; weight gradient: the
// slice's L positions), built at the block's start:
//   .x  the offset of the A operand's element (row 0),
//   .y  the offset of the B operand's element, to which a per-column base
//       is added,
//   .z, .w  the tap's (or position's) row and column offsets, added to the
//       column's own to test the bounds (padding reads zero).
// The Go side (kernels/cuda/conv_direct.go) picks BM, BN, the slices and
// splits, and checks that the table and tiles fit 48 KiB.
#include "common.cuh"

#define TILE_BK 8
#define TILE_PAD 4
// Far enough below zero that adding any offset stays negative: marks a
// column or a reduction index beyond the matrix.
#define TILE_OUT (-(1 << 29))

enum { TILE_FWD = 0, TILE_DATA = 1, TILE_FILTER = 2 };

template <typename T> __device__ __forceinline__ void load4(const T* p, T v[4]);
template <> __device__ __forceinline__ void load4<float>(const float* p, float v[4]) {
  const float4 q = *reinterpret_cast<const float4*>(p);
  v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
}
template <> __device__ __forceinline__ void load4<double>(const double* p, double v[4]) {
  const double2 q0 = reinterpret_cast<const double2*>(p)[0], q1 = reinterpret_cast<const double2*>(p)[1];
  v[0] = q0.x, v[1] = q0.y, v[2] = q1.x, v[3] = q1.y;
}

// conv_tile_MODE_BMxBN: grid (⌈cols/BN⌉, ⌈rows/BM⌉, slices), BM·BN/16
// threads, (table entries)·16 bytes of dynamic shared memory.
//   forward: a = w, b = x, out = y (overwritten);
//   data:    a = w, b = dy, out = dx (overwritten);
//   filter:  a = dy, b = x, out = dw (one slice: added to).
// With more than one slice, out is a workspace of slices × (out's size),
// overwritten with each slice's partial sums, which conv_tile_sum adds up:
// the weight gradient's slices are L positions each, the forward pass's
// and data gradient's an equal share of the reduction steps.
// L: the weight gradient's positions per slice (a multiple of 8).
template <typename T, int MODE, int BM, int BN>
__device__ __forceinline__ void conv_tile_t(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out,
                                            int N, int C, int H, int W, int K, int KH, int KW, int SH, int SW, int PH,
                                            int PW, int DH, int DW, int OH, int OW, int L) {
  constexpr int NT = BM * BN / 16;
  constexpr int LA = BM * TILE_BK / NT;  // A values a thread stages per step
  constexpr int LB = BN * TILE_BK / NT;  // B values
  static_assert(NT % TILE_BK == 0 && NT % BN == 0, "tile shape");
  __shared__ __align__(16) T As[2][TILE_BK][BM + TILE_PAD];
  __shared__ __align__(16) T Bs[2][TILE_BK][BN];
  extern __shared__ int4 tab[];

  const int KK = KH * KW, P = OH * OW, HW = H * W;
  // The GEMM: out[M × NC] = A[M × R] · B[R × NC]; strideA: A's row step.
  int M, NC, R, strideA, LY, LX;
  if (MODE == TILE_FWD) {
    M = K, NC = N * P, R = C * KK, strideA = R, LY = H, LX = W;
  } else if (MODE == TILE_DATA) {
    M = C, NC = N * HW, R = K * KK, strideA = KK, LY = OH, LX = OW;
  } else {
    M = K, NC = C * KK, R = L, strideA = P, LY = H, LX = W;
  }
  const int tid = threadIdx.x;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  // The steps [s0, s1) this block takes: all of them, or (forward and
  // data gradient split over gridDim.z) the z-th share.
  int s0 = 0, s1 = (R + TILE_BK - 1) / TILE_BK;
  if (MODE != TILE_FILTER && gridDim.z > 1) {
    const int per = (s1 + gridDim.z - 1) / gridDim.z;
    s0 = min(s1, (int)blockIdx.z * per), s1 = min(s1, s0 + per);
  }

  // The table, one entry per reduction index (padded to a whole step).
  for (int r = s0 * TILE_BK + tid; r < s1 * TILE_BK; r += NT) {
    int4 e = make_int4(-1, 0, TILE_OUT, TILE_OUT);
    if (MODE == TILE_FILTER) {
      const int q = blockIdx.z * L + r;
      if (r < L && q < N * P) {
        const int n = q / P, p = q - n * P, oy = p / OW, ox = p - oy * OW;
        const int iy = oy * SH - PH, ix = ox * SW - PW;
        e = make_int4(n * K * P + p, n * C * HW + iy * W + ix, iy, ix);
      }
    } else if (r < R) {
      const int c = r / KK, t = r - c * KK, ky = t / KW, kx = t - ky * KW;
      if (MODE == TILE_FWD)
        e = make_int4(r, c * HW + ky * DH * W + kx * DW, ky * DH, kx * DW);
      else  // c is the output channel k here
        e = make_int4(c * C * KK + t, c * P - ky * DH * OW - kx * DW, -ky * DH, -kx * DW);
    }
    tab[r] = e;
  }

  // The B column this thread stages, and its base offset and position.
  const int bcol = tid % BN;
  int cbase = 0, cy = TILE_OUT, cx = TILE_OUT;
  {
    const int j = n0 + bcol;
    if (j < NC) {
      if (MODE == TILE_FWD) {
        const int n = j / P, p = j - n * P, oy = p / OW, ox = p - oy * OW;
        cy = oy * SH - PH, cx = ox * SW - PW;
        cbase = n * C * HW + cy * W + cx;
      } else if (MODE == TILE_DATA) {
        const int n = j / HW, p = j - n * HW, iy = p / W, ix = p - iy * W;
        cy = iy + PH, cx = ix + PW;
        cbase = n * K * P + cy * OW + cx;
      } else {
        const int c = j / KK, t = j - c * KK, ky = t / KW, kx = t - ky * KW;
        cy = ky * DH, cx = kx * DW;
        cbase = c * HW + cy * W + cx;
      }
    }
  }
  const int brow = tid / BN;           // + i·(NT/BN)
  const int arow = tid % TILE_BK;      // the A value's reduction index in the step
  const int am = tid / TILE_BK;        // + i·(NT/8)
  __syncthreads();

  T ra[LA], rb[LB];
  auto fetch = [&](int s) {
    const int r0 = s * TILE_BK;
    {
      const int4 e = tab[r0 + arow];
#pragma unroll
      for (int i = 0; i < LA; i++) {
        const int m = m0 + am + i * (NT / TILE_BK);
        ra[i] = (e.x >= 0 && m < M) ? __ldg(a + e.x + m * strideA) : T(0);
      }
    }
#pragma unroll
    for (int i = 0; i < LB; i++) {
      const int4 e = tab[r0 + brow + i * (NT / BN)];
      const int y = e.z + cy, x = e.w + cx;
      rb[i] = ((unsigned)y < (unsigned)LY && (unsigned)x < (unsigned)LX) ? __ldg(b + e.y + cbase) : T(0);
    }
  };
  auto stage = [&](int buf) {
#pragma unroll
    for (int i = 0; i < LA; i++) As[buf][arow][am + i * (NT / TILE_BK)] = ra[i];
#pragma unroll
    for (int i = 0; i < LB; i++) Bs[buf][brow + i * (NT / BN)][bcol] = rb[i];
  };

  T acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) acc[i][j] = T(0);
  const int ty = tid / (BN / 4), tx = tid % (BN / 4);

  if (s0 < s1) {
    fetch(s0);
    stage(0);
  }
  __syncthreads();
  for (int s = s0; s < s1; s++) {
    const int buf = (s - s0) & 1;
    if (s + 1 < s1) fetch(s + 1);
#pragma unroll
    for (int k = 0; k < TILE_BK; k++) {
      T av[4], bv[4];
      load4(&As[buf][k][ty * 4], av);
      load4(&Bs[buf][k][tx * 4], bv);
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] += av[i] * bv[j];
    }
    if (s + 1 < s1) stage(buf ^ 1);
    __syncthreads();
  }

  // Write the 4×4 micro-tile; split over gridDim.z, the z-th share's
  // partial sums go to out + z·M·NC (in the output's layout).
  if (gridDim.z > 1) out += (long)blockIdx.z * M * NC;
#pragma unroll
  for (int j = 0; j < 4; j++) {
    const int col = n0 + tx * 4 + j;
    if (col >= NC) continue;
    T* o;
    int step;
    if (MODE == TILE_FWD) {
      const int n = col / P;
      o = out + (long)n * K * P + (col - n * P), step = P;
    } else if (MODE == TILE_DATA) {
      const int n = col / HW;
      o = out + (long)n * C * HW + (col - n * HW), step = HW;
    } else {
      o = out + col, step = NC;
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int m = m0 + ty * 4 + i;
      if (m >= M) continue;
      if (MODE == TILE_FILTER && gridDim.z == 1)
        o[(long)m * step] += acc[i][j];
      else
        o[(long)m * step] = acc[i][j];
    }
  }
}

#define TILE_KERNEL(mode, MODE, BM, BN)                                                                          \
  template <typename T>                                                                                          \
  __device__ void conv_tile_##mode##_##BM##x##BN##_t(const T* a, const T* b, T* out, int N, int C, int H, int W, \
                                                     int K, int KH, int KW, int SH, int SW, int PH, int PW,      \
                                                     int DH, int DW, int OH, int OW, int L) {                    \
    conv_tile_t<T, MODE, BM, BN>(a, b, out, N, C, H, W, K, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW, L);            \
  }                                                                                                              \
  KERNEL(conv_tile_##mode##_##BM##x##BN,                                                                         \
         (const T* a, const T* b, T* out, int N, int C, int H, int W, int K, int KH, int KW, int SH, int SW,     \
          int PH, int PW, int DH, int DW, int OH, int OW, int L),                                                \
         (a, b, out, N, C, H, W, K, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW, L))

#define TILE_KERNELS(BM, BN)                  \
  TILE_KERNEL(fwd, TILE_FWD, BM, BN)          \
  TILE_KERNEL(data, TILE_DATA, BM, BN)        \
  TILE_KERNEL(filter, TILE_FILTER, BM, BN)

TILE_KERNELS(64, 64)
TILE_KERNELS(64, 32)
TILE_KERNELS(32, 64)
TILE_KERNELS(32, 32)

// conv_tile_sum: out[i] (+)= Σ_s ws[s·n + i] for i < n (added to out when
// add, else overwriting it). Grid ⌈n/32⌉, 256 threads: thread (i mod 32,
// g) sums slices g, g+8, g+16, … in order, then the 8 sums are added in
// order of g: the order depends on the slice count alone, so the result
// repeats bit for bit.
template <typename T>
__device__ void conv_tile_sum_t(const T* __restrict__ ws, T* __restrict__ out, int slices, int n, int add) {
  __shared__ T part[8][32];
  const int tx = threadIdx.x & 31, g = threadIdx.x >> 5;
  const int i = blockIdx.x * 32 + tx;
  T s = T(0);
  if (i < n)
    for (int z = g; z < slices; z += 8) s += ws[(long)z * n + i];
  part[g][tx] = s;
  __syncthreads();
  if (g == 0 && i < n) {
    T t = part[0][tx];
#pragma unroll
    for (int k = 1; k < 8; k++) t += part[k][tx];
    out[i] = add ? out[i] + t : t;
  }
}
KERNEL(conv_tile_sum, (const T* ws, T* out, int slices, int n, int add), (ws, out, slices, n, add))
