package layers

import (
	"errors"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/caffe/layer/layertest"
)

func TestInput(t *testing.T) {
	_, top := forward(t, `type: "Input" input_param { shape { dim: 2 dim: 3 } shape { dim: 4 } }`, nil, 2)
	if !blob.ShapeEquals(top[0].Shape(), []int{2, 3}) || !blob.ShapeEquals(top[1].Shape(), []int{4}) {
		t.Errorf("input shapes %v %v, want [2 3] [4]", top[0].Shape(), top[1].Shape())
	}
	_, top = forward(t, `type: "Input" input_param { shape { dim: 5 dim: 1 } }`, nil, 2)
	if !blob.ShapeEquals(top[1].Shape(), []int{5, 1}) {
		t.Errorf("one shape for two tops: top 1 shape %v", top[1].Shape())
	}
	// Forward leaves the caller's data alone.
	l, top := setup(t, `type: "Input" input_param { shape { dim: 3 } }`, nil, 1)
	copy(top[0].Data(), []float64{1, 2, 3})
	if err := l.Forward(nil, top); err != nil {
		t.Fatal(err)
	}
	layertest.Near(t, "input data", top[0].Data(), []float64{1, 2, 3}, 0)
	wantErr(t, "shape count", setupErr(t, `type: "Input" input_param { shape { dim: 1 } shape { dim: 2 } }`, nil, 3), "3 tops")
	wantErr(t, "negative dim", setupErr(t, `type: "Input" input_param { shape { dim: -1 } }`, nil, 1), "dimension")
	wantErr(t, "with bottom", setupErr(t, `type: "Input"`, bl(gauss(1, 2)), 1), "bottoms")
}

func TestDummyData(t *testing.T) {
	text := `type: "DummyData" dummy_data_param {
	  shape { dim: 2 dim: 3 } shape { dim: 4 }
	  data_filler { type: "constant" value: 7 } data_filler { type: "gaussian" std: 2 } }`
	l, top := forward(t, text, nil, 2)
	layertest.Near(t, "constant top", top[0].Data(), []float64{7, 7, 7, 7, 7, 7}, 0)
	first := append([]float64(nil), top[1].Data()...)
	top[0].Data()[0] = 0
	if err := l.Forward(nil, top); err != nil {
		t.Fatal(err)
	}
	if top[0].Data()[0] != 0 {
		t.Error("constant top refilled on Forward; Caffe fills it once")
	}
	if top[1].Data()[0] == first[0] {
		t.Error("gaussian top not refilled on Forward")
	}
	// Legacy 4-D shape, no filler: zeros.
	_, top = forward(t, `type: "DummyData" dummy_data_param { num: 2 channels: 1 height: 2 width: 3 }`, nil, 1)
	if !blob.ShapeEquals(top[0].Shape(), []int{2, 1, 2, 3}) {
		t.Errorf("legacy shape %v", top[0].Shape())
	}
	for _, v := range top[0].Data() {
		if v != 0 {
			t.Fatalf("default filler gave %v, want 0", v)
		}
	}
	wantErr(t, "3 fillers for 2 tops", setupErr(t, `type: "DummyData" dummy_data_param { shape { dim: 1 }
	  data_filler { } data_filler { } data_filler { } }`, nil, 2), "data_fillers")
	wantErr(t, "no shape", setupErr(t, `type: "DummyData"`, nil, 1), "shapes")
	wantErr(t, "bad filler", setupErr(t, `type: "DummyData" dummy_data_param { shape { dim: 1 } data_filler { type: "nope" } }`, nil, 1), "nope")
}

// countingSource writes the batch number into the data and label.
type countingSource struct{ n int }

func (s *countingSource) Next(top []*blob.Blob[float64]) error {
	s.n++
	if s.n > 2 {
		return errors.New("exhausted")
	}
	for _, t := range top {
		for i := range t.Data() {
			t.Data()[i] = float64(s.n)
		}
	}
	return nil
}

func TestMemoryData(t *testing.T) {
	text := `name: "mnist" type: "MemoryData" memory_data_param { batch_size: 4 channels: 1 height: 2 width: 3 }`
	l, top := setup(t, text, nil, 2)
	if !blob.ShapeEquals(top[0].Shape(), []int{4, 1, 2, 3}) || !blob.ShapeEquals(top[1].Shape(), []int{4}) {
		t.Errorf("shapes %v %v, want [4 1 2 3] [4]", top[0].Shape(), top[1].Shape())
	}
	err := l.Forward(nil, top)
	if !errors.Is(err, ErrNoSource) {
		t.Errorf("forward without source: %v, want ErrNoSource", err)
	}
	wantErr(t, "no source", err, `"mnist"`)
	fed, ok := l.(layer.Fed[float64])
	if !ok {
		t.Fatal("MemoryData does not implement layer.Fed")
	}
	src := &countingSource{}
	fed.SetSource(src)
	if err := l.Forward(nil, top); err != nil {
		t.Fatal(err)
	}
	if top[0].Data()[23] != 1 || top[1].Data()[3] != 1 {
		t.Error("source batch not written into the tops")
	}
	if err := l.Forward(nil, top); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "source error", l.Forward(nil, top), "exhausted")
	_, err = tryBuild[float32](t, `type: "MemoryData" memory_data_param { batch_size: 4 channels: 1 height: 0 width: 3 }`)
	wantErr(t, "zero height", err, "height")
	wantErr(t, "3 tops", setupErr(t, text, nil, 3), "tops")

	// crop_size: the source crops, the data top has the crop's size.
	_, top = setup(t, `type: "MemoryData" transform_param { crop_size: 2 } memory_data_param { batch_size: 4 channels: 3 height: 5 width: 6 }`, nil, 2)
	if !blob.ShapeEquals(top[0].Shape(), []int{4, 3, 2, 2}) {
		t.Errorf("cropped shape %v, want [4 3 2 2]", top[0].Shape())
	}
	_, err = tryBuild[float32](t, `type: "MemoryData" transform_param { crop_size: 6 } memory_data_param { batch_size: 4 channels: 1 height: 5 width: 6 }`)
	wantErr(t, "crop larger than the image", err, "crop_size 6 is larger than the 5×6")
}
