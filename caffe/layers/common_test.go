package layers

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/caffe/layer/layertest"
	"github.com/gocaffe/gocaffe/kernels"
	"google.golang.org/protobuf/encoding/prototext"
)

// parse reads a LayerParameter from prototext.
func parse(t testing.TB, text string) *caffepb.LayerParameter {
	t.Helper()
	p := &caffepb.LayerParameter{}
	if err := prototext.Unmarshal([]byte(text), p); err != nil {
		t.Fatalf("parse %q: %v", text, err)
	}
	if p.Name == nil {
		p.Name = p.Type
	}
	return p
}

// opts configures how a test layer is built.
type opts struct {
	phase  caffepb.Phase
	rng    *rand.Rand
	device kernels.Device // nil: the CPU
}

// build constructs a layer in T through the standard registry.
func build[T blob.Float](t testing.TB, text string, o ...opts) layer.Layer[T] {
	t.Helper()
	l, err := tryBuild[T](t, text, o...)
	if err != nil {
		t.Fatalf("build %q: %v", text, err)
	}
	return l
}

func tryBuild[T blob.Float](t testing.TB, text string, o ...opts) (layer.Layer[T], error) {
	t.Helper()
	r, err := Standard()
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	ctx := layer.Context{Param: parse(t, text), Phase: caffepb.Phase_TRAIN, Rand: layertest.NewRand(77)}
	if len(o) > 0 {
		ctx.Phase = o[0].phase
		if o[0].rng != nil {
			ctx.Rand = o[0].rng
		}
		ctx.Device = o[0].device
	}
	return layer.New[T](r, ctx)
}

// setup builds a float64 layer and sets it up on bottom with nTop tops.
func setup(t testing.TB, text string, bottom []*blob.Blob[float64], nTop int, o ...opts) (layer.Layer[float64], []*blob.Blob[float64]) {
	t.Helper()
	l := build[float64](t, text, o...)
	top := layertest.Tops[float64](nTop)
	if err := layertest.SetupReshape(l, bottom, top); err != nil {
		t.Fatalf("setup %q: %v", text, err)
	}
	return l, top
}

// forward sets up a float64 layer and runs Forward once.
func forward(t testing.TB, text string, bottom []*blob.Blob[float64], nTop int, o ...opts) (layer.Layer[float64], []*blob.Blob[float64]) {
	t.Helper()
	l, top := setup(t, text, bottom, nTop, o...)
	if err := l.Forward(bottom, top); err != nil {
		t.Fatalf("forward %q: %v", text, err)
	}
	return l, top
}

// gradCheck builds the layer in float64 and runs the gradient checker.
func gradCheck(t *testing.T, c layertest.Checker, text string, bottom []*blob.Blob[float64], nTop int, o ...opts) {
	t.Helper()
	l := build[float64](t, text, o...)
	c.Check(t, l, bottom, layertest.Tops[float64](nTop))
}

// precision builds the layer in both precisions and compares them.
func precision(t *testing.T, p layertest.Precision, text string, bottom []*blob.Blob[float64], nTop int, o ...opts) {
	t.Helper()
	l32 := build[float32](t, text, o...)
	l64 := build[float64](t, text, o...)
	p.Check(t, l32, l64, bottom, nTop)
}

// blobOf returns a float64 blob with the given shape and values.
func blobOf(shape []int, vals ...float64) *blob.Blob[float64] {
	b := blob.New[float64](shape...)
	copy(b.Data(), vals)
	return b
}

// bl lists blobs.
func bl(b ...*blob.Blob[float64]) []*blob.Blob[float64] { return b }

// rnd is a seeded random source for test data.
func rnd(seed uint64) *rand.Rand { return layertest.NewRand(seed) }

// gauss returns a float64 blob of N(0,1) data.
func gauss(seed uint64, shape ...int) *blob.Blob[float64] {
	return layertest.Gaussian[float64](rnd(seed), 0, 1, shape...)
}

// awayFrom returns N(0,1) data nudged at least gap away from each kink.
func awayFrom(seed uint64, gap float64, kinks []float64, shape ...int) *blob.Blob[float64] {
	b := gauss(seed, shape...)
	d := b.Data()
	for i := range d {
		for _, k := range kinks {
			if diff := d[i] - k; diff < gap && diff > -gap {
				if diff >= 0 {
					d[i] = k + gap + diff
				} else {
					d[i] = k - gap + diff
				}
			}
		}
	}
	return b
}

// wantErr runs f and fails unless it returns an error containing substr.
func wantErr(t *testing.T, what string, err error, substr string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want one mentioning %q", what, substr)
		return
	}
	if !strings.Contains(err.Error(), substr) {
		t.Errorf("%s: error %q does not mention %q", what, err, substr)
	}
}

// setupErr builds (float64) and sets up a layer, returning the first error.
func setupErr(t *testing.T, text string, bottom []*blob.Blob[float64], nTop int, o ...opts) error {
	t.Helper()
	l, err := tryBuild[float64](t, text, o...)
	if err != nil {
		return err
	}
	return layertest.SetupReshape(l, bottom, layertest.Tops[float64](nTop))
}

// reseedable is a random source that can be rewound, so a random layer
// (Dropout) draws the same values on every Forward of a gradient check.
type reseedable struct {
	seed uint64
	pcg  *rand.PCG
	rng  *rand.Rand
}

func newReseedable(seed uint64) *reseedable {
	p := rand.NewPCG(seed, 1)
	return &reseedable{seed: seed, pcg: p, rng: rand.New(p)}
}

func (r *reseedable) reset() { r.pcg.Seed(r.seed, 1) }

// ctxFor returns a TRAIN context for p with a fixed random source.
func ctxFor(p *caffepb.LayerParameter) layer.Context {
	return layer.Context{Param: p, Phase: caffepb.Phase_TRAIN, Rand: layertest.NewRand(77)}
}

// bl32 lists float32 blobs.
func bl32(b ...*blob.Blob[float32]) []*blob.Blob[float32] { return b }
