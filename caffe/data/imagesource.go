package data

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/imgcodec"
)

// ImageListOptions configure an image list source (Caffe's ImageData
// layer: image_data_param).
type ImageListOptions struct {
	List       string // file of "path label" lines
	Root       string // root_folder, prefixed to every path as given
	Color      bool   // is_color: BGR; else grayscale
	NewH, NewW int    // resize (bilinear, as cv::resize) when both are set
	Shuffle    bool   // shuffle at the start and at every epoch
	RandSkip   int    // skip a random number of lines in [0, RandSkip) at the start
	Transform  Transform
	Train      bool
	Seed       uint64
}

// ImageListOptionsOf reads an ImageData layer's parameters.
func ImageListOptionsOf(p *caffepb.ImageDataParameter) ImageListOptions {
	return ImageListOptions{List: p.GetSource(), Root: p.GetRootFolder(), Color: p.GetIsColor(),
		NewH: int(p.GetNewHeight()), NewW: int(p.GetNewWidth()), Shuffle: p.GetShuffle(), RandSkip: int(p.GetRandSkip())}
}

// ImageListSource feeds batches of the images a list file names, decoded
// (as OpenCV's imread) when each batch is drawn, in list order or shuffled,
// wrapping at the end. Every image must have the first one's size unless
// NewH/NewW resize them all.
type ImageListSource[T blob.Float] struct {
	opt     ImageListOptions
	entries []ListEntry
	pos     int
	epoch   int
	c, h, w int
	rng     *rand.Rand
	xf      transformer[T] // applies opt.Transform
}

// OpenImageList reads the list and decodes its first image for the shape.
func OpenImageList[T blob.Float](opt ImageListOptions) (*ImageListSource[T], error) {
	entries, err := ReadImageList(opt.List)
	if err != nil {
		return nil, err
	}
	s := &ImageListSource[T]{opt: opt, entries: entries, rng: rand.New(rand.NewPCG(opt.Seed, 0x696d6167656c6973))}
	s.xf = newTransformer[T](&s.opt.Transform)
	if opt.Shuffle {
		s.shuffle()
	}
	if opt.RandSkip > 0 {
		s.pos = s.rng.IntN(opt.RandSkip) % len(entries)
	}
	first, err := s.load(s.entries[s.pos])
	if err != nil {
		return nil, err
	}
	s.c, s.h, s.w = first.C, first.H, first.W
	if err := opt.Transform.check(s.c, s.h, s.w); err != nil {
		return nil, fmt.Errorf("%s: %w", opt.List, err)
	}
	return s, nil
}

func (s *ImageListSource[T]) shuffle() {
	s.rng.Shuffle(len(s.entries), func(i, j int) { s.entries[i], s.entries[j] = s.entries[j], s.entries[i] })
}

// load decodes one listed image (resized when asked).
func (s *ImageListSource[T]) load(e ListEntry) (*Images, error) {
	path := s.opt.Root + e.Path
	where := fmt.Sprintf("%s:%d: %s", s.opt.List, e.Line, path)
	b, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		return nil, fmt.Errorf("%s:%d: %w", s.opt.List, e.Line, err)
	}
	img, err := imgcodec.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	c := 1
	if s.opt.Color {
		c = 3
	}
	h, w := img.Bounds().Dy(), img.Bounds().Dx()
	pix := make([]byte, c*h*w)
	imgcodec.WriteCHW(pix, img, c)
	if s.opt.NewH > 0 && s.opt.NewW > 0 {
		out := make([]byte, c*s.opt.NewH*s.opt.NewW)
		imgcodec.ResizeCHW(out, s.opt.NewH, s.opt.NewW, pix, c, h, w)
		pix, h, w = out, s.opt.NewH, s.opt.NewW
	}
	if s.c != 0 && (h != s.h || w != s.w) {
		return nil, fmt.Errorf("%s: image is %d×%d, the first is %d×%d (set new_height and new_width to resize)", where, h, w, s.h, s.w)
	}
	return &Images{N: 1, C: c, H: h, W: w, Pix: pix, Labels: []float32{float32(e.Label)}}, nil
}

// Len returns the number of listed images.
func (s *ImageListSource[T]) Len() int { return len(s.entries) }

// Shape returns the C, H, W of one transformed image.
func (s *ImageListSource[T]) Shape() (c, h, w int) {
	oh, ow := s.opt.Transform.outSize(s.h, s.w)
	return s.c, oh, ow
}

// Next fills top[0] with the next transformed images and top[1], when
// present, with their labels.
func (s *ImageListSource[T]) Next(top []*blob.Blob[T]) error {
	if len(top) == 0 {
		return fmt.Errorf("%s: no top blobs to fill", s.opt.List)
	}
	c, h, w := s.Shape()
	d := top[0]
	if d.NumAxes() < 1 || d.CountFrom(1) != c*h*w {
		return fmt.Errorf("%s: layer expects %s but images are %d×%d×%d after transform", s.opt.List, blob.ShapeString(d.Shape()), c, h, w)
	}
	n := d.Dim(0)
	var labels []T
	if len(top) > 1 {
		if top[1].Count() != n {
			return fmt.Errorf("%s: label top %s does not hold %d labels", s.opt.List, blob.ShapeString(top[1].Shape()), n)
		}
		labels = top[1].Data()
	}
	out := d.Data()
	per := c * h * w
	for i := 0; i < n; i++ {
		im, err := s.load(s.entries[s.pos])
		if err != nil {
			return err
		}
		s.xf.apply(im, 0, s.opt.Train, s.rng, out[i*per:(i+1)*per])
		if labels != nil {
			labels[i] = T(im.Labels[0])
		}
		if s.pos++; s.pos == len(s.entries) {
			s.pos = 0
			s.epoch++
			if s.opt.Shuffle {
				s.shuffle()
			}
		}
	}
	return nil
}
