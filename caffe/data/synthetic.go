package data

import (
	"math/rand/v2"

	"github.com/gocaffe/gocaffe/caffe/blob"
)

// Synthetic is a batch source of random data for benchmarks: images
// uniform in [0, 1) and labels uniform over Classes, made on the first
// call from the seed. Fixed, it fills its tops once and then leaves them
// alone, so a device net keeps the batch in device memory (as PyTorch's
// benchmark tensors stay on the GPU); fresh, it copies one of two batches
// into the tops on each call, which is a data layer's host work for a
// decoded batch (decoding not counted) and, on a device, an upload. No
// random numbers are drawn inside a timed step.
type Synthetic struct {
	rng     *rand.Rand
	classes int
	fresh   bool
	pool    [][][]float32 // [batch][top] values: one batch fixed, two fresh
	next    int
}

// NewSynthetic returns a Synthetic source (see the type) with labels in
// [0, classes).
func NewSynthetic(seed uint64, classes int, fresh bool) *Synthetic {
	return &Synthetic{rng: rand.New(rand.NewPCG(seed, 7)), classes: max(classes, 1), fresh: fresh}
}

// Next implements layer.BatchSource.
func (s *Synthetic) Next(top []*blob.Blob[float32]) error {
	if s.pool != nil && !s.fresh {
		return nil
	}
	if s.pool == nil {
		s.pool = make([][][]float32, 1)
		if s.fresh {
			s.pool = make([][][]float32, 2)
		}
		for p := range s.pool {
			s.pool[p] = make([][]float32, len(top))
			for k, t := range top {
				v := make([]float32, t.Count())
				for i := range v {
					if k == 0 {
						v[i] = s.rng.Float32()
					} else {
						v[i] = float32(s.rng.IntN(s.classes))
					}
				}
				s.pool[p][k] = v
			}
		}
	}
	for k, t := range top {
		copy(t.Data(), s.pool[s.next][k])
	}
	s.next = (s.next + 1) % len(s.pool)
	return nil
}
