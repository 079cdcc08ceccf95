package arrowio

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/gocaffe/gocaffe/caffe/blob"
)

// Transform is Caffe's per-sample data transformation (transform_param),
// applied as a batch is filled: crop, mirror, then (value - mean) × scale.
type Transform struct {
	// Scale multiplies each value after mean subtraction; 0 means 1.
	Scale float32
	// MeanValues holds one mean per channel, or one for all channels.
	MeanValues []float32
	// Mean is a per-pixel mean image (Caffe's mean_file): C×H×W values of
	// the samples' shape before the crop, subtracted at the crop's offset as
	// Caffe's DataTransformer does. At most one of Mean and MeanValues.
	Mean []float32
	// CropSize crops a square of this side: at random while training, at
	// the centre while testing. 0 means no crop.
	CropSize int
	// Mirror flips samples horizontally at random while training.
	Mirror bool
}

func (t *Transform) validate() error {
	if t.CropSize < 0 {
		return fmt.Errorf("transform: negative crop_size %d", t.CropSize)
	}
	return nil
}

// Policy says how a rank walks its own partition. Partitions are never
// truncated to the smallest one; the policies differ in how a rank with
// fewer samples than the others keeps up with the shared iteration count.
type Policy int

const (
	// UnevenEpochs (the default) visits every sample of the partition once
	// per epoch, in a fresh order each epoch when shuffling; a batch that
	// runs past the end continues with the next epoch. Ranks with smaller
	// partitions simply complete more epochs in the same number of
	// iterations: no sample is dropped or repeated within an epoch.
	UnevenEpochs Policy = iota
	// WithReplacement draws every sample of every batch uniformly at random
	// from the partition, independently; epochs have no boundaries.
	WithReplacement
)

func (p Policy) String() string {
	switch p {
	case UnevenEpochs:
		return "uneven-epochs"
	case WithReplacement:
		return "with-replacement"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// SamplerOptions configures a Sampler.
type SamplerOptions struct {
	// BatchSize is the number of samples per batch (per rank).
	BatchSize int
	// Policy is how the partition is walked.
	Policy Policy
	// Shuffle reorders each epoch (UnevenEpochs); without it samples come
	// in partition order, as Caffe's MemoryData does.
	Shuffle bool
	// Seed seeds shuffling, sampling, random crops and mirrors.
	Seed uint64
	// Train selects random crops and mirrors; testing crops the centre.
	Train bool
}

// Sampler draws batches from a Dataset into a data layer's tops; it is a
// layer.BatchSource. It holds a reference to the dataset until Close.
// A Sampler is not safe for concurrent use.
type Sampler[T blob.Float] struct {
	ds      *Dataset
	opt     SamplerOptions
	rng     *rand.Rand
	order   []int
	pos     int
	epoch   int
	drawn   int64
	last    []int   // rows of the last batch
	out     [][]int // per-field output sample shape
	trs     []*Transform
	trans   []bool
	scratch []T
}

// NewSampler returns a sampler over ds with the transforms of spec (the
// spec ds was built from).
func NewSampler[T blob.Float](ds *Dataset, spec Spec, opt SamplerOptions) (*Sampler[T], error) {
	if opt.BatchSize <= 0 {
		return nil, fmt.Errorf("arrowio sampler: batch size %d must be positive", opt.BatchSize)
	}
	if ds.Len() == 0 {
		return nil, errors.New("arrowio sampler: empty partition")
	}
	if len(spec.Fields) != len(ds.fields) {
		return nil, fmt.Errorf("arrowio sampler: spec has %d fields, dataset %d", len(spec.Fields), len(ds.fields))
	}
	s := &Sampler[T]{ds: ds, opt: opt, rng: rand.New(rand.NewPCG(opt.Seed, 0x9e3779b97f4a7c15))}
	for k, f := range ds.fields {
		t := spec.Fields[k].Transform
		out := slices.Clone(f.Shape)
		if t != nil {
			if t.CropSize > 0 {
				if len(out) != 3 || out[1] < t.CropSize || out[2] < t.CropSize {
					return nil, fmt.Errorf("arrowio sampler: field %q: crop_size %d does not fit sample shape %v", f.Name, t.CropSize, f.Shape)
				}
				out[1], out[2] = t.CropSize, t.CropSize
			}
			if t.Mirror && len(out) != 3 {
				return nil, fmt.Errorf("arrowio sampler: field %q: mirror needs a (C, H, W) sample shape, have %v", f.Name, f.Shape)
			}
			if nm := len(t.MeanValues); nm > 1 && (len(out) == 0 || nm != out[0]) {
				return nil, fmt.Errorf("arrowio sampler: field %q: %d mean values for shape %v", f.Name, nm, f.Shape)
			}
			if t.Mean != nil {
				if len(t.MeanValues) > 0 {
					return nil, fmt.Errorf("arrowio sampler: field %q: a mean image and mean values cannot both be given", f.Name)
				}
				if len(f.Shape) != 3 || len(t.Mean) != f.size() {
					return nil, fmt.Errorf("arrowio sampler: field %q: the mean image has %d values, samples are %v (%d values)", f.Name, len(t.Mean), f.Shape, f.size())
				}
			}
		}
		s.out = append(s.out, out)
		s.trs = append(s.trs, t)
		s.trans = append(s.trans, spec.Fields[k].Transpose)
	}
	s.order = make([]int, ds.Len())
	for i := range s.order {
		s.order[i] = i
	}
	if opt.Shuffle {
		s.rng.Shuffle(len(s.order), func(i, j int) { s.order[i], s.order[j] = s.order[j], s.order[i] })
	}
	ds.Retain()
	return s, nil
}

// TopShape returns the shape field k's top must have for one batch.
func (s *Sampler[T]) TopShape(k int) []int {
	if s.trans[k] {
		return append([]int{prod(s.out[k])}, s.opt.BatchSize)
	}
	return append([]int{s.opt.BatchSize}, s.out[k]...)
}

// Epoch returns how many full passes over the partition are complete
// (UnevenEpochs) or the samples drawn divided by the partition size.
func (s *Sampler[T]) Epoch() int {
	if s.opt.Policy == WithReplacement {
		return int(s.drawn / int64(s.ds.Len()))
	}
	return s.epoch
}

// LastRows returns the partition rows of the last batch, in batch order
// (for naming the row behind a bad sample). The slice is reused by Next.
func (s *Sampler[T]) LastRows() []int { return s.last }

// Drawn returns the number of samples drawn so far.
func (s *Sampler[T]) Drawn() int64 { return s.drawn }

// Close drops the sampler's reference to its dataset.
func (s *Sampler[T]) Close() {
	if s.ds != nil {
		s.ds.Release()
		s.ds = nil
	}
}

func (s *Sampler[T]) next() int {
	s.drawn++
	if s.opt.Policy == WithReplacement {
		return s.rng.IntN(s.ds.Len())
	}
	i := s.order[s.pos]
	s.pos++
	if s.pos == len(s.order) {
		s.pos = 0
		s.epoch++
		if s.opt.Shuffle {
			s.rng.Shuffle(len(s.order), func(i, j int) { s.order[i], s.order[j] = s.order[j], s.order[i] })
		}
	}
	return i
}

// Next fills top (one blob per field, shaped as TopShape says) with the
// next batch.
func (s *Sampler[T]) Next(top []*blob.Blob[T]) error {
	if s.ds == nil {
		return errors.New("arrowio sampler: closed")
	}
	if len(top) != len(s.out) {
		return fmt.Errorf("arrowio sampler: %d tops for %d fields", len(top), len(s.out))
	}
	for k, t := range top {
		want := s.TopShape(k)
		if t.Count() != prod(want) {
			return fmt.Errorf("arrowio sampler: top %d (%q) has shape %v, the batch needs %v", k, s.ds.fields[k].Name, t.Shape(), want)
		}
	}
	bs := s.opt.BatchSize
	s.last = s.last[:0]
	for b := 0; b < bs; b++ {
		i := s.next()
		s.last = append(s.last, i)
		for k := range top {
			u8, f32 := s.ds.sample(k, i)
			dst := top[k].Data()
			n := prod(s.out[k])
			out := dst[b*n : (b+1)*n]
			if s.trans[k] {
				// (size, batch) layout: fill a scratch sample, then scatter.
				if cap(s.scratch) < n {
					s.scratch = make([]T, n)
				}
				out = s.scratch[:n]
			}
			if u8 != nil {
				fill(s, k, out, u8)
			} else {
				fill(s, k, out, f32)
			}
			if s.trans[k] {
				for j, v := range out {
					dst[j*bs+b] = v
				}
			}
		}
	}
	return nil
}

// fill writes one sample of field k into out, transformed.
func fill[T blob.Float, E uint8 | float32](s *Sampler[T], k int, out []T, src []E) {
	t := s.trs[k]
	if t == nil {
		for j, v := range src {
			out[j] = T(v)
		}
		return
	}
	scale := float64(t.Scale)
	if scale == 0 {
		scale = 1
	}
	mean := func(c int) float64 {
		switch len(t.MeanValues) {
		case 0:
			return 0
		case 1:
			return float64(t.MeanValues[0])
		}
		return float64(t.MeanValues[c])
	}
	shape := s.ds.fields[k].Shape
	if len(shape) != 3 {
		m := mean(0)
		for j, v := range src {
			out[j] = T((float64(v) - m) * scale)
		}
		return
	}
	c, h, w := shape[0], shape[1], shape[2]
	oh, ow := s.out[k][1], s.out[k][2]
	hOff, wOff := 0, 0
	if oh != h || ow != w {
		if s.opt.Train {
			hOff, wOff = s.rng.IntN(h-oh+1), s.rng.IntN(w-ow+1)
		} else {
			hOff, wOff = (h-oh)/2, (w-ow)/2
		}
	}
	mirror := t.Mirror && s.opt.Train && s.rng.IntN(2) == 1
	for ch := 0; ch < c; ch++ {
		m := mean(ch)
		for y := 0; y < oh; y++ {
			at := ch*h*w + (y+hOff)*w + wOff
			srow := src[at : at+ow]
			drow := out[ch*oh*ow+y*ow : ch*oh*ow+(y+1)*ow]
			var mrow []float32
			if t.Mean != nil {
				mrow = t.Mean[at : at+ow]
			}
			for x, v := range srow {
				dx := x
				if mirror {
					dx = ow - 1 - x
				}
				if mrow != nil {
					m = float64(mrow[x])
				}
				drow[dx] = T((float64(v) - m) * scale)
			}
		}
	}
}
