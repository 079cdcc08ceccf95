package kernels

import "math"

// Dropout's random draws come from Philox4x32-10 (Salmon, Moraes, Dror and
// Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011), a
// counter-based generator: a draw is a function of a key and a counter,
// with no state carried from one draw to the next. Every backend computes
// the same mask from the same key (the CPU one with Philox4x32 below, the
// CUDA one in kernels/cuda/src/random.cu), so a device's mask is checked
// against the host's bit for bit, and a device draws a whole mask in one
// kernel that a recorded iteration replays with a fresh key.

const (
	philoxM0 = 0xD2511F53
	philoxM1 = 0xCD9E8D57
	philoxW0 = 0x9E3779B9 // the key's increments between rounds
	philoxW1 = 0xBB67AE85
)

// Philox4x32 is Philox4x32-10: four 32-bit words from a 128-bit counter
// and a 64-bit key.
func Philox4x32(ctr [4]uint32, key [2]uint32) [4]uint32 {
	for r := 0; r < 10; r++ {
		if r > 0 {
			key[0] += philoxW0
			key[1] += philoxW1
		}
		p0 := uint64(philoxM0) * uint64(ctr[0])
		p1 := uint64(philoxM1) * uint64(ctr[2])
		ctr = [4]uint32{uint32(p1>>32) ^ ctr[1] ^ key[0], uint32(p1), uint32(p0>>32) ^ ctr[3] ^ key[1], uint32(p0)}
	}
	return ctr
}

// DropThreshold is the integer form of a dropout ratio: element i is kept
// when the top 24 bits of its draw are at least DropThreshold(ratio), so
// it is dropped with probability ceil(ratio·2²⁴)/2²⁴ on every backend.
func DropThreshold(ratio float64) uint32 {
	return uint32(math.Ceil(ratio * (1 << 24)))
}

// DropoutMask writes mask[i] = scale where element first+i of a mask is
// kept and 0 where it is dropped (first a multiple of 4). Element e's draw
// is word e mod 4 of Philox4x32 with counter (e/4, 0, 0, 0) and the given
// key. It is the reference the backends' DropoutForward follows.
func DropoutMask[T Float](mask []T, first int, key [2]uint32, threshold uint32, scale T) {
	if first%4 != 0 {
		panic("kernels: DropoutMask from an element not a multiple of 4")
	}
	for g := 0; 4*g < len(mask); g++ {
		w := Philox4x32([4]uint32{uint32(first/4 + g), 0, 0, 0}, key)
		for j := 0; j < 4 && 4*g+j < len(mask); j++ {
			if w[j]>>8 >= threshold {
				mask[4*g+j] = scale
			} else {
				mask[4*g+j] = 0
			}
		}
	}
}

// DropoutKey makes a DropoutForward key from 64 random bits, as the two
// int32 words an IntVec holds.
func DropoutKey(bits uint64) [2]int32 {
	return [2]int32{int32(uint32(bits)), int32(uint32(bits >> 32))}
}
