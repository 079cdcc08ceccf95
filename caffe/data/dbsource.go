package data

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/db"
)

// DefaultMaxBadShare is the share of a database's records that may be
// unusable (not a Datum, an image that does not decode, a shape unlike the
// first record's) before reading fails; unusable records are skipped.
const DefaultMaxBadShare = 0.01

// KeyRange is the part of a database a reader takes: keys >= Start and
// < End; a nil bound is open.
type KeyRange struct{ Start, End []byte }

func (r KeyRange) contains(k []byte) bool {
	return (r.Start == nil || bytes.Compare(k, r.Start) >= 0) && (r.End == nil || bytes.Compare(k, r.End) < 0)
}

// DBOptions configure a database source.
type DBOptions struct {
	Backend   db.Backend
	Path      string
	Color     ColorMode // how encoded images decode
	Transform Transform
	Train     bool   // TRAIN phase: random crops
	Seed      uint64 // seeds crops and mirrors
	Range     KeyRange
	// MaxBadShare overrides DefaultMaxBadShare when positive.
	MaxBadShare float64
	// Workers decode a batch's records in parallel (0: GOMAXPROCS).
	Workers int
}

// DBSource feeds batches from a Caffe LMDB or LevelDB database of Datums
// (Caffe's Data layer): records in key order, wrapping to the first at the
// end. Every record must have the shape of the first usable one.
type DBSource[T blob.Float] struct {
	opt     DBOptions
	d       db.DB
	cur     db.Cursor
	c, h, w int
	n       int // records in range
	maxBad  int
	bad     []string // keys of unusable records, first pass only
	badSeen map[string]bool
	epoch   int
	good    bool // a usable record was seen in this pass
	rng     *rand.Rand
	xf      transformer[T] // applies opt.Transform
}

// OpenDB opens a database source. It reads records from the start of the
// range until one is usable, to learn the image shape.
func OpenDB[T blob.Float](opt DBOptions) (_ *DBSource[T], err error) {
	d, err := db.Open(opt.Backend, opt.Path)
	if err != nil {
		return nil, err
	}
	s := &DBSource[T]{opt: opt, d: d, badSeen: map[string]bool{},
		rng: rand.New(rand.NewPCG(opt.Seed, 0x6462736f75726365))}
	s.xf = newTransformer[T](&s.opt.Transform)
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.cur, err = d.NewCursor(); err != nil {
		return nil, fmt.Errorf("%s: %w", opt.Path, err)
	}
	if s.n, err = s.count(); err != nil {
		return nil, err
	}
	if s.n == 0 {
		return nil, fmt.Errorf("%s %s: no records%s", db.Name(opt.Backend), opt.Path, opt.Range.describe())
	}
	share := opt.MaxBadShare
	if share <= 0 {
		share = DefaultMaxBadShare
	}
	s.maxBad = int(share * float64(s.n))
	if err := s.rewind(); err != nil {
		return nil, err
	}
	// Find the shape: the first usable record.
	for {
		im, err := s.read()
		if err == nil {
			s.c, s.h, s.w = im.C, im.H, im.W
			break
		}
		if !errors.As(err, new(badRecord)) {
			return nil, err
		}
		if err := s.advance(); err != nil {
			return nil, err
		}
		if s.epoch > 0 {
			return nil, s.badError()
		}
	}
	if err := s.rewind(); err != nil {
		return nil, err
	}
	if err := opt.Transform.check(s.c, s.h, s.w); err != nil {
		return nil, fmt.Errorf("%s: %w", opt.Path, err)
	}
	return s, nil
}

func (r KeyRange) describe() string {
	if r.Start == nil && r.End == nil {
		return ""
	}
	return fmt.Sprintf(" in key range [%q, %q)", r.Start, r.End)
}

// count returns the records in range.
func (s *DBSource[T]) count() (int, error) {
	if s.opt.Range.Start == nil && s.opt.Range.End == nil {
		n, err := s.d.Len()
		if err != nil {
			return 0, fmt.Errorf("%s: %w", s.opt.Path, err)
		}
		return n, nil
	}
	n := 0
	if err := s.seekStart(); err != nil {
		return 0, err
	}
	for s.cur.Valid() && s.opt.Range.contains(s.cur.Key()) {
		n++
		if err := s.cur.Next(); err != nil {
			return 0, fmt.Errorf("%s: %w", s.opt.Path, err)
		}
	}
	return n, nil
}

func (s *DBSource[T]) seekStart() error {
	if err := s.cur.Seek(s.opt.Range.Start); err != nil {
		return fmt.Errorf("%s: %w", s.opt.Path, err)
	}
	return nil
}

func (s *DBSource[T]) rewind() error {
	s.epoch, s.good = 0, false
	return s.seekStart()
}

// advance moves to the next record in range, wrapping to the start.
func (s *DBSource[T]) advance() error {
	wrapped, err := s.step()
	if err != nil || !wrapped {
		return err
	}
	return s.wrapped()
}

// step moves the cursor to the next record in range, to the first at the
// end; it reports whether it wrapped (wrapped then does the bookkeeping).
func (s *DBSource[T]) step() (bool, error) {
	if err := s.cur.Next(); err != nil {
		return false, fmt.Errorf("%s: %w", s.opt.Path, err)
	}
	if s.cur.Valid() && s.opt.Range.contains(s.cur.Key()) {
		return false, nil
	}
	return true, s.seekStart()
}

// wrapped ends a pass: one without a usable record is an error.
func (s *DBSource[T]) wrapped() error {
	s.epoch++
	if !s.good {
		return s.badError()
	}
	s.good = false
	return nil
}

type badRecord struct{ err error }

func (b badRecord) Error() string { return b.err.Error() }

// read decodes the record under the cursor; a badRecord error means the
// record is unusable (and was counted).
func (s *DBSource[T]) read() (*Images, error) {
	if !s.cur.Valid() {
		return nil, fmt.Errorf("%s: cursor past the end", s.opt.Path)
	}
	im, err := DecodeDatum(s.cur.Value(), s.opt.Color)
	return s.check(string(s.cur.Key()), im, err)
}

// check takes a decoded record (or its decoding error): a badRecord error
// means the record is unusable (and was counted).
func (s *DBSource[T]) check(k string, im *Images, err error) (*Images, error) {
	if err == nil && s.c != 0 && (im.C != s.c || im.H != s.h || im.W != s.w) {
		err = fmt.Errorf("image %d×%d×%d, the database's first is %d×%d×%d", im.C, im.H, im.W, s.c, s.h, s.w)
	}
	if err != nil {
		if !s.badSeen[k] {
			s.badSeen[k] = true
			s.bad = append(s.bad, fmt.Sprintf("key %q: %v", k, err))
		}
		if len(s.bad) > s.maxBad {
			return nil, s.badError()
		}
		return nil, badRecord{err}
	}
	s.good = true
	return im, nil
}

func (s *DBSource[T]) badError() error {
	first := s.bad[:min(3, len(s.bad))]
	return fmt.Errorf("%s %s: %d of %d records unusable (at most %d allowed), first: %s",
		db.Name(s.opt.Backend), s.opt.Path, len(s.bad), s.n, s.maxBad, strings.Join(first, "; "))
}

// Len returns the number of records read in one epoch.
func (s *DBSource[T]) Len() int { return s.n }

// Epoch returns how many times the source has wrapped around.
func (s *DBSource[T]) Epoch() int { return s.epoch }

// Bad returns the unusable records skipped so far, each "key "K": reason".
func (s *DBSource[T]) Bad() []string { return s.bad }

// ImageShape returns the C, H, W of the stored images (before transform).
func (s *DBSource[T]) ImageShape() (c, h, w int) { return s.c, s.h, s.w }

// Shape returns the C, H, W of one transformed image.
func (s *DBSource[T]) Shape() (c, h, w int) {
	oh, ow := s.opt.Transform.outSize(s.h, s.w)
	return s.c, oh, ow
}

// Next fills top[0] with the next transformed images and top[1], when
// present, with their labels, skipping unusable records.
func (s *DBSource[T]) Next(top []*blob.Blob[T]) error {
	if len(top) == 0 {
		return fmt.Errorf("data source: no top blobs to fill")
	}
	d := top[0]
	c, h, w := s.Shape()
	if d.NumAxes() < 1 || d.CountFrom(1) != c*h*w {
		return fmt.Errorf("%s: layer expects %s but images are %d×%d×%d after transform",
			s.opt.Path, blob.ShapeString(d.Shape()), c, h, w)
	}
	n := d.Dim(0)
	var labels []T
	if len(top) > 1 {
		if top[1].Count() != n {
			return fmt.Errorf("%s: label top %s does not hold %d labels", s.opt.Path, blob.ShapeString(top[1].Shape()), n)
		}
		labels = top[1].Data()
	}
	out := d.Data()
	per := c * h * w
	for i := 0; i < n; {
		// The batch's next records, up to the end of the pass, decoded in
		// parallel (decoding JPEGs is the cost of an encoded database);
		// then checked, transformed and placed in key order.
		var keys []string
		var vals [][]byte
		wrapped := false
		for len(vals) < n-i && !wrapped {
			if !s.cur.Valid() {
				return fmt.Errorf("%s: cursor past the end", s.opt.Path)
			}
			keys = append(keys, string(s.cur.Key()))
			vals = append(vals, bytes.Clone(s.cur.Value())) // a LevelDB cursor reuses its buffer
			var err error
			if wrapped, err = s.step(); err != nil {
				return err
			}
		}
		ims, errs := s.decodeAll(vals)
		for j := range vals {
			im, err := s.check(keys[j], ims[j], errs[j])
			if err != nil && !errors.As(err, new(badRecord)) {
				return err
			}
			if err == nil {
				s.xf.apply(im, 0, s.opt.Train, s.rng, out[i*per:(i+1)*per])
				if labels != nil {
					labels[i] = T(im.Labels[0])
				}
				i++
			}
		}
		if wrapped {
			if err := s.wrapped(); err != nil {
				return err
			}
		}
	}
	return nil
}

// decodeAll decodes records on up to Workers goroutines (default
// GOMAXPROCS), each taking a contiguous share.
func (s *DBSource[T]) decodeAll(vals [][]byte) ([]*Images, []error) {
	ims, errs := make([]*Images, len(vals)), make([]error, len(vals))
	workers := s.opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(vals))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := w*len(vals)/workers, (w+1)*len(vals)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := lo; j < hi; j++ {
				ims[j], errs[j] = DecodeDatum(vals[j], s.opt.Color)
			}
		}()
	}
	wg.Wait()
	return ims, errs
}

// Close releases the database.
func (s *DBSource[T]) Close() error {
	var errs []error
	if s.cur != nil {
		errs = append(errs, s.cur.Close())
	}
	errs = append(errs, s.d.Close())
	return errors.Join(errs...)
}

// SplitKeys divides a database into parts key ranges of ceil(records/parts)
// records each, as CaffeOnSpark's LmdbRDD partitions an LMDB; it returns
// the record count and each range's first key (fewer ranges than parts when
// the database has fewer records). Range i runs from starts[i] up to
// starts[i+1], the last to the end.
func SplitKeys(b db.Backend, path string, parts int) (int, [][]byte, error) {
	if parts < 1 {
		return 0, nil, fmt.Errorf("split %s into %d parts: want at least 1", path, parts)
	}
	d, err := db.Open(b, path)
	if err != nil {
		return 0, nil, err
	}
	defer d.Close()
	n, err := d.Len()
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", path, err)
	}
	if n == 0 {
		return 0, nil, fmt.Errorf("%s %s: no records", db.Name(b), path)
	}
	size := (n + parts - 1) / parts
	cur, err := d.NewCursor()
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", path, err)
	}
	defer cur.Close()
	var starts [][]byte
	for i := 0; cur.Valid(); i++ {
		if i%size == 0 {
			starts = append(starts, append([]byte(nil), cur.Key()...))
		}
		if err := cur.Next(); err != nil {
			return 0, nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return n, starts, nil
}
