// Package filler initialises blobs as Caffe's fillers do: constant,
// uniform, gaussian (optionally sparse), xavier, msra, positive_unitball and
// bilinear, drawing from a caller-supplied random source so runs repeat.
package filler

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// Filler writes initial values into a blob's data.
type Filler[T blob.Float] interface {
	Fill(b *blob.Blob[T]) error
}

// ErrEmptyBlob is returned when asked to fill a blob with no elements.
var ErrEmptyBlob = errors.New("filler: blob has no elements")

// New returns the filler that p describes, drawing from rng (which may be
// nil only for the deterministic constant and bilinear fillers). A nil p is
// Caffe's default, a constant 0.
func New[T blob.Float](p *caffepb.FillerParameter, rng *rand.Rand) (Filler[T], error) {
	typ := p.GetType()
	sparse := int(p.GetSparse())
	if sparse < -1 {
		return nil, fmt.Errorf("filler %q: sparse must be >= -1, got %d", typ, sparse)
	}
	if sparse != -1 && typ != "gaussian" {
		return nil, fmt.Errorf("filler %q: sparse (%d) is supported only by the gaussian filler", typ, sparse)
	}
	needRand := func(f Filler[T]) (Filler[T], error) {
		if rng == nil {
			return nil, fmt.Errorf("filler %q: needs a random source", typ)
		}
		return f, nil
	}
	switch typ {
	case "constant":
		return constant[T]{value: T(p.GetValue())}, nil
	case "uniform":
		lo, hi := float64(p.GetMin()), float64(p.GetMax())
		if lo > hi {
			return nil, fmt.Errorf("filler %q: min %g > max %g", typ, lo, hi)
		}
		return needRand(uniform[T]{rng: rng, lo: lo, hi: hi})
	case "gaussian":
		if p.GetStd() < 0 {
			return nil, fmt.Errorf("filler %q: std %g is negative", typ, p.GetStd())
		}
		return needRand(gaussian[T]{rng: rng, mean: float64(p.GetMean()), std: float64(p.GetStd()), sparse: sparse})
	case "positive_unitball":
		return needRand(unitball[T]{rng: rng})
	case "xavier":
		return needRand(fanScaled[T]{rng: rng, norm: p.GetVarianceNorm(), msra: false})
	case "msra":
		return needRand(fanScaled[T]{rng: rng, norm: p.GetVarianceNorm(), msra: true})
	case "bilinear":
		return bilinear[T]{}, nil
	}
	return nil, fmt.Errorf("unknown filler type %q (known: constant, uniform, gaussian, positive_unitball, xavier, msra, bilinear)", typ)
}

// Fill is New followed by Fill, for callers that fill one blob (a layer's
// parameters, whose storage the fill allocates): a shape too large to
// count (blob.CheckCount) is an error, not a wrapped allocation.
func Fill[T blob.Float](p *caffepb.FillerParameter, rng *rand.Rand, b *blob.Blob[T]) error {
	if err := blob.CheckCount(b.Shape()); err != nil {
		return err
	}
	f, err := New[T](p, rng)
	if err != nil {
		return err
	}
	return f.Fill(b)
}

type constant[T blob.Float] struct{ value T }

func (f constant[T]) Fill(b *blob.Blob[T]) error {
	if b.Count() == 0 {
		return ErrEmptyBlob
	}
	if f.value == 0 && !b.Allocated() {
		// Storage not yet allocated reads as zeros and is allocated
		// zeroed: a zero fill (WithoutFillers' nets, whose weights are
		// loaded or shared afterwards) allocates nothing.
		return nil
	}
	d := b.Data()
	for i := range d {
		d[i] = f.value
	}
	return nil
}

type uniform[T blob.Float] struct {
	rng    *rand.Rand
	lo, hi float64
}

func (f uniform[T]) Fill(b *blob.Blob[T]) error {
	if b.Count() == 0 {
		return ErrEmptyBlob
	}
	fillUniform(b.Data(), f.rng, f.lo, f.hi)
	return nil
}

func fillUniform[T blob.Float](d []T, rng *rand.Rand, lo, hi float64) {
	for i := range d {
		d[i] = T(lo + (hi-lo)*rng.Float64())
	}
}

type gaussian[T blob.Float] struct {
	rng       *rand.Rand
	mean, std float64
	sparse    int
}

func (f gaussian[T]) Fill(b *blob.Blob[T]) error {
	if b.Count() == 0 {
		return ErrEmptyBlob
	}
	d := b.Data()
	fillGaussian(d, f.rng, f.mean, f.std)
	if f.sparse >= 0 {
		if b.NumAxes() < 1 {
			return errors.New("filler \"gaussian\": sparse needs a blob with at least one axis")
		}
		// Each weight survives with probability sparse/num_outputs, so each
		// input feeds about `sparse` outputs.
		keep := float64(f.sparse) / float64(b.Dim(0))
		for i := range d {
			if f.rng.Float64() >= keep {
				d[i] = 0
			}
		}
	}
	return nil
}

func fillGaussian[T blob.Float](d []T, rng *rand.Rand, mean, std float64) {
	for i := range d {
		d[i] = T(mean + std*rng.NormFloat64())
	}
}

type unitball[T blob.Float] struct{ rng *rand.Rand }

func (f unitball[T]) Fill(b *blob.Blob[T]) error {
	if b.Count() == 0 {
		return ErrEmptyBlob
	}
	d := b.Data()
	fillUniform(d, f.rng, 0, 1)
	n := b.Dim(0)
	dim := b.Count() / n
	for i := 0; i < n; i++ {
		row := d[i*dim : (i+1)*dim]
		var sum T
		for _, v := range row {
			sum += v
		}
		for j := range row {
			row[j] /= sum
		}
	}
	return nil
}

// fanScaled is xavier (uniform, variance 1/n) or msra (gaussian, variance
// 2/n), where n is fan_in, fan_out or their average.
type fanScaled[T blob.Float] struct {
	rng  *rand.Rand
	norm caffepb.FillerParameter_VarianceNorm
	msra bool
}

func (f fanScaled[T]) Fill(b *blob.Blob[T]) error {
	if b.Count() == 0 {
		return ErrEmptyBlob
	}
	n := FanNorm(b.Shape(), f.norm)
	if f.msra {
		fillGaussian(b.Data(), f.rng, 0, math.Sqrt(2/n))
	} else {
		s := math.Sqrt(3 / n)
		fillUniform(b.Data(), f.rng, -s, s)
	}
	return nil
}

// FanNorm returns the n that xavier and msra scale by for a blob of the
// given (non-empty) shape: fan_in = count/shape[0], fan_out = count/shape[1]
// (count for a 1-D blob), or their average.
func FanNorm(shape []int, norm caffepb.FillerParameter_VarianceNorm) float64 {
	count := 1
	for _, d := range shape {
		count *= d
	}
	fanIn := count / shape[0]
	fanOut := count
	if len(shape) > 1 {
		fanOut = count / shape[1]
	}
	switch norm {
	case caffepb.FillerParameter_AVERAGE:
		return float64(fanIn+fanOut) / 2
	case caffepb.FillerParameter_FAN_OUT:
		return float64(fanOut)
	}
	return float64(fanIn)
}

type bilinear[T blob.Float] struct{}

func (bilinear[T]) Fill(b *blob.Blob[T]) error {
	if b.NumAxes() != 4 {
		return fmt.Errorf("filler \"bilinear\": blob must be 4-D, got shape %v", b.Shape())
	}
	w, h := b.Dim(3), b.Dim(2)
	if w != h {
		return fmt.Errorf("filler \"bilinear\": filter must be square, got %dx%d", h, w)
	}
	if b.Count() == 0 {
		return ErrEmptyBlob
	}
	f := math.Ceil(float64(w) / 2)
	c := float64(w-1) / (2 * f)
	d := b.Data()
	for i := range d {
		x := float64(i % w)
		y := float64((i / w) % h)
		d[i] = T((1 - math.Abs(x/f-c)) * (1 - math.Abs(y/f-c)))
	}
	return nil
}
