package arrowio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// FieldInfo describes one decoded field of a Dataset.
type FieldInfo struct {
	// Name is the field's (top's) name.
	Name string
	// Kind is how the column was read.
	Kind Kind
	// Shape is the per-sample shape, the same for every sample.
	Shape []int
	// Bytes reports uint8 storage (images); otherwise float32.
	Bytes bool
}

// size returns the number of elements per sample.
func (f FieldInfo) size() int {
	n := 1
	for _, d := range f.Shape {
		n *= d
	}
	return n
}

// fieldData holds one field's values for the rows of one chunk, either a
// view into the chunk's record batch or storage of its own.
type fieldData struct {
	u8  []byte
	f32 []float32
	buf *memory.Buffer // owned storage; nil for a view
}

// storage is a field's element type.
type storage int8

const (
	storeU8 storage = iota + 1
	storeF32
)

func (s storage) String() string {
	if s == storeU8 {
		return "uint8"
	}
	return "float32"
}

func storageOf(fd fieldData) storage {
	switch {
	case fd.u8 != nil:
		return storeU8
	case fd.f32 != nil:
		return storeF32
	}
	return 0
}

// chunk is one decoded record batch.
type chunk struct {
	rows   int
	rec    arrow.RecordBatch // retained while a field views it; else nil
	fields []fieldData
	ids    []string // the rows' `id` column (sample ids), when the batch has one
}

func (c *chunk) release() {
	for i := range c.fields {
		if c.fields[i].buf != nil {
			c.fields[i].buf.Release()
			c.fields[i].buf = nil
		}
	}
	if c.rec != nil {
		c.rec.Release()
		c.rec = nil
	}
}

// Dataset is a partition's decoded samples, held in memory: every field of
// every row, ready to be copied into batches. It is reference counted like
// Arrow arrays: Release frees its memory when the count drops to zero.
// A Dataset is immutable and safe for concurrent readers.
type Dataset struct {
	refs   atomic.Int64
	fields []FieldInfo
	chunks []chunk
	starts []int // starts[i] is the first row of chunks[i]
	rows   int
	bytes  int64 // owned storage
	held   int64 // buffers of the record batches kept for views
	views  int64 // sample bytes used in place
	// unusable counts the rows skipped (WithSkipUnusable); firstUnusable
	// names the first MaxNamedUnusable of them.
	unusable      int
	firstUnusable []*RowError
}

// MaxNamedUnusable is how many skipped rows a Dataset names.
const MaxNamedUnusable = 20

// Unusable returns how many rows were skipped as unusable
// (WithSkipUnusable) and the first MaxNamedUnusable of them, in row order.
func (d *Dataset) Unusable() (int, []*RowError) { return d.unusable, d.firstUnusable }

// Len returns the number of samples.
func (d *Dataset) Len() int { return d.rows }

// Fields returns the decoded fields in spec order. The caller must not
// modify them.
func (d *Dataset) Fields() []FieldInfo { return d.fields }

// Bytes returns the memory the dataset holds: its own storage plus the
// buffers of the record batches it keeps for in-place use.
func (d *Dataset) Bytes() int64 { return d.bytes + d.held }

// ZeroCopyBytes returns how many sample bytes are used in place in Arrow
// buffers, without a copy.
func (d *Dataset) ZeroCopyBytes() int64 { return d.views }

// Retain adds a reference.
func (d *Dataset) Retain() { d.refs.Add(1) }

// Release drops a reference, freeing the memory with the last one.
func (d *Dataset) Release() {
	if d.refs.Add(-1) == 0 {
		for i := range d.chunks {
			d.chunks[i].release()
		}
		d.chunks = nil
	}
}

// locate returns the chunk holding row i and the row's index within it.
func (d *Dataset) locate(i int) (*chunk, int) {
	c := sort.Search(len(d.starts), func(k int) bool { return d.starts[k] > i }) - 1
	return &d.chunks[c], i - d.starts[c]
}

// Sample returns field k of row i, untransformed: uint8 values for byte
// fields (FieldInfo.Bytes: images), float32 values otherwise; exactly one
// is non-nil. The slices view the dataset's memory: read them only, and
// only until the dataset's last Release.
func (d *Dataset) Sample(k, i int) ([]byte, []float32) { return d.sample(k, i) }

// SampleID returns row i's sample id (its string `id` column, as
// CaffeOnSpark's), or "" when the partition has none.
func (d *Dataset) SampleID(i int) string {
	if i < 0 || i >= d.rows {
		return ""
	}
	c, r := d.locate(i)
	if c.ids == nil {
		return ""
	}
	return c.ids[r]
}

// sample returns field k of row i; exactly one result is non-nil.
func (d *Dataset) sample(k, i int) ([]byte, []float32) {
	c, r := d.locate(i)
	n := d.fields[k].size()
	fd := &c.fields[k]
	if d.fields[k].Bytes {
		return fd.u8[r*n : (r+1)*n], nil
	}
	return nil, fd.f32[r*n : (r+1)*n]
}

// Option configures a Builder.
type Option func(*Builder)

// WithWorkers sets how many goroutines decode encoded images; the default,
// zero, uses GOMAXPROCS.
func WithWorkers(n int) Option { return func(b *Builder) { b.workers = n } }

// WithSkipUnusable has rows whose image does not decode or does not fit the
// field (its size, its channels, no bytes) skipped and counted instead of
// failing the stream: every field of such a row is dropped, and the Dataset
// reports them (Dataset.Unusable). Other bad values (a label that is no
// number, a malformed batch) still fail it.
func WithSkipUnusable(on bool) Option { return func(b *Builder) { b.skip = on } }

// WithBodySizeLimit sets the largest IPC message body (one record batch's
// buffers) ReadStream accepts; the default is 1 GiB.
func WithBodySizeLimit(n int64) Option { return func(b *Builder) { b.maxBody = n } }

// Builder decodes record batches, one at a time, into a Dataset.
type Builder struct {
	mem     memory.Allocator
	spec    Spec
	workers int
	maxBody int64
	shapes  [][]int   // resolved per-field shapes; nil until known
	store   []storage // per-field element type; 0 until known
	chunks  []chunk
	rows    int // rows kept
	in      int // rows appended, skipped ones included (RowError.Row counts these)
	skip    bool
	badMu   sync.Mutex
	bad     map[int]*RowError // this batch's unusable rows (skip)

	unusable      int
	firstUnusable []*RowError
}

// NewBuilder returns a builder that decodes batches as spec says, taking
// all memory it keeps from mem.
func NewBuilder(mem memory.Allocator, spec Spec, opts ...Option) (*Builder, error) {
	if mem == nil {
		return nil, errors.New("arrowio: nil allocator")
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	b := &Builder{mem: mem, spec: spec, maxBody: 1 << 30, shapes: make([][]int, len(spec.Fields)), store: make([]storage, len(spec.Fields))}
	for _, o := range opts {
		o(b)
	}
	for k, f := range spec.Fields {
		if f.Kind == Scalar {
			// A scalar is one value; CoSData writes its shape as 1×1×1.
			shape := append([]int{}, f.Shape...)
			for i, d := range shape {
				if d == 0 {
					shape[i] = 1
				}
				if shape[i] != 1 {
					return nil, fmt.Errorf("arrowio spec: field %q: scalar with shape %v", f.name(), f.Shape)
				}
			}
			b.shapes[k] = shape
		} else if len(f.Shape) > 0 && !slices.Contains(f.Shape, 0) {
			b.shapes[k] = slices.Clone(f.Shape)
		}
	}
	return b, nil
}

// Rows returns the number of rows appended so far.
func (b *Builder) Rows() int { return b.rows }

// Append decodes one record batch. The builder retains the batch when it
// uses its buffers in place; the caller keeps its own reference. A batch
// that fails to decode leaves the builder as it was.
func (b *Builder) Append(ctx context.Context, rec arrow.RecordBatch) (err error) {
	rows := int(rec.NumRows())
	c := chunk{rows: rows, fields: make([]fieldData, len(b.spec.Fields))}
	defer func() {
		// arrow-go slices buffers by offsets it read from the wire; a
		// malformed batch that slipped past validation must not take
		// goexec down.
		if r := recover(); r != nil {
			c.release()
			err = fmt.Errorf("arrowio: malformed record batch at row %d: %v", b.in, r)
		}
	}()
	shapes := make([][]int, len(b.shapes))
	copy(shapes, b.shapes)
	stores := append([]storage(nil), b.store...)
	keep := false
	if b.skip {
		b.bad = map[int]*RowError{}
	}
	for k := range b.spec.Fields {
		f := &b.spec.Fields[k]
		fd, view, shape, err := b.decodeField(ctx, rec, f, shapes[k])
		if err != nil {
			c.release()
			var re *RowError
			if errors.As(err, &re) && re.ID == "" {
				re.ID = rowID(rec, re.Row-b.in)
			}
			return fmt.Errorf("arrowio: field %q: %w", f.name(), err)
		}
		if st := storageOf(fd); st != 0 {
			if b.store[k] != 0 && b.store[k] != st {
				c.release()
				if fd.buf != nil {
					fd.buf.Release()
				}
				return fmt.Errorf("arrowio: field %q: column %q changed from %s to %s values between batches", f.name(), f.Column, b.store[k], st)
			}
			stores[k] = st
		}
		c.fields[k] = fd
		shapes[k] = shape
		keep = keep || view
	}
	if _, ok := column(rec, IDColumn); ok {
		c.ids = make([]string, rows)
		for i := range c.ids {
			c.ids[i] = rowID(rec, i)
		}
	}
	if len(b.bad) > 0 {
		b.dropUnusable(rec, &c)
		keep = false
		for k := range c.fields {
			keep = keep || (c.fields[k].buf == nil && storageOf(c.fields[k]) != 0)
		}
	}
	b.in += rows
	if c.rows == 0 { // every row unusable
		c.release()
		return nil
	}
	if keep {
		rec.Retain()
		c.rec = rec
	}
	b.shapes, b.store = shapes, stores
	b.chunks = append(b.chunks, c)
	b.rows += c.rows
	return nil
}

// dropUnusable records the rows of b.bad and removes them from every field
// of c, copying the kept rows into storage of c's own.
func (b *Builder) dropUnusable(rec arrow.RecordBatch, c *chunk) {
	rows := c.rows
	bad := make([]int, 0, len(b.bad))
	for i := range b.bad {
		bad = append(bad, i)
	}
	sort.Ints(bad)
	for _, i := range bad {
		b.unusable++
		if len(b.firstUnusable) < MaxNamedUnusable {
			re := b.bad[i]
			re.ID = rowID(rec, i)
			b.firstUnusable = append(b.firstUnusable, re)
		}
	}
	keep := make([]int, 0, rows-len(bad))
	for i := 0; i < rows; i++ {
		if _, no := b.bad[i]; !no {
			keep = append(keep, i)
		}
	}
	for k := range c.fields {
		fd := c.fields[k]
		var nf fieldData
		switch {
		case fd.u8 != nil:
			size := len(fd.u8) / rows
			nf = b.newU8(len(keep) * size)
			for j, i := range keep {
				copy(nf.u8[j*size:(j+1)*size], fd.u8[i*size:(i+1)*size])
			}
		case fd.f32 != nil:
			size := len(fd.f32) / rows
			nf = b.newF32(len(keep) * size)
			for j, i := range keep {
				copy(nf.f32[j*size:(j+1)*size], fd.f32[i*size:(i+1)*size])
			}
		}
		if fd.buf != nil {
			fd.buf.Release()
		}
		c.fields[k] = nf
	}
	if c.ids != nil {
		ids := make([]string, len(keep))
		for j, i := range keep {
			ids[j] = c.ids[i]
		}
		c.ids = ids
	}
	c.rows = len(keep)
	b.bad = nil
}

// Finish returns the dataset of all appended batches (with one reference);
// the builder is then empty, and only Release may follow.
func (b *Builder) Finish() (*Dataset, error) {
	d := &Dataset{chunks: b.chunks, unusable: b.unusable, firstUnusable: b.firstUnusable}
	d.refs.Store(1)
	for k, f := range b.spec.Fields {
		shape := b.shapes[k]
		if shape == nil {
			if b.rows > 0 {
				d.Release()
				return nil, fmt.Errorf("arrowio: field %q: shape never resolved", f.name())
			}
			shape = slices.Clone(f.Shape)
		}
		bytes := b.store[k] == storeU8 || (b.store[k] == 0 && f.Kind.isImage())
		d.fields = append(d.fields, FieldInfo{Name: f.name(), Kind: f.Kind, Shape: shape, Bytes: bytes})
	}
	for i := range d.chunks {
		if d.chunks[i].rec != nil {
			for _, col := range d.chunks[i].rec.Columns() {
				d.held += dataBytes(col.Data())
			}
		}
		d.starts = append(d.starts, d.rows)
		d.rows += d.chunks[i].rows
		for k := range d.chunks[i].fields {
			fd := &d.chunks[i].fields[k]
			n := int64(len(fd.u8) + 4*len(fd.f32))
			if fd.buf != nil {
				d.bytes += n
			} else {
				d.views += n
			}
		}
	}
	b.chunks, b.rows = nil, 0
	return d, nil
}

// dataBytes sums the sizes of an array's buffers, children included.
func dataBytes(d arrow.ArrayData) int64 {
	var n int64
	for _, b := range d.Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		n += dataBytes(c)
	}
	return n
}

// Release frees batches appended but not finished.
func (b *Builder) Release() {
	for i := range b.chunks {
		b.chunks[i].release()
	}
	b.chunks, b.rows = nil, 0
}

// ReadStream decodes an Arrow IPC stream into a Dataset, with every buffer
// taken from mem. A malformed stream gives an error, never a panic.
func ReadStream(ctx context.Context, r io.Reader, mem memory.Allocator, spec Spec, opts ...Option) (ds *Dataset, err error) {
	b, err := NewBuilder(mem, spec, opts...)
	if err != nil {
		return nil, err
	}
	defer b.Release()
	defer func() {
		if p := recover(); p != nil {
			ds, err = nil, fmt.Errorf("arrowio: malformed IPC stream after %d rows: %v", b.Rows(), p)
		}
	}()
	rdr, err := ipc.NewReader(&verifyingReader{r: r}, ipc.WithAllocator(mem), ipc.WithBodySizeLimit(b.maxBody))
	if err != nil {
		return nil, fmt.Errorf("arrowio: IPC stream: %w", err)
	}
	defer rdr.Release()
	for rdr.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := b.Append(ctx, rdr.RecordBatch()); err != nil {
			return nil, err
		}
	}
	if err := rdr.Err(); err != nil {
		return nil, fmt.Errorf("arrowio: IPC stream after %d rows: %w", b.Rows(), err)
	}
	return b.Finish()
}
