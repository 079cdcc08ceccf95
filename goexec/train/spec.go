package train

import (
	"fmt"
	"strings"

	"github.com/gocaffe/gocaffe/arrowio"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// layerData is what a data layer's parameters say about decoding and
// sampling its Arrow partition.
type layerData struct {
	spec    arrowio.Spec
	batch   int
	shuffle bool
}

// dataOf maps a fed data layer (MemoryData or CoSData) onto an arrowio spec.
//
// MemoryData reads CaffeOnSpark's ImageDataFrame columns (label, data and
// the optional channels, height, width and encoded), which also covers
// GoCaffe's own MNIST Parquet (label int, data binary): the label may be an
// integer, float or numeric-string column, data raw or encoded bytes
// (image_encoded is the default when there is no encoded column). The
// JVM applies dataframe_column_select before the rows reach goexec.
// MemoryData walks its partition in order, as Caffe's does.
//
// CoSData reads one column per top, as CaffeOnSpark's DataFrameSource, with
// each top's transform_param; it shuffles when cos_data_param.shuffle is set.
//
// resize is CaffeOnSpark's -resize (the driver sends it with the partition):
// images whose size differs from the layer's are resampled to it.
func dataOf(lp *caffepb.LayerParameter, resize bool) (layerData, error) {
	switch lp.GetType() {
	case "MemoryData":
		mp := lp.GetMemoryDataParam()
		// The Spark shim streams an LMDB's Datums (com.yahoo.ml.caffe.LMDB,
		// and Caffe's Data layers) and SequenceFiles' images
		// (com.yahoo.ml.caffe.SeqImageDataSource) in the ImageDataFrame schema.
		if sc := lp.GetSourceClass(); sc != "" && !strings.HasSuffix(sc, "ImageDataFrame") && sc != arrowio.ClassLMDB && sc != arrowio.ClassSeqImageDataSource {
			return layerData{}, fmt.Errorf("layer %q: source_class %s cannot be fed from Arrow partitions (use %s, %s or %s)", lp.GetName(), lp.GetSourceClass(),
				arrowio.ClassImageDataFrame, arrowio.ClassLMDB, arrowio.ClassSeqImageDataSource)
		}
		spec := arrowio.ImageDataFrameSpec(int(mp.GetChannels()), int(mp.GetHeight()), int(mp.GetWidth()), mp.GetImageEncoded(), resize)
		tf, err := transformOf(lp.GetTransformParam())
		if err != nil {
			return layerData{}, fmt.Errorf("layer %q: %w", lp.GetName(), err)
		}
		spec.Fields[0].Transform = tf
		if err := spec.Validate(); err != nil {
			return layerData{}, fmt.Errorf("layer %q: %w", lp.GetName(), err)
		}
		return layerData{spec: spec, batch: int(mp.GetBatchSize())}, nil
	case "CoSData":
		cp := lp.GetCosDataParam()
		var tops []arrowio.CoSTop
		for _, t := range cp.GetTop() {
			tf, err := transformOf(t.GetTransformParam())
			if err != nil {
				return layerData{}, fmt.Errorf("layer %q: top %q: %w", lp.GetName(), t.GetName(), err)
			}
			tops = append(tops, arrowio.CoSTop{
				Name: t.GetName(), Type: arrowio.CoSType(t.GetType()),
				Channels: int(t.GetChannels()), Height: int(t.GetHeight()), Width: int(t.GetWidth()),
				SampleNumAxes: int(t.GetSampleNumAxes()), Transpose: t.GetTranspose(), Transform: tf,
			})
		}
		spec, err := arrowio.CoSDataSpec(tops, resize)
		if err != nil {
			return layerData{}, fmt.Errorf("layer %q: %w", lp.GetName(), err)
		}
		return layerData{spec: spec, batch: int(cp.GetBatchSize()), shuffle: cp.GetShuffle()}, nil
	}
	return layerData{}, fmt.Errorf("layer %q: type %q is not a data layer goexec feeds from Arrow partitions (MemoryData or CoSData)", lp.GetName(), lp.GetType())
}

// transformOf converts transform_param; nil when it does nothing.
func transformOf(p *caffepb.TransformationParameter) (*arrowio.Transform, error) {
	if p == nil {
		return nil, nil
	}
	if p.GetMeanFile() != "" && len(p.GetMeanValue()) > 0 {
		return nil, fmt.Errorf("transform_param: mean_file and mean_value cannot both be set")
	}
	// A mean_file's image comes with the partition (withMean).
	t := &arrowio.Transform{Scale: p.GetScale(), MeanValues: p.GetMeanValue(), CropSize: int(p.GetCropSize()), Mirror: p.GetMirror()}
	if t.Scale == 1 && len(t.MeanValues) == 0 && t.CropSize == 0 && !t.Mirror && p.GetMeanFile() == "" {
		return nil, nil
	}
	return t, nil
}
