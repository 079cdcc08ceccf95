package arrowio

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
)

// The sampler is what data layers draw their batches from.
var (
	_ layer.BatchSource[float32] = (*Sampler[float32])(nil)
	_ layer.BatchSource[float64] = (*Sampler[float64])(nil)
)

// Data layers the way CaffeOnSpark's users write them (MemoryData over an
// ImageDataFrame, CoSData over a DataFrameSource).
const cosNet = `
name: "LeNet"
layer {
  name: "data" type: "MemoryData" top: "data" top: "label"
  include { phase: TRAIN }
  source_class: "com.yahoo.ml.caffe.ImageDataFrame"
  memory_data_param { source: "hdfs:///mnist/train_df" batch_size: 4 channels: 1 height: 3 width: 2 }
  transform_param { scale: 0.5 }
}
layer {
  name: "cos" type: "CoSData" top: "data" top: "label"
  include { phase: TEST }
  source_class: "com.yahoo.ml.caffe.DataFrameSource"
  cos_data_param {
    source: "hdfs:///mnist/test_df" batch_size: 2 shuffle: true
    top { name: "data" type: RAW_IMAGE channels: 1 height: 3 width: 2 transform_param { scale: 0.25 } }
    top { name: "label" type: STRING channels: 1 height: 1 width: 1 }
  }
}
layer { name: "lmdb" type: "MemoryData" top: "data" top: "label" source_class: "com.yahoo.ml.caffe.LMDB"
  memory_data_param { source: "x" batch_size: 1 channels: 1 height: 1 width: 1 } }
layer { name: "meanfile" type: "MemoryData" top: "data" top: "label"
  memory_data_param { source: "x" batch_size: 1 channels: 1 height: 1 width: 1 }
  transform_param { mean_file: "mean.binaryproto" } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 1 } }
`

func layersByName(t *testing.T) map[string]*caffepb.LayerParameter {
	t.Helper()
	net, err := prototxt.ParseNet("cos.prototxt", []byte(cosNet))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*caffepb.LayerParameter{}
	for _, l := range net.GetLayer() {
		m[l.GetName()] = l
	}
	return m
}

func TestFromLayer(t *testing.T) {
	mem := checkedMem(t)
	layers := layersByName(t)
	// The CaffeOnSpark MNIST DataFrame: string labels, raw bytes.
	data := func() []byte {
		return stream(t, mem, makeRecord(t, mem, 5,
			stringCol("id", func(r int) string { return strconv.Itoa(r) }),
			stringCol("label", func(r int) string { return strconv.Itoa(r % 10) }),
			int32Col("channels", func(int) int32 { return 1 }),
			int32Col("height", func(int) int32 { return 3 }),
			int32Col("width", func(int) int32 { return 2 }),
			testCol{"encoded", arrow.FixedWidthTypes.Boolean, func(b array.Builder, r int) { b.(*array.BooleanBuilder).Append(false) }},
			binaryCol("data", func(r int) []byte { return rawImage(r, 6) })))
	}
	for _, tc := range []struct {
		layer string
		batch int
		scale float32
	}{{"data", 4, 0.5}, {"cos", 2, 0.25}} {
		src, err := FromLayer(layers[tc.layer], false)
		if err != nil {
			t.Fatalf("%s: %v", tc.layer, err)
		}
		if src.BatchSize != tc.batch {
			t.Errorf("%s: batch %d, want %d", tc.layer, src.BatchSize, tc.batch)
		}
		ds := read(t, mem, data(), src.Spec)
		s, err := NewSampler[float32](ds, src.Spec, SamplerOptions{BatchSize: src.BatchSize})
		ds.Release()
		if err != nil {
			t.Fatal(err)
		}
		tops := newTops(s, 2)
		if err := s.Next(tops); err != nil {
			t.Fatal(err)
		}
		for b := 0; b < tc.batch; b++ {
			for i := 0; i < 6; i++ {
				if got, want := tops[0].Data()[b*6+i], tc.scale*float32(pixel(b, i)); got != want {
					t.Fatalf("%s: sample %d pixel %d = %v, want %v", tc.layer, b, i, got, want)
				}
			}
			if tops[1].Data()[b] != float32(b) {
				t.Errorf("%s: label %d = %v", tc.layer, b, tops[1].Data()[b])
			}
		}
		s.Close()
	}
	if src, _ := FromLayer(layers["cos"], false); !src.Shuffle {
		t.Error("cos_data_param.shuffle lost")
	}

	// LMDB Datums come from the shim as an ImageDataFrame.
	if src, err := FromLayer(layers["lmdb"], false); err != nil || src.Spec.Fields[0].Column != "data" || src.Spec.Fields[0].ChannelsColumn != "channels" {
		t.Errorf("LMDB: %+v, %v", src, err)
	}
	if _, err := FromLayer(layers["meanfile"], false); !errors.Is(err, ErrNotYet) || !strings.Contains(err.Error(), "mean.binaryproto") {
		t.Errorf("mean_file: %v", err)
	}
	if _, err := FromLayer(layers["ip"], false); err == nil || !strings.Contains(err.Error(), "InnerProduct") {
		t.Errorf("InnerProduct: %v", err)
	}
}

func TestImageDataFrameFloatArrays(t *testing.T) {
	// A MemoryData layer over a DataFrame whose data column holds floats.
	mem := checkedMem(t)
	rec := makeRecord(t, mem, 3, stringCol("label", func(r int) string { return "2" }),
		float32ListCol("data", func(r int) []float32 { return []float32{float32(r), 0.5, -1, 2, 3, 4} }))
	ds := read(t, mem, stream(t, mem, rec), ImageDataFrameSpec(1, 2, 3, false, false))
	defer ds.Release()
	if f := ds.Fields()[0]; f.Bytes || f.size() != 6 {
		t.Errorf("field %+v: want float32 samples of 6", f)
	}
	if _, f := ds.sample(0, 2); f[0] != 2 || f[1] != 0.5 {
		t.Errorf("row 2 = %v", f)
	}
}
