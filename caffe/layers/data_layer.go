package layers

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/db"
	"github.com/gocaffe/gocaffe/caffe/imgcodec"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// newData builds Caffe's Data layer: tops data (batch_size, C, H, W) and
// optionally label (batch_size), read from the LMDB or LevelDB database
// data_param names. As in Caffe, the image shape comes from the database's
// first usable record (after transform_param's crop_size). The layer is fed
// like MemoryData: caffe/data.Attach opens the database as its source (or a
// Spark rank attaches its part of it).
func newData[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetDataParam()
	if p == nil || p.GetSource() == "" {
		return nil, fmt.Errorf("data_param.source is required")
	}
	batch := int(p.GetBatchSize())
	if batch <= 0 {
		return nil, fmt.Errorf("data_param batch_size must be positive, got %d", batch)
	}
	tp := ctx.Param.GetTransformParam()
	if tp.GetForceColor() && tp.GetForceGray() {
		return nil, fmt.Errorf("transform_param: force_color and force_gray cannot both be set")
	}
	c, h, w, err := PeekDatumShape(p.GetBackend(), p.GetSource(), tp)
	if err != nil {
		return nil, err
	}
	if cs := int(tp.GetCropSize()); cs > 0 {
		if cs > h || cs > w {
			return nil, fmt.Errorf("crop_size %d is larger than the %d×%d images of %s", cs, h, w, p.GetSource())
		}
		h, w = cs, cs
	}
	return &memoryData[T]{counts: counts{0, 0, 1, 2}, name: ctx.Param.GetName(), typ: "Data",
		shape: [4]int{batch, c, h, w}}, nil
}

// peekMax bounds how many unusable records the shape peek skips.
const peekMax = 1000

// PeekDatumShape returns the C, H, W of the first record of a database that
// decodes, as the Data layer's top takes it (encoded images decoded as
// transform_param's force_color/force_gray say; the data source counts and
// reports the unusable records). The Spark shim asks for it through goexec
// db-split -shape.
func PeekDatumShape(b caffepb.DataParameter_DB, path string, tp *caffepb.TransformationParameter) (c, h, w int, err error) {
	d, err := db.Open(b, path)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("data_param.source: %w", err)
	}
	defer d.Close()
	cur, err := d.NewCursor()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("data_param.source %s: %w", path, err)
	}
	defer cur.Close()
	var firstErr error
	for i := 0; cur.Valid() && i < peekMax; i++ {
		c, h, w, err = datumShape(cur.Value(), tp)
		if err == nil {
			return c, h, w, nil
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("key %q: %w", cur.Key(), err)
		}
		if err := cur.Next(); err != nil {
			return 0, 0, 0, fmt.Errorf("data_param.source %s: %w", path, err)
		}
	}
	if firstErr == nil {
		firstErr = errors.New("no records")
	}
	return 0, 0, 0, fmt.Errorf("data_param.source %s %s: no usable record to take the image shape from: %w", db.Name(b), path, firstErr)
}

func datumShape(v []byte, tp *caffepb.TransformationParameter) (c, h, w int, err error) {
	var d caffepb.Datum
	if err := proto.Unmarshal(v, &d); err != nil {
		return 0, 0, 0, fmt.Errorf("not a Datum: %w", err)
	}
	if d.GetEncoded() {
		img, err := imgcodec.Decode(d.GetData())
		if err != nil {
			return 0, 0, 0, fmt.Errorf("encoded image: %w", err)
		}
		want := 0
		switch {
		case tp.GetForceColor():
			want = 3
		case tp.GetForceGray():
			want = 1
		}
		return imgcodec.Channels(img, want), img.Bounds().Dy(), img.Bounds().Dx(), nil
	}
	c, h, w = int(d.GetChannels()), int(d.GetHeight()), int(d.GetWidth())
	if c <= 0 || h <= 0 || w <= 0 {
		return 0, 0, 0, fmt.Errorf("Datum shape %d×%d×%d", c, h, w)
	}
	return c, h, w, nil
}
