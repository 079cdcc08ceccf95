package data

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/imgcodec"
)

// ColorMode says how encoded images decode (transform_param's force_color
// and force_gray; otherwise OpenCV's IMREAD_UNCHANGED, alpha dropped).
type ColorMode int

// The colour modes.
const (
	Unchanged ColorMode = iota
	ForceColor
	ForceGray
)

// ColorModeOf reads force_color/force_gray from a transform_param.
func ColorModeOf(p *caffepb.TransformationParameter) (ColorMode, error) {
	switch {
	case p.GetForceColor() && p.GetForceGray():
		return 0, fmt.Errorf("transform_param: force_color and force_gray cannot both be set")
	case p.GetForceColor():
		return ForceColor, nil
	case p.GetForceGray():
		return ForceGray, nil
	}
	return Unchanged, nil
}

func (m ColorMode) channels() int {
	switch m {
	case ForceColor:
		return 3
	case ForceGray:
		return 1
	}
	return 0
}

// DecodeDatum parses a serialized Datum into a one-image set: raw bytes
// (data), floats (float_data) or an encoded image decoded with mode.
func DecodeDatum(b []byte, mode ColorMode) (*Images, error) {
	var d caffepb.Datum
	if err := proto.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("not a Datum: %w", err)
	}
	return DatumImage(&d, mode)
}

// DatumImage converts a Datum into a one-image set.
func DatumImage(d *caffepb.Datum, mode ColorMode) (*Images, error) {
	im := &Images{N: 1, Labels: []float32{float32(d.GetLabel())}}
	if d.GetEncoded() {
		img, err := imgcodec.Decode(d.GetData())
		if err != nil {
			return nil, fmt.Errorf("encoded image: %w", err)
		}
		c := imgcodec.Channels(img, mode.channels())
		bnd := img.Bounds()
		im.C, im.H, im.W = c, bnd.Dy(), bnd.Dx()
		im.Pix = make([]uint8, c*im.H*im.W)
		imgcodec.WriteCHW(im.Pix, img, c)
		return im, im.Validate()
	}
	im.C, im.H, im.W = int(d.GetChannels()), int(d.GetHeight()), int(d.GetWidth())
	n := im.C * im.H * im.W
	switch {
	case len(d.GetData()) > 0:
		if len(d.GetData()) != n {
			return nil, fmt.Errorf("%d data bytes for %d×%d×%d", len(d.GetData()), im.C, im.H, im.W)
		}
		im.Pix = d.GetData()
	case len(d.GetFloatData()) > 0:
		if len(d.GetFloatData()) != n {
			return nil, fmt.Errorf("%d float_data values for %d×%d×%d", len(d.GetFloatData()), im.C, im.H, im.W)
		}
		im.Float = d.GetFloatData()
	default:
		return nil, fmt.Errorf("Datum %d×%d×%d has neither data nor float_data", im.C, im.H, im.W)
	}
	return im, im.Validate()
}
