package arrowio

import (
	"errors"
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// CaffeOnSpark's data source classes, as written in a layer's source_class.
const (
	ClassImageDataFrame     = "com.yahoo.ml.caffe.ImageDataFrame"
	ClassDataFrameSource    = "com.yahoo.ml.caffe.DataFrameSource"
	ClassLMDB               = "com.yahoo.ml.caffe.LMDB"
	ClassSeqImageDataSource = "com.yahoo.ml.caffe.SeqImageDataSource"
)

// ErrNotYet marks data sources GoCaffe recognises but cannot read yet.
var ErrNotYet = errors.New("not supported yet")

// LayerSource is how a Spark-fed data layer's partitions decode.
type LayerSource struct {
	// Spec decodes the layer's Arrow columns, one field per top.
	Spec Spec
	// BatchSize is the layer's batch_size: per rank, as in CaffeOnSpark.
	BatchSize int
	// Shuffle is cos_data_param.shuffle (false for MemoryData).
	Shuffle bool
}

// FromLayer maps a data layer as CaffeOnSpark users write it onto a
// LayerSource:
//
//   - MemoryData with source_class com.yahoo.ml.caffe.ImageDataFrame,
//     com.yahoo.ml.caffe.LMDB or com.yahoo.ml.caffe.SeqImageDataSource (the
//     shim streams the Datums or the SequenceFiles' images in this schema) or
//     with none: CaffeOnSpark's ImageDataFrame schema (label, data and the
//     optional id, channels, height, width, encoded columns), shaped by
//     memory_data_param and encoded as image_encoded says; a numeric-list
//     data column is read as float arrays of that shape. transform_param
//     applies to the data top.
//   - CoSData (source_class com.yahoo.ml.caffe.DataFrameSource, or none):
//     one column per cos_data_param top, typed as the top says, each top
//     with its own transform_param.
//
// resize is CaffeOnSpark's -resize. Dataframe_column_select is applied by
// the Spark shim before the data is sent, and dataframe_format only names
// how Spark reads the source; neither matters here.
func FromLayer(lp *caffepb.LayerParameter, resize bool) (LayerSource, error) {
	name, class := lp.GetName(), lp.GetSourceClass()
	fail := func(format string, args ...any) (LayerSource, error) {
		return LayerSource{}, fmt.Errorf("data layer %q: %w", name, fmt.Errorf(format, args...))
	}
	switch class {
	case "", ClassImageDataFrame, ClassDataFrameSource:
	case ClassLMDB, ClassSeqImageDataSource:
		// The Spark shim streams the database's Datums, or the SequenceFiles'
		// images, as an ImageDataFrame (id, label, channels, height, width,
		// encoded, data C×H×W).
		if lp.GetType() != "MemoryData" {
			return fail("source_class %s goes with a MemoryData layer, not %s", class, lp.GetType())
		}
	default:
		return fail("unknown source_class %q (known: %s, %s)", class, ClassImageDataFrame, ClassDataFrameSource)
	}
	switch typ := lp.GetType(); typ {
	case "MemoryData":
		if class == ClassDataFrameSource {
			return fail("source_class %s goes with a CoSData layer, not MemoryData", class)
		}
		p := lp.GetMemoryDataParam()
		if p == nil {
			return fail("MemoryData without memory_data_param")
		}
		if p.GetBatchSize() == 0 {
			return fail("memory_data_param.batch_size must be positive")
		}
		tr, err := transform(lp.GetTransformParam())
		if err != nil {
			return fail("transform_param: %w", err)
		}
		spec := ImageDataFrameSpec(int(p.GetChannels()), int(p.GetHeight()), int(p.GetWidth()), p.GetImageEncoded(), resize)
		spec.Fields[0].Transform = tr
		if len(lp.GetTop()) == 2 {
			spec.Fields[0].Name, spec.Fields[1].Name = lp.GetTop()[0], lp.GetTop()[1]
		}
		if err := spec.Validate(); err != nil {
			return fail("%w", err)
		}
		return LayerSource{Spec: spec, BatchSize: int(p.GetBatchSize())}, nil
	case "CoSData":
		if class == ClassImageDataFrame || class == ClassLMDB || class == ClassSeqImageDataSource {
			return fail("source_class %s goes with a MemoryData layer, not CoSData", class)
		}
		p := lp.GetCosDataParam()
		if p == nil {
			return fail("CoSData without cos_data_param")
		}
		if p.GetBatchSize() == 0 {
			return fail("cos_data_param.batch_size must be positive")
		}
		var tops []CoSTop
		for i, t := range p.GetTop() {
			tr, err := transform(t.GetTransformParam())
			if err != nil {
				return fail("top %d (%q) transform_param: %w", i, t.GetName(), err)
			}
			if t.GetName() == "" {
				return fail("top %d has no name (it names the DataFrame column)", i)
			}
			tops = append(tops, CoSTop{
				Name: t.GetName(), Type: CoSType(t.GetType()),
				Channels: int(t.GetChannels()), Height: int(t.GetHeight()), Width: int(t.GetWidth()),
				SampleNumAxes: int(t.GetSampleNumAxes()), Transpose: t.GetTranspose(), Transform: tr,
			})
			if err := checkOutShape(t, tr); err != nil {
				return fail("top %q: %w", t.GetName(), err)
			}
		}
		if len(tops) == 0 {
			return fail("cos_data_param has no top")
		}
		spec, err := CoSDataSpec(tops, resize)
		if err != nil {
			return fail("%w", err)
		}
		return LayerSource{Spec: spec, BatchSize: int(p.GetBatchSize()), Shuffle: p.GetShuffle()}, nil
	default:
		return fail("type %q is not a Spark-fed data layer (MemoryData or CoSData)", typ)
	}
}

// transform maps Caffe's transform_param; nil for none.
func transform(p *caffepb.TransformationParameter) (*Transform, error) {
	if p == nil {
		return nil, nil
	}
	if p.GetMeanFile() != "" {
		return nil, fmt.Errorf("mean_file %q: %w (use mean_value)", p.GetMeanFile(), ErrNotYet)
	}
	if p.GetForceColor() || p.GetForceGray() {
		return nil, fmt.Errorf("force_color/force_gray: %w (set the layer's channels instead)", ErrNotYet)
	}
	return &Transform{
		Scale:      p.GetScale(),
		MeanValues: append([]float32(nil), p.GetMeanValue()...),
		CropSize:   int(p.GetCropSize()),
		Mirror:     p.GetMirror(),
	}, nil
}

// checkOutShape checks a CoSData top's declared post-transform dimensions
// against what its transform produces.
func checkOutShape(t *caffepb.CoSDataParameter_TopBlob, tr *Transform) error {
	oc, oh, ow := int(t.GetOutChannels()), int(t.GetOutHeight()), int(t.GetOutWidth())
	c, h, w := int(t.GetChannels()), int(t.GetHeight()), int(t.GetWidth())
	if tr != nil && tr.CropSize > 0 {
		h, w = tr.CropSize, tr.CropSize
	}
	if (oc != 0 && oc != c) || (oh != 0 && oh != h) || (ow != 0 && ow != w) {
		return fmt.Errorf("out_channels/out_height/out_width %d×%d×%d differ from the transformed %d×%d×%d", oc, oh, ow, c, h, w)
	}
	return nil
}
