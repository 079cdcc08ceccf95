package data

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"strings"
	"sync"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/db"
	"github.com/gocaffe/gocaffe/caffe/modelio"
	"github.com/gocaffe/gocaffe/caffe/network"
)

// Cache shares loaded image sets between the nets of one run (a train net
// and a test net naming the same file load it once). Safe for concurrent use.
type Cache struct {
	mu sync.Mutex
	m  map[string]*Images
}

// Load returns the cached image set for spec, loading it on first use.
func (c *Cache) Load(ctx context.Context, spec string, hint [3]int) (*Images, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if im, ok := c.m[spec]; ok {
		return im, nil
	}
	im, err := Load(ctx, spec, hint)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*Images{}
	}
	c.m[spec] = im
	return im, nil
}

// AttachOptions configure Attach.
type AttachOptions struct {
	// Source, when set, replaces the source of every data layer (goexec's -data).
	Source string
	// Seed seeds random crops and mirrors (mixed with each layer's name).
	Seed uint64
	// Cache shares loaded sets between nets; nil loads each time.
	Cache *Cache
	// SkipUnnamed leaves data layers without a source alone instead of
	// failing (for timing with synthetic data).
	SkipUnnamed bool
}

// Attached describes one source Attach connected.
type Attached struct {
	Layer  string // data layer name
	Source string // spec
	Images int    // images per epoch
}

// Attach opens the source of every data layer of n that takes one
// (layer.Fed: MemoryData, CoSData), reading the source spec from
// memory_data_param.source (or data_param.source) and the transform from
// transform_param, and attaches it.
func Attach[T blob.Float](ctx context.Context, n *network.Net[T], opt AttachOptions) ([]Attached, error) {
	var out []Attached
	for _, name := range n.FedLayers() {
		lp := n.LayerParams()[n.LayerIndex(name)]
		spec := opt.Source
		if spec == "" {
			spec = SourceOf(lp)
		}
		if spec == "" && opt.SkipUnnamed {
			continue
		}
		if spec == "" {
			return nil, fmt.Errorf("data layer %q: no source (set memory_data_param.source or pass -data)", name)
		}
		tf, err := TransformFromProto(lp.GetTransformParam(), LoadMeanFile)
		if err != nil {
			return nil, fmt.Errorf("data layer %q: %w", name, err)
		}
		h := fnv.New64a()
		h.Write([]byte(name))
		train := n.Phase() == caffepb.Phase_TRAIN
		if lp.GetType() == "ImageData" && opt.Source == "" {
			o := ImageListOptionsOf(lp.GetImageDataParam())
			o.Transform, o.Train, o.Seed = tf, train, opt.Seed^h.Sum64()
			src, err := OpenImageList[T](o)
			if err != nil {
				return nil, fmt.Errorf("data layer %q: %w", name, err)
			}
			if err := n.SetSource(name, NewPrefetch[T](ctx, src)); err != nil {
				return nil, err
			}
			out = append(out, Attached{Layer: name, Source: "images:" + o.List, Images: src.Len()})
			continue
		}
		if b, path, ok := databaseOf(lp); ok && opt.Source == "" {
			color, err := ColorModeOf(lp.GetTransformParam())
			if err != nil {
				return nil, fmt.Errorf("data layer %q: %w", name, err)
			}
			src, err := OpenDB[T](DBOptions{Backend: b, Path: path, Color: color, Transform: tf,
				Train: train, Seed: opt.Seed ^ h.Sum64()})
			if err != nil {
				return nil, fmt.Errorf("data layer %q: %w", name, err)
			}
			if err := n.SetSource(name, NewPrefetch[T](ctx, src)); err != nil {
				src.Close()
				return nil, err
			}
			out = append(out, Attached{Layer: name, Source: db.Name(b) + ":" + path, Images: src.Len()})
			continue
		}
		mp := lp.GetMemoryDataParam()
		hint := [3]int{int(mp.GetChannels()), int(mp.GetHeight()), int(mp.GetWidth())}
		var im *Images
		if opt.Cache != nil {
			im, err = opt.Cache.Load(ctx, spec, hint)
		} else {
			im, err = Load(ctx, spec, hint)
		}
		if err != nil {
			return nil, fmt.Errorf("data layer %q: %w", name, err)
		}
		src, err := NewSource[T](im, tf, train, opt.Seed^h.Sum64())
		if err != nil {
			return nil, fmt.Errorf("data layer %q: source %q: %w", name, spec, err)
		}
		if err := n.SetSource(name, src); err != nil {
			return nil, err
		}
		out = append(out, Attached{Layer: name, Source: spec, Images: im.N})
	}
	return out, nil
}

// SourceOf returns the source spec a data layer names.
func SourceOf(lp *caffepb.LayerParameter) string {
	if s := lp.GetMemoryDataParam().GetSource(); s != "" {
		return s
	}
	if s := lp.GetImageDataParam().GetSource(); s != "" {
		return s
	}
	return lp.GetDataParam().GetSource()
}

// databaseOf returns the database a data layer reads: Caffe's Data layer
// (data_param backend and source), or CaffeOnSpark's MemoryData layer with
// source_class com.yahoo.ml.caffe.LMDB (an LMDB path, "file:" allowed).
func databaseOf(lp *caffepb.LayerParameter) (db.Backend, string, bool) {
	if lp.GetType() == "Data" && !IsSpec(lp.GetDataParam().GetSource()) {
		return lp.GetDataParam().GetBackend(), lp.GetDataParam().GetSource(), true
	}
	if src := lp.GetMemoryDataParam().GetSource(); strings.HasSuffix(lp.GetSourceClass(), ".LMDB") && !IsSpec(src) {
		return db.LMDB, LocalPath(src), true
	}
	return 0, "", false
}

// LocalPath strips a "file:" scheme (file:/p, file:///p) from a path.
func LocalPath(p string) string {
	if rest, ok := strings.CutPrefix(p, "file://"); ok {
		return rest
	}
	if rest, ok := strings.CutPrefix(p, "file:"); ok {
		return rest
	}
	return p
}

// CheckDataLayers reports, before any net is built, data layers whose
// database is missing, naming the layer and the path.
func CheckDataLayers(np *caffepb.NetParameter) error {
	for _, lp := range np.GetLayer() {
		b, path, ok := databaseOf(lp)
		if !ok {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("layer %q: %s database %q: %w", lp.GetName(), db.Name(b), path, db.ErrMissing)
		}
	}
	return nil
}

// LoadMeanFile reads a mean image (a binary BlobProto, Caffe's mean_file).
func LoadMeanFile(path string) ([]float32, error) {
	bp, err := modelio.ReadBlobProto(path)
	if err != nil {
		return nil, err
	}
	out := MeanValues(bp)
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: empty mean blob", path)
	}
	return out, nil
}

// MeanValues is a mean image's values as float32: its data, or its
// double_data converted (nil when it holds neither).
func MeanValues(bp *caffepb.BlobProto) []float32 {
	if d := bp.GetData(); len(d) > 0 {
		return d
	}
	out := make([]float32, len(bp.GetDoubleData()))
	for i, v := range bp.GetDoubleData() {
		out[i] = float32(v)
	}
	return out
}

// IsSpec reports whether s names a source this package reads.
func IsSpec(s string) bool {
	return strings.HasPrefix(s, "mnist:") || strings.HasPrefix(s, "parquet:") || strings.HasSuffix(s, ".parquet")
}
