package data

import (
	"fmt"
	"math/rand/v2"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// Transform is Caffe's transform_param: out = (in - mean) * scale, with an
// optional crop (random at TRAIN, centred at TEST) and an optional random
// horizontal mirror (in both phases, as Caffe's DataTransformer does).
type Transform struct {
	Scale     float64   // multiplier after mean subtraction; 0 means 1
	Mirror    bool      // mirror each image with probability 1/2
	CropSize  int       // square crop side; 0 for none
	MeanValue []float64 // one value for all channels, or one per channel
	// Mean is a per-pixel mean image (C×H×W of the source images, from
	// mean_file); at most one of Mean and MeanValue is set.
	Mean []float32
}

// TransformFromProto converts a TransformationParameter. A mean_file is read
// with loadMean (which returns the mean image's values); loadMean may be nil
// when no mean_file is expected.
func TransformFromProto(p *caffepb.TransformationParameter, loadMean func(path string) ([]float32, error)) (Transform, error) {
	t := Transform{Scale: 1}
	if p == nil {
		return t, nil
	}
	t.Scale = float64(p.GetScale())
	t.Mirror = p.GetMirror()
	t.CropSize = int(p.GetCropSize())
	for _, v := range p.GetMeanValue() {
		t.MeanValue = append(t.MeanValue, float64(v))
	}
	if p.GetForceColor() || p.GetForceGray() {
		return t, fmt.Errorf("transform_param: force_color/force_gray apply to encoded images, which these sources do not decode")
	}
	if f := p.GetMeanFile(); f != "" {
		if len(t.MeanValue) > 0 {
			return t, fmt.Errorf("transform_param: mean_file and mean_value cannot both be set")
		}
		if loadMean == nil {
			return t, fmt.Errorf("transform_param: mean_file %q given but no loader", f)
		}
		m, err := loadMean(f)
		if err != nil {
			return t, fmt.Errorf("transform_param: mean_file %s: %w", f, err)
		}
		t.Mean = m
	}
	return t, nil
}

// outSize returns the output height and width for C×H×W inputs.
func (t *Transform) outSize(h, w int) (int, int) {
	if t.CropSize > 0 {
		return t.CropSize, t.CropSize
	}
	return h, w
}

// check validates the transform against the image shape.
func (t *Transform) check(c, h, w int) error {
	if t.CropSize > 0 && (t.CropSize > h || t.CropSize > w) {
		return fmt.Errorf("crop_size %d is larger than the %d×%d images", t.CropSize, h, w)
	}
	if n := len(t.MeanValue); n > 1 && n != c {
		return fmt.Errorf("%d mean_value entries for %d channels (give 1 or %d)", n, c, c)
	}
	if t.Mean != nil && len(t.Mean) != c*h*w {
		return fmt.Errorf("mean image has %d values, images are %d×%d×%d", len(t.Mean), c, h, w)
	}
	return nil
}

// apply transforms image n of im into out (C×outH×outW).
func apply[T ~float32 | ~float64](t *Transform, im *Images, n int, train bool, rng *rand.Rand, out []T) {
	c, h, w := im.C, im.H, im.W
	oh, ow := t.outSize(h, w)
	mirror := t.Mirror && rng.IntN(2) == 1
	hOff, wOff := 0, 0
	if t.CropSize > 0 {
		if train {
			hOff, wOff = rng.IntN(h-oh+1), rng.IntN(w-ow+1)
		} else {
			hOff, wOff = (h-oh)/2, (w-ow)/2
		}
	}
	scale := t.Scale
	if scale == 0 {
		scale = 1
	}
	base := n * c * h * w
	for ch := 0; ch < c; ch++ {
		var mv float64
		switch len(t.MeanValue) {
		case 0:
		case 1:
			mv = t.MeanValue[0]
		default:
			mv = t.MeanValue[ch]
		}
		for y := 0; y < oh; y++ {
			src := (ch*h+hOff+y)*w + wOff
			dst := (ch*oh + y) * ow
			for x := 0; x < ow; x++ {
				v := im.pixel(base, src+x)
				if t.Mean != nil {
					v -= float64(t.Mean[src+x])
				} else {
					v -= mv
				}
				o := dst + x
				if mirror {
					o = dst + ow - 1 - x
				}
				out[o] = T(v * scale)
			}
		}
	}
}
