package data

import (
	"math/rand/v2"
	"testing"
)

// refApply is Caffe's DataTransformer rule element by element: the
// oracle for apply's row loops. It draws mirror, then the crop offsets,
// from rng as apply does.
func refApply(t *Transform, im *Images, n int, train bool, rng *rand.Rand) []float64 {
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
	out := make([]float64, c*oh*ow)
	for ch := 0; ch < c; ch++ {
		for y := 0; y < oh; y++ {
			for x := 0; x < ow; x++ {
				i := (ch*h+hOff+y)*w + wOff + x
				v := im.pixel(n*c*h*w, i)
				switch {
				case t.Mean != nil:
					v -= float64(t.Mean[i])
				case len(t.MeanValue) == 1:
					v -= t.MeanValue[0]
				case len(t.MeanValue) > 1:
					v -= t.MeanValue[ch]
				}
				ox := x
				if mirror {
					ox = ow - 1 - x
				}
				out[(ch*oh+y)*ow+ox] = v * scale
			}
		}
	}
	return out
}

// apply gives the oracle's values exactly, for bytes and floats, every
// kind of mean, mirrored or not, cropped at train and test time.
func TestApplyMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const n, c, h, w = 3, 3, 7, 9
	pix := &Images{N: n, C: c, H: h, W: w, Pix: make([]uint8, n*c*h*w)}
	flt := &Images{N: n, C: c, H: h, W: w, Float: make([]float32, n*c*h*w)}
	for i := range pix.Pix {
		pix.Pix[i] = uint8(r.IntN(256))
		flt.Float[i] = float32(r.NormFloat64())
	}
	meanImage := make([]float32, c*h*w)
	for i := range meanImage {
		meanImage[i] = float32(r.Float64() * 100)
	}
	transforms := []Transform{
		{Scale: 0.00390625},
		{Scale: 0.5, MeanValue: []float64{3.25}},
		{MeanValue: []float64{104, 117, 123}, Mirror: true},
		{Scale: 2, Mean: meanImage, Mirror: true},
		{Scale: 0.25, CropSize: 5, MeanValue: []float64{1, 2, 3}, Mirror: true},
		{CropSize: 4, Mean: meanImage},
	}
	for k, tf := range transforms {
		for _, im := range []*Images{pix, flt} {
			for _, train := range []bool{true, false} {
				oh, ow := tf.outSize(h, w)
				for img := 0; img < n; img++ {
					seed := uint64(100*k + img)
					want := refApply(&tf, im, img, train, rand.New(rand.NewPCG(seed, 1)))
					got32 := make([]float32, c*oh*ow)
					got64 := make([]float64, c*oh*ow)
					x32, x64 := newTransformer[float32](&tf), newTransformer[float64](&tf)
					x32.apply(im, img, train, rand.New(rand.NewPCG(seed, 1)), got32)
					x64.apply(im, img, train, rand.New(rand.NewPCG(seed, 1)), got64)
					for i := range want {
						if got32[i] != float32(want[i]) || got64[i] != want[i] {
							t.Fatalf("transform %d (%+v), bytes %v, train %v, image %d, element %d: got %v / %v, want %v",
								k, tf, im.Pix != nil, train, img, i, got32[i], got64[i], want[i])
						}
					}
				}
			}
		}
	}
}

// BenchmarkApplyMNIST is the LeNet data layer's host transform: a batch
// of 64 MNIST-sized images scaled by 1/256.
func BenchmarkApplyMNIST(b *testing.B) {
	im := &Images{N: 64, C: 1, H: 28, W: 28, Pix: make([]uint8, 64*784)}
	for i := range im.Pix {
		im.Pix[i] = uint8(i * 7)
	}
	tf := Transform{Scale: 0.00390625}
	out := make([]float32, 64*784)
	rng := rand.New(rand.NewPCG(1, 2))
	x := newTransformer[float32](&tf)
	b.SetBytes(64 * 784)
	for b.Loop() {
		for i := 0; i < 64; i++ {
			x.apply(im, i, true, rng, out[i*784:(i+1)*784])
		}
	}
}
