// Shared helpers of GoCaffe's CUDA kernels. Every kernel exists in a float
// (_f32) and a double (_f64) instance with C linkage, so that the Go side
// finds it by name in the loaded module (kernels/cuda/module.go).
#pragma once

// Sizes are int: GoCaffe's blobs hold fewer than 2^31 elements.
#define GRID_STRIDE(i, n) \
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += blockDim.x * gridDim.x)

// KERNEL(name, (params using T), (args)) defines name_f32 and name_f64, each
// calling the device template name##_t<T>.
#define KERNEL(name, PARAMS, ARGS)                                                        \
  namespace name##_f32_ns {                                                             \
  typedef float T;                                                                      \
  extern "C" __global__ void name##_f32 PARAMS { name##_t<T> ARGS; }                    \
  }                                                                                     \
  namespace name##_f64_ns {                                                             \
  typedef double T;                                                                     \
  extern "C" __global__ void name##_f64 PARAMS { name##_t<T> ARGS; }                    \
  }

// block_sum: Σ v over the block's threads (blockDim.x a power of two, sh
// one entry per thread), pairwise in a fixed order so that the result is
// reproducible. Every thread gets the sum, and sh may be reused after it.
// All threads of the block must call it.
template <typename V> __device__ __forceinline__ V block_sum(V v, V* sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
    __syncthreads();
  }
  const V s = sh[0];
  __syncthreads();
  return s;
}

// grid_sum: Σ v over every thread of the grid, written to *dst, in a fixed
// order (so the result repeats bit for bit): each block's block_sum goes
// to ws[blockIdx.x], and the last block to finish sums ws in block order.
// count (zero between launches) counts the blocks done; atomicInc wraps
// it back to zero for the next launch. ws holds gridDim.x values. One
// block writes its sum straight to *dst. All threads must call it.
template <typename V> __device__ __forceinline__ void grid_sum(V v, V* sh, V* ws, unsigned* count, V* dst) {
  const V s = block_sum(v, sh);
  if (gridDim.x == 1) {
    if (threadIdx.x == 0) *dst = s;
    return;
  }
  __shared__ bool last;
  if (threadIdx.x == 0) {
    ws[blockIdx.x] = s;
    __threadfence();
    last = atomicInc(count, gridDim.x - 1) == gridDim.x - 1;
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  V t = V(0);
  for (int i = threadIdx.x; i < (int)gridDim.x; i += blockDim.x) t += ((volatile V*)ws)[i];
  const V total = block_sum(t, sh);
  if (threadIdx.x == 0) *dst = total;
}

// The lowest value max pooling starts from (Caffe's -FLT_MAX in both types).
template <typename T> __device__ __forceinline__ T neg_flt_max() { return T(-3.402823466e+38); }

template <typename T> __device__ __forceinline__ T dev_exp(T x);
template <> __device__ __forceinline__ float dev_exp<float>(float x) { return expf(x); }
template <> __device__ __forceinline__ double dev_exp<double>(double x) { return exp(x); }
template <typename T> __device__ __forceinline__ T dev_log(T x);
template <> __device__ __forceinline__ float dev_log<float>(float x) { return logf(x); }
template <> __device__ __forceinline__ double dev_log<double>(double x) { return log(x); }
