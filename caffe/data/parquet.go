package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/gocaffe/gocaffe/arrowio"
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
	// Encoded says the image bytes are PNG or JPEG (CaffeOnSpark's
	// image_encoded) for files without a boolean "encoded" column; with one,
	// each row's flag decides.
	Encoded bool
	// Mem allocates the decoding's Arrow memory, all freed before
	// LoadParquet returns; nil means memory.DefaultAllocator.
	Mem memory.Allocator
}

// LoadParquet reads a Parquet file, or every *.parquet file of a directory
// (as Spark writes a DataFrame) in name order. The image column holds raw
// C×H×W bytes (binary or list<uint8>), PNG or JPEG bytes (decoded as
// CaffeOnSpark's ImageDataFrame is: see ParquetOptions.Encoded), or numbers
// (a list of any numeric type); the label column holds integers, floats or
// numeric strings. Decoding is arrowio's, the same as on Spark.
func LoadParquet(ctx context.Context, path string, opt ParquetOptions) (*Images, error) {
	if opt.ImageColumn == "" {
		opt.ImageColumn = "data"
	}
	if opt.LabelColumn == "" {
		opt.LabelColumn = "label"
	}
	files, err := parquetFiles(path)
	if err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	shape := opt.Shape
	if shape == [3]int{} {
		// The data's own dimensions (channels/height/width columns, decoded
		// images) fill whatever the layer leaves at zero.
		shape = opt.Hint
	}
	spec := arrowio.Spec{Fields: []arrowio.Field{
		{Name: "data", Column: opt.ImageColumn, Kind: arrowio.Image, Shape: shape[:],
			ChannelsColumn: "channels", HeightColumn: "height", WidthColumn: "width",
			EncodedColumn: "encoded", Encoded: opt.Encoded},
		{Name: "label", Column: opt.LabelColumn, Kind: arrowio.Scalar},
	}}
	mem := opt.Mem
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	b, err := arrowio.NewBuilder(mem, spec)
	if err != nil {
		return nil, fmt.Errorf("parquet %s: %w", path, err)
	}
	defer b.Release()
	for _, f := range files {
		if err := appendParquet(ctx, b, f, mem); err != nil {
			return nil, fmt.Errorf("parquet %s: %w", f, err)
		}
	}
	if b.Rows() == 0 {
		return nil, fmt.Errorf("parquet %s: no rows", path)
	}
	ds, err := b.Finish()
	if err != nil {
		return nil, fmt.Errorf("parquet %s: %w", path, err)
	}
	defer ds.Release()
	im, err := imagesOf(ds)
	if err != nil {
		return nil, fmt.Errorf("parquet %s: %w", path, err)
	}
	return im, nil
}

// parquetFiles returns path itself, or the *.parquet files in directory
// path (Spark's part files; hidden and _-prefixed files skipped).
func parquetFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() && strings.HasSuffix(n, ".parquet") && !strings.HasPrefix(n, ".") && !strings.HasPrefix(n, "_") {
			files = append(files, filepath.Join(path, n))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("directory %s holds no .parquet files", path)
	}
	slices.Sort(files)
	return files, nil
}

// appendParquet decodes every record batch of one file into b.
func appendParquet(ctx context.Context, b *arrowio.Builder, path string, mem memory.Allocator) error {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return err
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 14}, mem)
	if err != nil {
		return err
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer rr.Release()
	for rr.Next() {
		if err := b.Append(ctx, rr.RecordBatch()); err != nil {
			return err
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// imagesOf copies a decoded (data, label) dataset into an image set.
func imagesOf(ds *arrowio.Dataset) (*Images, error) {
	f := ds.Fields()[0]
	if len(f.Shape) != 3 {
		// A 1-D numeric row whose length fixed the shape: C values of 1×1.
		if len(f.Shape) != 1 {
			return nil, fmt.Errorf("image shape %v: want C, H, W", f.Shape)
		}
		f.Shape = []int{f.Shape[0], 1, 1}
	}
	n := ds.Len()
	per := f.Shape[0] * f.Shape[1] * f.Shape[2]
	im := &Images{N: n, C: f.Shape[0], H: f.Shape[1], W: f.Shape[2], Labels: make([]float32, n)}
	if f.Bytes {
		im.Pix = make([]uint8, 0, n*per)
	} else {
		im.Float = make([]float32, 0, n*per)
	}
	for i := 0; i < n; i++ {
		u8, f32 := ds.Sample(0, i)
		im.Pix = append(im.Pix, u8...)
		im.Float = append(im.Float, f32...)
		_, l := ds.Sample(1, i)
		im.Labels[i] = l[0]
	}
	return im, im.Validate()
}
