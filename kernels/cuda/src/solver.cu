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

// sumsq: dst[0] = Σ x² over n elements, accumulated in double, in a fixed
// order for a given grid (grid_sum; gradient clipping's norm).
template <typename T> __device__ void sumsq_t(int n, const T* x, double* dst, double* ws, unsigned* count) {
  __shared__ double part[1024];
  double s = 0;
  GRID_STRIDE(i, n) s += double(x[i]) * double(x[i]);
  grid_sum(s, part, ws, count, dst);
}

KERNEL(sumsq, (int n, const T* x, double* dst, double* ws, unsigned* count), (n, x, dst, ws, count))

template <typename T> __device__ __forceinline__ T dev_sqrt(T x);
template <> __device__ __forceinline__ float dev_sqrt<float>(float x) { return sqrtf(x); }
template <> __device__ __forceinline__ double dev_sqrt<double>(double x) { return sqrt(x); }

// solver_update: one step of Caffe's SGD family over n elements of the flat
// buffers diff, data, h0, h1 (kernels.SolverRule in Go):
//   g = diff · clip · norm (clip = clipv/‖diff‖ when sumsq is not null and
//   √sumsq[0] > clipv); g += decay·data (L2) or decay·sign(data) (l1),
//   decay = wd·decay_mult of the element's segment; then the method's update
//   u (0 SGD, 1 Nesterov, 2 AdaGrad, 3 RMSProp, 4 AdaDelta, 5 Adam) with
//   lr = rate·lr_mult; diff = u; data -= u.
// Segments: offs (nseg+1 ints, offs[nseg] = n); mults (2·nseg: lr_mult,
// decay_mult). Each thread finds its element's segment by binary search.
template <typename T>
__device__ void solver_update_t(int n, int method, int l1, double norm, double rate, double wd, double mom_, double mom2_,
                                double delta_, double rms_, double corr, double clipv, const double* sumsq,
                                const int* offs, const T* mults, int nseg, T* diff, T* data, T* h0, T* h1) {
  T clip = T(1);
  if (sumsq != nullptr) {
    const double nrm = sqrt(sumsq[0]);
    if (nrm > clipv) clip = T(clipv / nrm);
  }
  const T mom = T(mom_), mom2 = T(mom2_), delta = T(delta_), rms = T(rms_);
  GRID_STRIDE(i, n) {
    int lo = 0, hi = nseg - 1;
    while (lo < hi) {
      const int mid = (lo + hi + 1) >> 1;
      if (offs[mid] <= i) lo = mid; else hi = mid - 1;
    }
    const T lr = T(rate * double(mults[2 * lo]));
    const T decay = T(wd * double(mults[2 * lo + 1]));
    T g = diff[i];
    if (clip != T(1)) g *= clip;
    if (norm != 1.0) g *= T(norm);
    if (decay != T(0)) {
      const T w = data[i];
      if (!l1) g += decay * w;
      else if (w > T(0)) g += decay;
      else if (w < T(0)) g -= decay;
    }
    T u;
    switch (method) {
    case 0: u = lr * g + mom * h0[i]; h0[i] = u; break;
    case 1: {
      const T prev = h0[i];
      const T v = lr * g + mom * prev;
      h0[i] = v;
      u = (T(1) + mom) * v - mom * prev;
      break;
    }
    case 2: {
      const T s = h0[i] + g * g;
      h0[i] = s;
      u = lr * (g / (dev_sqrt(s) + delta));
      break;
    }
    case 3: {
      const T s = (T(1) - rms) * (g * g) + rms * h0[i];
      h0[i] = s;
      u = lr * (g / (dev_sqrt(s) + delta));
      break;
    }
    case 4: {
      const T sg = (T(1) - mom) * (g * g) + mom * h0[i];
      h0[i] = sg;
      const T v = g * dev_sqrt((h1[i] + delta) / (sg + delta));
      h1[i] = (T(1) - mom) * (v * v) + mom * h1[i];
      u = lr * v;
      break;
    }
    default: {
      const T m = (T(1) - mom) * g + mom * h0[i];
      const T v = (T(1) - mom2) * (g * g) + mom2 * h1[i];
      h0[i] = m;
      h1[i] = v;
      u = (lr * T(corr)) * (m / (dev_sqrt(v) + delta));
      break;
    }
    }
    diff[i] = u;
    data[i] -= u;
  }
}

KERNEL(solver_update,
       (int n, int method, int l1, double norm, double rate, double wd, double mom, double mom2, double delta, double rms,
        double corr, double clipv, const double* sumsq, const int* offs, const T* mults, int nseg, T* diff, T* data, T* h0,
        T* h1),
       (n, method, l1, norm, rate, wd, mom, mom2, delta, rms, corr, clipv, sumsq, offs, mults, nseg, diff, data, h0, h1))
