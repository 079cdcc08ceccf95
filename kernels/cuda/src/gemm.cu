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
