package kernels

import (
	"math"
	"testing"
)

// Random123's published known-answer vectors for Philox4x32-10.
func TestPhiloxKnownAnswers(t *testing.T) {
	for _, c := range []struct {
		ctr  [4]uint32
		key  [2]uint32
		want [4]uint32
	}{
		{[4]uint32{0, 0, 0, 0}, [2]uint32{0, 0}, [4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
		{[4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, [2]uint32{0xffffffff, 0xffffffff}, [4]uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
		{[4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0}, [4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
	} {
		if got := Philox4x32(c.ctr, c.key); got != c.want {
			t.Errorf("Philox4x32(%08x, %08x) = %08x, want %08x", c.ctr, c.key, got, c.want)
		}
	}
}

// A mask drops close to ratio of its elements, keeps the rest at scale,
// depends on the key, and is the same whatever its length up to a prefix.
func TestDropoutMask(t *testing.T) {
	const n = 100003 // not a multiple of 4
	for _, ratio := range []float64{0, 0.1, 0.5, 0.9} {
		scale := float32(1 / (1 - ratio))
		m := make([]float32, n)
		DropoutMask(m, 0, [2]uint32{7, 9}, DropThreshold(ratio), scale)
		dropped := 0
		for i, v := range m {
			switch v {
			case 0:
				dropped++
			case scale:
			default:
				t.Fatalf("ratio %g: mask[%d] = %g, want 0 or %g", ratio, i, v, scale)
			}
		}
		// 5 standard deviations of a binomial count.
		if got, sd := float64(dropped)/n, math.Sqrt(ratio*(1-ratio)/n); math.Abs(got-ratio) > 5*sd+1e-9 {
			t.Errorf("ratio %g: dropped %.4f of %d", ratio, got, n)
		}
		tail := make([]float32, 17)
		DropoutMask(tail, 40, [2]uint32{7, 9}, DropThreshold(ratio), scale)
		for i := range tail {
			if tail[i] != m[40+i] {
				t.Fatalf("ratio %g: a mask from element 40 differs from the whole one's at %d", ratio, 40+i)
			}
		}
		short := make([]float32, 13)
		DropoutMask(short, 0, [2]uint32{7, 9}, DropThreshold(ratio), scale)
		for i := range short {
			if short[i] != m[i] {
				t.Fatalf("ratio %g: a 13-element mask differs from the long one's prefix at %d", ratio, i)
			}
		}
	}
	a, b := make([]float64, 64), make([]float64, 64)
	DropoutMask(a, 0, [2]uint32{1, 2}, DropThreshold(0.5), 2)
	DropoutMask(b, 0, [2]uint32{1, 3}, DropThreshold(0.5), 2)
	same := 0
	for i := range a {
		if a[i] == b[i] {
			same++
		}
	}
	if same == len(a) {
		t.Error("two keys gave the same 64-element mask")
	}
	if DropThreshold(0) != 0 || DropThreshold(0.5) != 1<<23 {
		t.Errorf("DropThreshold(0), (0.5) = %d, %d", DropThreshold(0), DropThreshold(0.5))
	}
}
