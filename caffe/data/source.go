package data

import (
	"fmt"
	"math/rand/v2"

	"github.com/gocaffe/gocaffe/caffe/blob"
)

// Source feeds batches of an in-memory image set to a data layer, in order,
// wrapping around at the end of the set (layer.BatchSource).
type Source[T blob.Float] struct {
	images *Images
	tf     Transform
	train  bool
	rng    *rand.Rand
	pos    int
	epoch  int
	xf     transformer[T] // applies tf
}

// NewSource returns a source over im with transform tf. train selects
// TRAIN-phase behaviour (random crops); seed makes crops and mirrors repeat.
func NewSource[T blob.Float](im *Images, tf Transform, train bool, seed uint64) (*Source[T], error) {
	if err := im.Validate(); err != nil {
		return nil, err
	}
	if err := tf.check(im.C, im.H, im.W); err != nil {
		return nil, err
	}
	s := &Source[T]{images: im, tf: tf, train: train, rng: rand.New(rand.NewPCG(seed, 0x6f6361666665))}
	s.xf = newTransformer[T](&s.tf)
	return s, nil
}

// Images returns the underlying image set.
func (s *Source[T]) Images() *Images { return s.images }

// Len returns the number of images in one epoch.
func (s *Source[T]) Len() int { return s.images.N }

// Epoch returns how many times the source has wrapped around.
func (s *Source[T]) Epoch() int { return s.epoch }

// Position returns the index of the next image.
func (s *Source[T]) Position() int { return s.pos }

// Seek sets the index of the next image (for resuming where a run stopped).
func (s *Source[T]) Seek(pos int) { s.pos = ((pos % s.images.N) + s.images.N) % s.images.N }

// Shape returns the C, H, W of one transformed image.
func (s *Source[T]) Shape() (c, h, w int) {
	oh, ow := s.tf.outSize(s.images.H, s.images.W)
	return s.images.C, oh, ow
}

// Next fills top[0] (N×C×H×W, shaped by the data layer) with the next N
// transformed images and top[1], when present, with their labels.
func (s *Source[T]) Next(top []*blob.Blob[T]) error {
	if len(top) == 0 {
		return fmt.Errorf("data source: no top blobs to fill")
	}
	d := top[0]
	c, h, w := s.Shape()
	if d.NumAxes() < 1 {
		return fmt.Errorf("data source: data top has no axes")
	}
	n := d.Dim(0)
	if per := d.CountFrom(1); per != c*h*w || (d.NumAxes() == 4 && (d.Dim(1) != c || d.Dim(2) != h || d.Dim(3) != w)) {
		return fmt.Errorf("data source: layer expects %s but images are %d×%d×%d after transform",
			blob.ShapeString(d.Shape()), c, h, w)
	}
	var labels []T
	if len(top) > 1 {
		if top[1].Count() != n {
			return fmt.Errorf("data source: label top %s does not hold %d labels", blob.ShapeString(top[1].Shape()), n)
		}
		labels = top[1].Data()
	}
	out := d.Data()
	per := c * h * w
	for i := 0; i < n; i++ {
		s.xf.apply(s.images, s.pos, s.train, s.rng, out[i*per:(i+1)*per])
		if labels != nil {
			labels[i] = T(s.images.Labels[s.pos])
		}
		s.pos++
		if s.pos == s.images.N {
			s.pos = 0
			s.epoch++
		}
	}
	return nil
}
