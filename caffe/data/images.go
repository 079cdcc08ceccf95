package data

import "fmt"

// Images is a labelled set of images held in memory, each C×H×W, stored
// either as bytes (Pix) or as floats (Float); exactly one is set.
type Images struct {
	N, C, H, W int
	Pix        []uint8   // N*C*H*W bytes, or nil
	Float      []float32 // N*C*H*W values, or nil
	Labels     []float32 // N labels
}

// Validate checks that the sizes agree.
func (im *Images) Validate() error {
	if im.N <= 0 || im.C <= 0 || im.H <= 0 || im.W <= 0 {
		return fmt.Errorf("empty image set (%d×%d×%d×%d)", im.N, im.C, im.H, im.W)
	}
	n := im.N * im.C * im.H * im.W
	switch {
	case im.Pix != nil && im.Float != nil:
		return fmt.Errorf("image set has both byte and float pixels")
	case im.Pix != nil && len(im.Pix) != n:
		return fmt.Errorf("image set has %d bytes, want %d", len(im.Pix), n)
	case im.Float != nil && len(im.Float) != n:
		return fmt.Errorf("image set has %d values, want %d", len(im.Float), n)
	case im.Pix == nil && im.Float == nil:
		return fmt.Errorf("image set has no pixels")
	}
	if len(im.Labels) != im.N {
		return fmt.Errorf("image set has %d labels for %d images", len(im.Labels), im.N)
	}
	return nil
}

// pixel returns value i of image n as a float64.
func (im *Images) pixel(base, i int) float64 {
	if im.Pix != nil {
		return float64(im.Pix[base+i])
	}
	return float64(im.Float[base+i])
}
