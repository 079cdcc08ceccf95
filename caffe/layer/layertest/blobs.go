// Package layertest holds helpers for testing layers: random blobs, a
// finite-difference gradient checker in float64 (as Caffe's GradientChecker)
// and a comparison of a layer's float32 and float64 paths.
//
// It depends only on package blob; layers are taken through the Layer
// interface below, whose method set equals caffe/layer.Layer's, so any
// layer.Layer[T] can be passed.
package layertest

import (
	"math/rand/v2"

	"github.com/gocaffe/gocaffe/caffe/blob"
)

// Layer is the method set of caffe/layer.Layer, repeated here so this
// package needs nothing beyond package blob.
type Layer[T blob.Float] interface {
	Setup(bottom, top []*blob.Blob[T]) error
	Reshape(bottom, top []*blob.Blob[T]) error
	Forward(bottom, top []*blob.Blob[T]) error
	Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error
	Blobs() []*blob.Blob[T]
}

// NewRand returns a deterministic random source for seed.
func NewRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Gaussian returns a blob of the given shape filled with N(mean, std²) data.
func Gaussian[T blob.Float](rng *rand.Rand, mean, std float64, shape ...int) *blob.Blob[T] {
	b := blob.New[T](shape...)
	FillGaussian(b, rng, mean, std)
	return b
}

// Uniform returns a blob of the given shape filled with U[lo, hi) data.
func Uniform[T blob.Float](rng *rand.Rand, lo, hi float64, shape ...int) *blob.Blob[T] {
	b := blob.New[T](shape...)
	FillUniform(b, rng, lo, hi)
	return b
}

// FillGaussian overwrites b's data with N(mean, std²) samples.
func FillGaussian[T blob.Float](b *blob.Blob[T], rng *rand.Rand, mean, std float64) {
	d := b.Data()
	for i := range d {
		d[i] = T(mean + std*rng.NormFloat64())
	}
}

// FillUniform overwrites b's data with U[lo, hi) samples.
func FillUniform[T blob.Float](b *blob.Blob[T], rng *rand.Rand, lo, hi float64) {
	d := b.Data()
	for i := range d {
		d[i] = T(lo + (hi-lo)*rng.Float64())
	}
}

// FillLabels overwrites b's data with integer labels in [0, classes).
func FillLabels[T blob.Float](b *blob.Blob[T], rng *rand.Rand, classes int) {
	d := b.Data()
	for i := range d {
		d[i] = T(rng.IntN(classes))
	}
}

// Labels returns a blob of the given shape holding labels in [0, classes).
func Labels[T blob.Float](rng *rand.Rand, classes int, shape ...int) *blob.Blob[T] {
	b := blob.New[T](shape...)
	FillLabels(b, rng, classes)
	return b
}

// Tops returns n empty blobs for a layer to shape.
func Tops[T blob.Float](n int) []*blob.Blob[T] {
	t := make([]*blob.Blob[T], n)
	for i := range t {
		t[i] = blob.New[T]()
	}
	return t
}

// Convert returns a copy of b (shape, data and diff) in another precision.
func Convert[To, From blob.Float](b *blob.Blob[From]) *blob.Blob[To] {
	out := blob.New[To](b.Shape()...)
	od, bd := out.Data(), b.Data()
	for i := range bd {
		od[i] = To(bd[i])
	}
	of, bf := out.Diff(), b.Diff()
	for i := range bf {
		of[i] = To(bf[i])
	}
	return out
}

// CopyData copies src's data into dst, converting precision; the counts
// must match.
func CopyData[To, From blob.Float](dst *blob.Blob[To], src *blob.Blob[From]) {
	dd, sd := dst.Data(), src.Data()
	for i := range sd {
		dd[i] = To(sd[i])
	}
}

// RoundToFloat32 rounds every data value of b to the nearest float32, so a
// float64 reference run sees the same inputs as a float32 run.
func RoundToFloat32(b *blob.Blob[float64]) {
	d := b.Data()
	for i := range d {
		d[i] = float64(float32(d[i]))
	}
}

// SetupReshape calls l.Setup and then l.Reshape, as a net does.
func SetupReshape[T blob.Float](l Layer[T], bottom, top []*blob.Blob[T]) error {
	if err := l.Setup(bottom, top); err != nil {
		return err
	}
	return l.Reshape(bottom, top)
}
