//go:build race

package cpu

// maskedPartsOK is false under the race detector: its checkptr
// instrumentation rejects archsimd's masked partial loads and stores of
// short slices (the 16-float window may straddle allocations even though
// the masked lanes are never touched), so those paths fall back to Go.
const maskedPartsOK = false
