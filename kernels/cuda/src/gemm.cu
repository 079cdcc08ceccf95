// GEMM, row-major as in the Go kernels:
//   c (m×n) = alpha · Σ_{p<batch} op(a_p) (m×k) · op(b_p) (k×n) + beta · c
// op(a) is a (m×k, lda) or aᵀ with a stored (k×m, lda); likewise b. a_p is
// at a + p·strideA, b_p at b + p·strideB (batch = 1 for a plain GEMM; the
// convolution's weight gradient sums over the images of a batch).
//
// Tiles: a block of 256 threads computes a 64×64 tile of c, each thread a
// 4×4 patch, stepping over k in slices of 16 staged in shared memory
// (padded by 4 to spread banks). Edge tiles are guarded, so any m, n, k.
#include "common.cuh"

#define TM 64
#define TN 64
#define TK 16

template <typename T>
__device__ void gemm_t(int ta, int tb, int m, int n, int k, T alpha, const T* __restrict__ a, int lda, long strideA,
                          const T* __restrict__ b, int ldb, long strideB, T beta, T* __restrict__ c, int ldc,
                          int batch) {
  const bool TA = ta != 0, TB = tb != 0;
  __shared__ T As[TK][TM + 4];
  __shared__ T Bs[TK][TN + 4];
  const int tid = threadIdx.x;
  const int row0 = blockIdx.y * TM, col0 = blockIdx.x * TN;
  const int tr = (tid / 16) * 4, tc = (tid % 16) * 4;
  T acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) acc[i][j] = T(0);

  for (int p = 0; p < batch; p++) {
    const T* ap = a + p * strideA;
    const T* bp = b + p * strideB;
    for (int k0 = 0; k0 < k; k0 += TK) {
      // Each thread loads 4 elements of the a slice (64×16) and 4 of b (16×64).
#pragma unroll
      for (int l = 0; l < 4; l++) {
        int e = tid + l * 256;  // 0..1023
        // a slice: As[kk][mm] = op(a)[row0+mm][k0+kk]
        int mm, kk;
        if (TA) { kk = e / TM; mm = e % TM; } else { mm = e / TK; kk = e % TK; }
        int gr = row0 + mm, gk = k0 + kk;
        T v = T(0);
        if (gr < m && gk < k) v = TA ? ap[(long)gk * lda + gr] : ap[(long)gr * lda + gk];
        As[kk][mm] = v;
        // b slice: Bs[kk][nn] = op(b)[k0+kk][col0+nn]
        int nn;
        if (TB) { nn = e / TK; kk = e % TK; } else { kk = e / TN; nn = e % TN; }
        int gc = col0 + nn;
        gk = k0 + kk;
        v = T(0);
        if (gc < n && gk < k) v = TB ? bp[(long)gc * ldb + gk] : bp[(long)gk * ldb + gc];
        Bs[kk][nn] = v;
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < TK; kk++) {
        T av[4], bv[4];
#pragma unroll
        for (int i = 0; i < 4; i++) av[i] = As[kk][tr + i];
#pragma unroll
        for (int j = 0; j < 4; j++) bv[j] = Bs[kk][tc + j];
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
          for (int j = 0; j < 4; j++) acc[i][j] += av[i] * bv[j];
      }
      __syncthreads();
    }
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    int r = row0 + tr + i;
    if (r >= m) continue;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      int cc = col0 + tc + j;
      if (cc >= n) continue;
      T* out = c + (long)r * ldc + cc;
      // beta == 0 overwrites (c may hold garbage or NaN, as BLAS allows).
      *out = beta == T(0) ? alpha * acc[i][j] : alpha * acc[i][j] + beta * *out;
    }
  }
}

// grid (ceil(n/64), ceil(m/64)), block 256.
KERNEL(gemm,
       (int ta, int tb, int m, int n, int k, T alpha, const T* a, int lda, long strideA, const T* b, int ldb,
        long strideB, T beta, T* c, int ldc, int batch),
       (ta, tb, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, batch))

// Strided batched GEMM: c_p = alpha · op(a_p) · op(b_p) + beta · c_p for
// p < batch, a_p at a + p·strideA, b_p at b + p·strideB, c_p at c +
// p·strideC (strideA 0 shares one a: the convolution's weights over the
// images of a batch). grid (ceil(n/64), ceil(m/64), batch), block 256.
template <typename T>
__device__ void gemm_batched_t(int ta, int tb, int m, int n, int k, T alpha, const T* __restrict__ a, int lda,
                               long strideA, const T* __restrict__ b, int ldb, long strideB, T beta,
                               T* __restrict__ c, int ldc, long strideC) {
  const long p = blockIdx.z;
  gemm_t<T>(ta, tb, m, n, k, alpha, a + p * strideA, lda, 0, b + p * strideB, ldb, 0, beta, c + p * strideC, ldc, 1);
}

KERNEL(gemm_batched,
       (int ta, int tb, int m, int n, int k, T alpha, const T* a, int lda, long strideA, const T* b, int ldb,
        long strideB, T beta, T* c, int ldc, long strideC),
       (ta, tb, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC))

// A sum over a batch split across the grid's third dimension, for sums
// whose 64×64 tiles alone would leave most multiprocessors idle (the
// convolution's weight gradient: LeNet's conv1, 20×25, is one tile over
// 64 images). grid (ceil(n/64), ceil(m/64), splits), block 256: split z
// sums images [z·batch/splits, (z+1)·batch/splits) into ws + z·m·n (m×n,
// leading dimension n); gemm_split_sum then adds the splits in a fixed
// order, so results do not vary from run to run as atomics would.
template <typename T>
__device__ void gemm_split_t(int ta, int tb, int m, int n, int k, const T* a, int lda, long strideA, const T* b,
                             int ldb, long strideB, int batch, T* ws) {
  const int z = blockIdx.z, s = gridDim.z;
  const int p0 = (int)((long)z * batch / s), p1 = (int)((long)(z + 1) * batch / s);
  gemm_t<T>(ta, tb, m, n, k, T(1), a + p0 * strideA, lda, strideA, b + p0 * strideB, ldb, strideB, T(0),
            ws + (long)z * m * n, n, p1 - p0);
}

KERNEL(gemm_split,
       (int ta, int tb, int m, int n, int k, const T* a, int lda, long strideA, const T* b, int ldb, long strideB,
        int batch, T* ws),
       (ta, tb, m, n, k, a, lda, strideA, b, ldb, strideB, batch, ws))

// c (m×n, ldc) = alpha · Σ_{z<splits} ws_z + beta · c, the splits of
// gemm_split added in order. grid-stride over m·n, block 256.
template <typename T>
__device__ void gemm_split_sum_t(int m, int n, int splits, const T* ws, T alpha, T beta, T* c, int ldc) {
  const long mn = (long)m * n;
  GRID_STRIDE(i, m * n) {
    T s = T(0);
    for (int z = 0; z < splits; z++) s += ws[z * mn + i];
    T* out = c + (long)(i / n) * ldc + i % n;
    *out = beta == T(0) ? alpha * s : alpha * s + beta * *out;
  }
}

KERNEL(gemm_split_sum, (int m, int n, int splits, const T* ws, T alpha, T beta, T* c, int ldc),
       (m, n, splits, ws, alpha, beta, c, ldc))

// TF32 tensor-core GEMM (float only, sm_80+), used instead of gemm_f32 and
// gemm_batched_f32 when the user allows TF32: the same arguments, grid
// (ceil(n/64), ceil(m/64), batch for the batched one) and block 256, the
// same 64×64 tile of c and k slices of 16 staged in shared memory (each
// element rounded to TF32 as it is staged, cvt.rna). The 8 warps split the
// tile 2 (rows) × 4 (columns), 32×16 each: 2×2 mma.sync.m16n8k8 per step
// of 8 along k, accumulating in fp32. Fragment layouts (PTX ISA, mma
// m16n8k8 .tf32; g = lane/4, t = lane%4): a0 (g, t), a1 (g+8, t), a2 (g,
// t+4), a3 (g+8, t+4); b0 (k t, n g), b1 (k t+4, n g); c0 (g, 2t), c1 (g,
// 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1).
#define TPAD 8  // rows of 72 words: the fragment reads (4 k rows × 8 columns) hit 32 banks

__device__ __forceinline__ unsigned to_tf32(float x) {
  unsigned r;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
#else
  r = __float_as_uint(x);
#endif
  return r;
}

__device__ void gemm_tf32_t(int ta, int tb, int m, int n, int k, float alpha, const float* __restrict__ a, int lda,
                            long strideA, const float* __restrict__ b, int ldb, long strideB, float beta,
                            float* __restrict__ c, int ldc, int batch) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const bool TA = ta != 0, TB = tb != 0;
  __shared__ unsigned As[TK][TM + TPAD];
  __shared__ unsigned Bs[TK][TN + TPAD];
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int g = lane / 4, t = lane % 4;
  const int wm = (warp / 4) * 32, wn = (warp % 4) * 16;  // the warp's 32×16 of the tile
  const int row0 = blockIdx.y * TM, col0 = blockIdx.x * TN;
  float acc[2][2][4];
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 2; j++)
#pragma unroll
      for (int q = 0; q < 4; q++) acc[i][j][q] = 0.f;

  for (int p = 0; p < batch; p++) {
    const float* ap = a + p * strideA;
    const float* bp = b + p * strideB;
    for (int k0 = 0; k0 < k; k0 += TK) {
#pragma unroll
      for (int l = 0; l < 4; l++) {
        int e = tid + l * 256;
        int mm, kk;
        if (TA) { kk = e / TM; mm = e % TM; } else { mm = e / TK; kk = e % TK; }
        int gr = row0 + mm, gk = k0 + kk;
        float v = 0.f;
        if (gr < m && gk < k) v = TA ? ap[(long)gk * lda + gr] : ap[(long)gr * lda + gk];
        As[kk][mm] = to_tf32(v);
        int nn;
        if (TB) { nn = e / TK; kk = e % TK; } else { kk = e / TN; nn = e % TN; }
        int gc = col0 + nn;
        gk = k0 + kk;
        v = 0.f;
        if (gc < n && gk < k) v = TB ? bp[(long)gc * ldb + gk] : bp[(long)gk * ldb + gc];
        Bs[kk][nn] = to_tf32(v);
      }
      __syncthreads();
#pragma unroll
      for (int k8 = 0; k8 < TK; k8 += 8) {
        unsigned af[2][4], bf[2][2];
#pragma unroll
        for (int i = 0; i < 2; i++) {
          const int r = wm + i * 16 + g;
          af[i][0] = As[k8 + t][r];
          af[i][1] = As[k8 + t][r + 8];
          af[i][2] = As[k8 + t + 4][r];
          af[i][3] = As[k8 + t + 4][r + 8];
        }
#pragma unroll
        for (int j = 0; j < 2; j++) {
          const int cc = wn + j * 8 + g;
          bf[j][0] = Bs[k8 + t][cc];
          bf[j][1] = Bs[k8 + t + 4][cc];
        }
#pragma unroll
        for (int i = 0; i < 2; i++)
#pragma unroll
          for (int j = 0; j < 2; j++)
            asm volatile(
                "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                "{%0,%1,%2,%3};\n"
                : "+f"(acc[i][j][0]), "+f"(acc[i][j][1]), "+f"(acc[i][j][2]), "+f"(acc[i][j][3])
                : "r"(af[i][0]), "r"(af[i][1]), "r"(af[i][2]), "r"(af[i][3]), "r"(bf[j][0]), "r"(bf[j][1]));
      }
      __syncthreads();
    }
  }
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 2; j++)
#pragma unroll
      for (int q = 0; q < 4; q++) {
        const int r = row0 + wm + i * 16 + g + (q >= 2 ? 8 : 0);
        const int cc = col0 + wn + j * 8 + 2 * t + (q & 1);
        if (r >= m || cc >= n) continue;
        float* out = c + (long)r * ldc + cc;
        *out = beta == 0.f ? alpha * acc[i][j][q] : alpha * acc[i][j][q] + beta * *out;
      }
#else
  __trap();  // the fatbin holds sm_80 and sm_90 only
#endif
}

// grid (ceil(n/64), ceil(m/64)), block 256: gemm_f32 on TF32 tensor cores.
extern "C" __global__ void gemm_tf32_f32(int ta, int tb, int m, int n, int k, float alpha, const float* a, int lda,
                                         long strideA, const float* b, int ldb, long strideB, float beta, float* c,
                                         int ldc, int batch) {
  gemm_tf32_t(ta, tb, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, batch);
}

// grid (ceil(n/64), ceil(m/64), batch), block 256: gemm_batched_f32 on TF32
// tensor cores.
extern "C" __global__ void gemm_batched_tf32_f32(int ta, int tb, int m, int n, int k, float alpha, const float* a,
                                                 int lda, long strideA, const float* b, int ldb, long strideB,
                                                 float beta, float* c, int ldc, long strideC) {
  const long p = blockIdx.z;
  gemm_tf32_t(ta, tb, m, n, k, alpha, a + p * strideA, lda, 0, b + p * strideB, ldb, 0, beta, c + p * strideC, ldc, 1);
}

// grid (ceil(n/64), ceil(m/64), splits), block 256: gemm_split_f32 on TF32
// tensor cores.
extern "C" __global__ void gemm_split_tf32_f32(int ta, int tb, int m, int n, int k, const float* a, int lda,
                                               long strideA, const float* b, int ldb, long strideB, int batch,
                                               float* ws) {
  const int z = blockIdx.z, s = gridDim.z;
  const int p0 = (int)((long)z * batch / s), p1 = (int)((long)(z + 1) * batch / s);
  gemm_tf32_t(ta, tb, m, n, k, 1.0f, a + p0 * strideA, lda, strideA, b + p0 * strideB, ldb, strideB, 0.0f,
              ws + (long)z * m * n, n, p1 - p0);
}
