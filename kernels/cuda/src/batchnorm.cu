// Batch normalisation (Caffe's BatchNorm layer). x, y, xnorm, dy, dx:
// num×channels×spatial; mean, inv, run_mean, run_var: channels; factor: 1.
#include "common.cuh"

// batchnorm_stats: one block of 256 threads per channel. global: mean =
// run_mean·f, inv = 1/√(run_var·f + eps), f = 1/factor (0 if factor is 0).
// Else the batch mean and biased variance (two passes, summed in double),
// mean and inv from them, and the running statistics updated as Caffe's:
// run_mean = mean + maf·run_mean, run_var = m/(m−1)·var + maf·run_var;
// block 0 then sets factor = maf·factor + 1.
template <typename T>
__device__ void batchnorm_stats_t(const T* x, int num, int channels, int spatial, int global, double eps, double maf,
                                  T* mean, T* inv, T* run_mean, T* run_var, T* factor) {
  __shared__ double part[256];
  const int c = blockIdx.x;
  if (global) {
    if (threadIdx.x == 0) {
      double f = (double)factor[0];
      if (f != 0) f = 1 / f;
      mean[c] = T(f * (double)run_mean[c]);
      inv[c] = T(1 / sqrt(f * (double)run_var[c] + eps));
    }
    return;
  }
  const int m = num * spatial;
  double s = 0;
  for (int j = threadIdx.x; j < m; j += blockDim.x) s += (double)x[((long)(j / spatial) * channels + c) * spatial + j % spatial];
  const double mu = block_sum(s, part) / (double)m;
  double v2 = 0;
  for (int j = threadIdx.x; j < m; j += blockDim.x) {
    const double d = (double)x[((long)(j / spatial) * channels + c) * spatial + j % spatial] - mu;
    v2 += d * d;
  }
  const double var = block_sum(v2, part) / (double)m;
  if (threadIdx.x == 0) {
    mean[c] = T(mu);
    inv[c] = T(1 / sqrt(var + eps));
    const double corr = m > 1 ? (double)m / (double)(m - 1) : 1.0;
    run_mean[c] = T(mu + maf * (double)run_mean[c]);
    run_var[c] = T(corr * var + maf * (double)run_var[c]);
    if (c == 0) factor[0] = T((double)factor[0] * maf + 1);
  }
}

// batchnorm_apply: y = xnorm = (x − mean[c])·inv[c] (y may alias x).
template <typename T>
__device__ void batchnorm_apply_t(const T* x, T* y, T* xnorm, int num, int channels, int spatial, const T* mean, const T* inv) {
  GRID_STRIDE(i, num * channels * spatial) {
    const int c = (i / spatial) % channels;
    const T v = (x[i] - mean[c]) * inv[c];
    y[i] = v;
    xnorm[i] = v;
  }
}

// batchnorm_bwd: one block of 256 threads per channel. global: dx = dy·inv;
// else dx = (dy − mean(dy) − xnorm·mean(dy·xnorm))·inv, the means over num
// and spatial (summed in T, as the CPU sums). dx may alias dy: every
// element is read by the thread that writes it, after the sums.
template <typename T>
__device__ void batchnorm_bwd_t(const T* dy, const T* xnorm, const T* inv, T* dx, int num, int channels, int spatial, int global) {
  __shared__ T p1[256], p2[256];
  const int c = blockIdx.x, m = num * spatial;
  const T in = inv[c];
  T mdy = T(0), mdyy = T(0);
  if (!global) {
    T s1 = T(0), s2 = T(0);
    for (int j = threadIdx.x; j < m; j += blockDim.x) {
      const long k = ((long)(j / spatial) * channels + c) * spatial + j % spatial;
      s1 += dy[k];
      s2 += dy[k] * xnorm[k];
    }
    mdy = block_sum(s1, p1) / T(m);
    mdyy = block_sum(s2, p2) / T(m);
  }
  for (int j = threadIdx.x; j < m; j += blockDim.x) {
    const long k = ((long)(j / spatial) * channels + c) * spatial + j % spatial;
    dx[k] = global ? dy[k] * in : (dy[k] - mdy - xnorm[k] * mdyy) * in;
  }
}

KERNEL(batchnorm_stats,
       (const T* x, int num, int channels, int spatial, int global, double eps, double maf, T* mean, T* inv,
        T* run_mean, T* run_var, T* factor),
       (x, num, channels, spatial, global, eps, maf, mean, inv, run_mean, run_var, factor))
KERNEL(batchnorm_apply, (const T* x, T* y, T* xnorm, int num, int channels, int spatial, const T* mean, const T* inv),
       (x, y, xnorm, num, channels, spatial, mean, inv))
KERNEL(batchnorm_bwd, (const T* dy, const T* xnorm, const T* inv, T* dx, int num, int channels, int spatial, int global),
       (dy, xnorm, inv, dx, num, channels, spatial, global))
