package layers

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/hdf5io"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// hdf5Data is Caffe's HDF5Data layer: hdf5_data_param.source lists HDF5
// files, one a line; each top is filled from the dataset named like it (any
// integer or float type, read as float), all of a file's datasets having the
// same first dimension. Rows are read in order, file after file, wrapping at
// the end, one file in memory at a time; with shuffle the files' order and
// each file's rows are shuffled (again at every pass), as in Caffe. A top's
// shape is batch_size then its dataset's other dimensions.
type hdf5Data[T blob.Float] struct {
	counts
	noBlobs[T]
	ctx     layer.Context
	batch   int
	shuffle bool
	files   []string // as the list names them
	order   []int    // files in reading order
	fileAt  int      // index into order of the loaded file
	sets    []hdf5io.Dataset
	rows    []int // the loaded file's rows in reading order
	row     int   // next index into rows
	sizes   []int // per top: values per row
}

func newHDF5Data[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetHdf5DataParam()
	if p.GetSource() == "" {
		return nil, fmt.Errorf("hdf5_data_param.source (the list of HDF5 files) is required")
	}
	if p.GetBatchSize() == 0 {
		return nil, fmt.Errorf("hdf5_data_param.batch_size must be positive")
	}
	f, err := os.Open(p.GetSource())
	if err != nil {
		return nil, fmt.Errorf("hdf5_data_param.source: %w", err)
	}
	defer f.Close()
	var files []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			files = append(files, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("hdf5_data_param.source %s: %w", p.GetSource(), err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("hdf5_data_param.source %s lists no HDF5 file", p.GetSource())
	}
	l := &hdf5Data[T]{counts: counts{0, 0, 1, -1}, ctx: ctx, batch: int(p.GetBatchSize()), shuffle: p.GetShuffle(), files: files}
	l.order = make([]int, len(files))
	for i := range l.order {
		l.order[i] = i
	}
	return l, nil
}

// load reads the file at order[i] and lays out its rows.
func (l *hdf5Data[T]) load(i int) error {
	path := l.files[l.order[i]]
	sets, err := hdf5io.Read(path, l.ctx.Param.GetTop())
	if err != nil {
		return err
	}
	tops := l.ctx.Param.GetTop()
	for k, s := range sets {
		if s.Rows() == 0 {
			return fmt.Errorf("HDF5 file %s: dataset %q has no rows", path, tops[k])
		}
		if s.Rows() != sets[0].Rows() {
			return fmt.Errorf("HDF5 file %s: dataset %q has %d rows, dataset %q %d (all tops share the first dimension)",
				path, tops[k], s.Rows(), tops[0], sets[0].Rows())
		}
		if l.sizes != nil && len(s.Data)/s.Rows() != l.sizes[k] {
			return fmt.Errorf("HDF5 file %s: dataset %q has rows of shape %v, the first file's had %d values",
				path, tops[k], s.Shape[1:], l.sizes[k])
		}
	}
	l.sets, l.fileAt, l.row = sets, i, 0
	l.rows = make([]int, sets[0].Rows())
	for r := range l.rows {
		l.rows[r] = r
	}
	if l.shuffle {
		l.ctx.Rand.Shuffle(len(l.rows), func(a, b int) { l.rows[a], l.rows[b] = l.rows[b], l.rows[a] })
	}
	return nil
}

func (l *hdf5Data[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	if l.shuffle {
		l.ctx.Rand.Shuffle(len(l.order), func(a, b int) { l.order[a], l.order[b] = l.order[b], l.order[a] })
	}
	if err := l.load(0); err != nil {
		return err
	}
	l.sizes = make([]int, len(top))
	for k, s := range l.sets {
		l.sizes[k] = len(s.Data) / s.Rows()
		top[k].Reshape(append([]int{l.batch}, s.Shape[1:]...)...)
	}
	return nil
}

// Reshape keeps the shapes Setup took from the first file.
func (l *hdf5Data[T]) Reshape(bottom, top []*blob.Blob[T]) error { return nil }

func (l *hdf5Data[T]) Forward(bottom, top []*blob.Blob[T]) error {
	outs := make([][]T, len(top))
	for k, t := range top {
		outs[k] = t.MutableHostData()
	}
	for i := 0; i < l.batch; i++ {
		if l.row == len(l.rows) {
			if len(l.order) == 1 { // the one file stays in memory
				l.row = 0
				if l.shuffle {
					l.ctx.Rand.Shuffle(len(l.rows), func(a, b int) { l.rows[a], l.rows[b] = l.rows[b], l.rows[a] })
				}
			} else {
				next := (l.fileAt + 1) % len(l.order)
				if next == 0 && l.shuffle {
					l.ctx.Rand.Shuffle(len(l.order), func(a, b int) { l.order[a], l.order[b] = l.order[b], l.order[a] })
				}
				if err := l.load(next); err != nil {
					return err
				}
			}
		}
		r := l.rows[l.row]
		for k, s := range l.sets {
			n := l.sizes[k]
			dst := outs[k][i*n : (i+1)*n]
			for j, v := range s.Data[r*n : (r+1)*n] {
				dst[j] = T(v)
			}
		}
		l.row++
	}
	return nil
}

// Backward does nothing: the layer has no bottoms.
func (l *hdf5Data[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	return nil
}

// hdf5Output is Caffe's HDF5Output layer: it writes its two bottoms to
// hdf5_output_param.file_name as datasets "data" and "label" (float32). Caffe
// writes the datasets at every Forward into a file it truncated at setup, so
// a second Forward fails there on the existing datasets; here the file is
// rewritten at every Forward with all the rows seen so far (the first axis
// grows by each batch).
type hdf5Output[T blob.Float] struct {
	counts
	noBlobs[T]
	path  string
	sets  [2]hdf5io.Dataset
	shape [2][]int // per bottom, a row's shape
}

func newHDF5Output[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetHdf5OutputParam()
	if p.GetFileName() == "" {
		return nil, fmt.Errorf("hdf5_output_param.file_name is required")
	}
	return &hdf5Output[T]{counts: counts{2, 2, 0, 0}, path: p.GetFileName()}, nil
}

func (l *hdf5Output[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	// Caffe creates (truncates) the file at setup: an unwritable path fails here.
	f, err := os.Create(l.path)
	if err != nil {
		return fmt.Errorf("hdf5_output_param.file_name: %w", err)
	}
	return f.Close()
}

func (l *hdf5Output[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	if len(bottom[0].Shape()) == 0 || len(bottom[1].Shape()) == 0 || bottom[0].Shape()[0] != bottom[1].Shape()[0] {
		return fmt.Errorf("bottoms of shapes %v and %v: data and label need the same first dimension", bottom[0].Shape(), bottom[1].Shape())
	}
	return nil
}

func (l *hdf5Output[T]) Forward(bottom, top []*blob.Blob[T]) error {
	for k, b := range bottom {
		row := b.Shape()[1:]
		if l.shape[k] == nil {
			l.shape[k] = append([]int{}, row...)
		} else if fmt.Sprint(l.shape[k]) != fmt.Sprint(row) {
			return fmt.Errorf("bottom %d: rows of shape %v after rows of shape %v", k, row, l.shape[k])
		}
		for _, v := range b.HostData() {
			l.sets[k].Data = append(l.sets[k].Data, float32(v))
		}
		l.sets[k].Shape = append([]int{len(l.sets[k].Data) / max(1, prodInts(row))}, row...)
	}
	return hdf5io.Write(l.path, []string{"data", "label"}, l.sets[:])
}

func prodInts(s []int) int {
	n := 1
	for _, v := range s {
		n *= v
	}
	return n
}

// Backward does nothing: the layer has no gradient.
func (l *hdf5Output[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	return nil
}
