package data

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// ParquetOptions say which columns of a Parquet file hold the images and
// labels, and the image shape when the file does not carry it.
type ParquetOptions struct {
	ImageColumn string // default "data"
	LabelColumn string // default "label"
	// Shape is C, H, W of each image. When zero it is read from integer
	// columns "channels", "height", "width" (CaffeOnSpark's DataFrame
	// layout), else taken from Hint.
	Shape [3]int
	// Hint is the shape the data layer expects (used last).
	Hint [3]int
}

// LoadParquet reads a whole Parquet file whose image column holds raw
// C×H×W bytes (binary) or float values (list of float/double), and whose
// label column holds integers or floats.
func LoadParquet(ctx context.Context, path string, opt ParquetOptions) (*Images, error) {
	if opt.ImageColumn == "" {
		opt.ImageColumn = "data"
	}
	if opt.LabelColumn == "" {
		opt.LabelColumn = "label"
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	defer f.Close()
	tbl, err := pqarrow.ReadTable(ctx, f, nil, pqarrow.ArrowReadProperties{BatchSize: 1 << 14}, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("parquet %s: %w", path, err)
	}
	defer tbl.Release()
	im, err := imagesFromTable(tbl, opt)
	if err != nil {
		return nil, fmt.Errorf("parquet %s: %w", path, err)
	}
	return im, nil
}

func column(tbl arrow.Table, name string) (*arrow.Chunked, error) {
	idx := tbl.Schema().FieldIndices(name)
	if len(idx) == 0 {
		var names []string
		for _, f := range tbl.Schema().Fields() {
			names = append(names, f.Name)
		}
		return nil, fmt.Errorf("no column %q (columns: %v)", name, names)
	}
	return tbl.Column(idx[0]).Data(), nil
}

// firstInt returns row 0 of an integer column, or 0 if absent.
func firstInt(tbl arrow.Table, name string) int {
	col, err := column(tbl, name)
	if err != nil || col.Len() == 0 {
		return 0
	}
	for _, ch := range col.Chunks() {
		if ch.Len() == 0 {
			continue
		}
		switch a := ch.(type) {
		case *array.Int32:
			return int(a.Value(0))
		case *array.Int64:
			return int(a.Value(0))
		}
		return 0
	}
	return 0
}

func imagesFromTable(tbl arrow.Table, opt ParquetOptions) (*Images, error) {
	if enc, err := column(tbl, "encoded"); err == nil {
		for _, ch := range enc.Chunks() {
			if b, ok := ch.(*array.Boolean); ok {
				for i := 0; i < b.Len(); i++ {
					if b.IsValid(i) && b.Value(i) {
						return nil, fmt.Errorf("column \"encoded\" marks PNG/JPEG images: %w (write raw pixels, e.g. mnist2parquet's plain schema)", ErrNotYet)
					}
				}
			}
		}
	}
	imgCol, err := column(tbl, opt.ImageColumn)
	if err != nil {
		return nil, err
	}
	lblCol, err := column(tbl, opt.LabelColumn)
	if err != nil {
		return nil, err
	}
	n := int(tbl.NumRows())
	if n == 0 {
		return nil, fmt.Errorf("no rows")
	}
	shape := opt.Shape
	if shape[0] == 0 {
		shape = [3]int{firstInt(tbl, "channels"), firstInt(tbl, "height"), firstInt(tbl, "width")}
	}
	if shape[0] == 0 || shape[1] == 0 || shape[2] == 0 {
		shape = opt.Hint
	}
	if shape[0] <= 0 || shape[1] <= 0 || shape[2] <= 0 {
		return nil, fmt.Errorf("image shape unknown: give shape=C,H,W in the source spec")
	}
	per := shape[0] * shape[1] * shape[2]
	im := &Images{N: n, C: shape[0], H: shape[1], W: shape[2], Labels: make([]float32, 0, n)}
	row := 0
	for _, ch := range imgCol.Chunks() {
		switch a := ch.(type) {
		case array.BinaryLike:
			if im.Pix == nil {
				im.Pix = make([]uint8, 0, n*per)
			}
			for i := 0; i < a.Len(); i++ {
				b := a.(interface{ Value(int) []byte }).Value(i)
				if a.IsNull(i) || len(b) != per {
					return nil, fmt.Errorf("row %d: image has %d bytes, want %d (%d×%d×%d raw pixels)", row+i, len(b), per, shape[0], shape[1], shape[2])
				}
				im.Pix = append(im.Pix, b...)
			}
		case array.ListLike:
			vals := a.ListValues()
			if _, ok := vals.(*array.Uint8); ok && im.Pix == nil {
				im.Pix = make([]uint8, 0, n*per)
			} else if !ok && im.Float == nil {
				im.Float = make([]float32, 0, n*per)
			}
			for i := 0; i < a.Len(); i++ {
				s, e := a.ValueOffsets(i)
				if a.IsNull(i) || int(e-s) != per {
					return nil, fmt.Errorf("row %d: image has %d values, want %d", row+i, e-s, per)
				}
				switch v := vals.(type) {
				case *array.Uint8:
					im.Pix = append(im.Pix, v.Uint8Values()[s:e]...)
				case *array.Float32:
					im.Float = append(im.Float, v.Float32Values()[s:e]...)
				case *array.Float64:
					for _, x := range v.Float64Values()[s:e] {
						im.Float = append(im.Float, float32(x))
					}
				default:
					return nil, fmt.Errorf("image column %q: list of %s, want uint8, float or double", opt.ImageColumn, vals.DataType())
				}
			}
		default:
			return nil, fmt.Errorf("image column %q has type %s, want binary (raw bytes) or a list of uint8, float or double", opt.ImageColumn, ch.DataType())
		}
		row += ch.Len()
	}
	if im.Pix != nil && im.Float != nil {
		return nil, fmt.Errorf("image column %q mixes binary and list chunks", opt.ImageColumn)
	}
	for _, ch := range lblCol.Chunks() {
		for i := 0; i < ch.Len(); i++ {
			if ch.IsNull(i) {
				return nil, fmt.Errorf("row %d: null label", len(im.Labels))
			}
			var v float64
			switch a := ch.(type) {
			case *array.Int32:
				v = float64(a.Value(i))
			case *array.Int64:
				v = float64(a.Value(i))
			case *array.Float32:
				v = float64(a.Value(i))
			case *array.Float64:
				v = a.Value(i)
			case *array.Int8:
				v = float64(a.Value(i))
			case *array.Int16:
				v = float64(a.Value(i))
			case *array.String: // CaffeOnSpark's ImageDataFrame keeps labels as strings
				f, err := strconv.ParseFloat(strings.TrimSpace(a.Value(i)), 64)
				if err != nil {
					return nil, fmt.Errorf("row %d: label %q is not a number", len(im.Labels), a.Value(i))
				}
				v = f
			default:
				return nil, fmt.Errorf("label column %q has type %s, want an integer or float", opt.LabelColumn, ch.DataType())
			}
			if math.IsNaN(v) {
				return nil, fmt.Errorf("row %d: label is NaN", len(im.Labels))
			}
			im.Labels = append(im.Labels, float32(v))
		}
	}
	return im, im.Validate()
}
