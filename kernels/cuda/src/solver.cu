// Solver updates over the whole parameter buffer (all learnable blobs in
// one allocation), one pass each. n elements of diff, data, hist.
#include "common.cuh"

// SGD with momentum and L2 decay:
//   g = norm·diff + decay·data; hist = lr·g + mom·hist; diff = hist; data -= hist.
template <typename T>
__device__ void sgd_momentum_t(int n, T* diff, T* data, T* hist, T norm, T decay, T lr, T mom) {
  GRID_STRIDE(i, n) {
    const T g = norm * diff[i] + decay * data[i];
    const T h = lr * g + mom * hist[i];
    hist[i] = h;
    diff[i] = h;
    data[i] -= h;
  }
}

KERNEL(sgd_momentum, (int n, T* diff, T* data, T* hist, T norm, T decay, T lr, T mom),
       (n, diff, data, hist, norm, decay, lr, mom))
