package layers

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

func cosLayer(t *testing.T, text string) (layer.Layer[float32], error) {
	t.Helper()
	p := &caffepb.LayerParameter{}
	if err := prototext.Unmarshal([]byte(text), p); err != nil {
		t.Fatal(err)
	}
	return newCoSData[float32](layer.Context{Param: p})
}

func TestCoSDataShapes(t *testing.T) {
	l, err := cosLayer(t, `name: "data" type: "CoSData" top: "data" top: "label" top: "vec" top: "seq"
	cos_data_param { batch_size: 8
	  top { name: "data" type: RAW_IMAGE channels: 3 height: 32 width: 32 out_height: 28 out_width: 28 }
	  top { name: "label" type: INT channels: 1 height: 1 width: 1 sample_num_axes: 1 }
	  top { name: "vec" type: FLOAT_ARRAY channels: 5 sample_num_axes: 2 height: 4 }
	  top { name: "seq" type: FLOAT_ARRAY channels: 20 sample_num_axes: 1 transpose: true } }`)
	if err != nil {
		t.Fatal(err)
	}
	top := []*blob.Blob[float32]{blob.New[float32](), blob.New[float32](), blob.New[float32](), blob.New[float32]()}
	if err := l.Setup(nil, top); err != nil {
		t.Fatal(err)
	}
	if err := l.Reshape(nil, top); err != nil {
		t.Fatal(err)
	}
	want := [][]int{{8, 3, 28, 28}, {8, 1}, {8, 5, 4}, {20, 8}}
	for i, w := range want {
		if !slices.Equal(top[i].Shape(), w) {
			t.Errorf("top %d shape %v, want %v", i, top[i].Shape(), w)
		}
	}
	if err := l.Forward(nil, top); !errors.Is(err, ErrNoSource) || !strings.Contains(err.Error(), `"data"`) {
		t.Errorf("Forward without a source: %v", err)
	}
	src := cosTestSource(7)
	l.(layer.Fed[float32]).SetSource(src)
	if err := l.Forward(nil, top); err != nil {
		t.Fatal(err)
	}
	if top[3].Data()[159] != 7 {
		t.Error("Forward did not take the batch from the source")
	}
}

type cosTestSource float32

func (f cosTestSource) Next(top []*blob.Blob[float32]) error {
	for _, b := range top {
		d := b.Data()
		for i := range d {
			d[i] = float32(f)
		}
	}
	return nil
}

func TestCoSDataErrors(t *testing.T) {
	cases := map[string]string{
		"2 tops":                      `name: "d" top: "a" cos_data_param { batch_size: 4 top { channels: 1 height: 1 width: 1 } top { channels: 1 height: 1 width: 1 } }`,
		"batch_size must be positive": `name: "d" top: "a" cos_data_param { top { channels: 1 height: 1 width: 1 } }`,
		"needs cos_data_param":        `name: "d" top: "a"`,
		"transpose needs":             `name: "d" top: "a" cos_data_param { batch_size: 4 top { channels: 3 transpose: true } }`,
		"must be positive":            `name: "d" top: "a" cos_data_param { batch_size: 4 top { channels: 3 height: 2 } }`,
		"at most 3":                   `name: "d" top: "a" cos_data_param { batch_size: 4 top { channels: 3 height: 2 width: 2 sample_num_axes: 4 } }`,
	}
	for want, text := range cases {
		if _, err := cosLayer(t, text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
}
