package data

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/gocaffe/gocaffe/caffe/blob"
)

// ErrNotYet marks source kinds GoCaffe knows about but does not read yet
// (Caffe LMDB and LevelDB databases).
var ErrNotYet = errors.New("not supported yet")

// Options configure a source opened from a spec.
type Options struct {
	Train     bool      // TRAIN phase: random crops
	Transform Transform // the data layer's transform_param
	Seed      uint64    // seeds crops and mirrors
	// Hint is the C, H, W the data layer expects before cropping, for
	// sources that cannot tell the image shape themselves.
	Hint [3]int
}

// Load reads the image set a spec names (see the package comment).
func Load(ctx context.Context, spec string, hint [3]int) (*Images, error) {
	scheme, rest, ok := strings.Cut(spec, ":")
	if !ok {
		if strings.HasSuffix(spec, ".parquet") {
			return LoadParquet(ctx, spec, ParquetOptions{Hint: hint})
		}
		return nil, fmt.Errorf("source %q: want mnist:DIR:train|test, parquet:PATH or a .parquet file", spec)
	}
	switch scheme {
	case "mnist":
		i := strings.LastIndexByte(rest, ':')
		if i < 0 {
			return nil, fmt.Errorf("source %q: want mnist:DIR:train or mnist:DIR:test (DIR may be empty)", spec)
		}
		im, err := LoadMNIST(rest[:i], rest[i+1:])
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", spec, err)
		}
		return im, nil
	case "parquet":
		path, query, _ := strings.Cut(rest, "?")
		opt := ParquetOptions{Hint: hint}
		if query != "" {
			q, err := url.ParseQuery(query)
			if err != nil {
				return nil, fmt.Errorf("source %q: %w", spec, err)
			}
			for k, v := range q {
				switch k {
				case "image":
					opt.ImageColumn = v[0]
				case "label":
					opt.LabelColumn = v[0]
				case "encoded":
					b, err := strconv.ParseBool(v[0])
					if err != nil {
						return nil, fmt.Errorf("source %q: encoded=%s: want true or false", spec, v[0])
					}
					opt.Encoded = b
				case "shape":
					parts := strings.Split(v[0], ",")
					if len(parts) != 3 {
						return nil, fmt.Errorf("source %q: shape=%s: want C,H,W", spec, v[0])
					}
					for j, p := range parts {
						d, err := strconv.Atoi(p)
						if err != nil || d <= 0 {
							return nil, fmt.Errorf("source %q: shape=%s: want C,H,W positive integers", spec, v[0])
						}
						opt.Shape[j] = d
					}
				default:
					return nil, fmt.Errorf("source %q: unknown option %q (known: image, label, shape, encoded)", spec, k)
				}
			}
		}
		return LoadParquet(ctx, path, opt)
	case "lmdb", "leveldb":
		return nil, fmt.Errorf("source %q: Caffe %s databases: %w", spec, strings.ToUpper(scheme), ErrNotYet)
	}
	if strings.HasSuffix(spec, ".parquet") {
		return LoadParquet(ctx, spec, ParquetOptions{Hint: hint})
	}
	return nil, fmt.Errorf("source %q: unknown kind %q (want mnist:DIR:train|test, parquet:PATH or a .parquet file)", spec, scheme)
}

// Open loads the image set a spec names and returns a source over it.
func Open[T blob.Float](ctx context.Context, spec string, opt Options) (*Source[T], error) {
	im, err := Load(ctx, spec, opt.Hint)
	if err != nil {
		return nil, err
	}
	s, err := NewSource[T](im, opt.Transform, opt.Train, opt.Seed)
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", spec, err)
	}
	return s, nil
}
