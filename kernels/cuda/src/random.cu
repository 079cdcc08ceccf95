// Random draws on the device: Philox4x32-10, the counter-based generator
// whose host reference is kernels.Philox4x32 (kernels/philox.go), and
// Dropout's mask drawn with it.
#include "common.cuh"

__device__ __forceinline__ uint4 philox4x32_10(uint4 c, uint2 k) {
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k.x += 0x9E3779B9u;
      k.y += 0xBB67AE85u;
    }
    const unsigned lo0 = 0xD2511F53u * c.x, hi0 = __umulhi(0xD2511F53u, c.x);
    const unsigned lo1 = 0xCD9E8D57u * c.z, hi1 = __umulhi(0xCD9E8D57u, c.z);
    c = make_uint4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
  }
  return c;
}

// dropout_fwd: x, y, mask (n). One thread per group of 4 elements: group
// g's Philox draw with counter (g, 0, 0, 0) and key (key[0], key[1]) from
// device memory; element 4g+j is kept (mask = scale, y = x·scale) when the
// top 24 bits of word j are at least thr, else dropped (mask = y = 0). y
// may alias x.
template <typename T>
__device__ void dropout_fwd_t(int n, const T* x, T* y, T* mask, const int* key, unsigned thr, T scale) {
  const uint2 k = make_uint2((unsigned)key[0], (unsigned)key[1]);
  const int groups = (n + 3) / 4;
  GRID_STRIDE(g, groups) {
    const uint4 w = philox4x32_10(make_uint4((unsigned)g, 0u, 0u, 0u), k);
    const unsigned word[4] = {w.x, w.y, w.z, w.w};
    for (int j = 0; j < 4; j++) {
      const int i = 4 * g + j;
      if (i < n) {
        const T m = (word[j] >> 8) >= thr ? scale : T(0);
        mask[i] = m;
        y[i] = x[i] * m;
      }
    }
  }
}

KERNEL(dropout_fwd, (int n, const T* x, T* y, T* mask, const int* key, unsigned thr, T scale),
       (n, x, y, mask, key, thr, scale))
