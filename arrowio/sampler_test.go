package arrowio

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/gocaffe/gocaffe/caffe/blob"
)

func newTops[T blob.Float](s *Sampler[T], n int) []*blob.Blob[T] {
	tops := make([]*blob.Blob[T], n)
	for k := range tops {
		tops[k] = blob.New[T](s.TopShape(k)...)
	}
	return tops
}

// labelled builds a dataset of n rows whose label is the row index.
func labelled(t *testing.T, mem memory.Allocator, n int) (*Dataset, Spec) {
	t.Helper()
	spec := RawImageSpec("data", "label", 1, 1, 2)
	rec := makeRecord(t, mem, n, binaryCol("data", func(r int) []byte { return []byte{byte(r), byte(2 * r)} }),
		int32Col("label", func(r int) int32 { return int32(r) }))
	return read(t, mem, stream(t, mem, rec), spec), spec
}

// draw runs iters batches and counts how often each row was drawn.
func draw(t *testing.T, s *Sampler[float64], n, iters int) []int {
	t.Helper()
	tops := newTops(s, 2)
	seen := make([]int, n)
	for it := 0; it < iters; it++ {
		if err := s.Next(tops); err != nil {
			t.Fatal(err)
		}
		for b, l := range tops[1].Data() {
			row := int(l)
			seen[row]++
			// The data must belong to the same row as the label.
			if d := tops[0].Data()[2*b : 2*b+2]; d[0] != float64(row) || d[1] != float64(2*row) {
				t.Fatalf("batch %d slot %d: data %v for label %d", it, b, d, row)
			}
		}
	}
	return seen
}

func TestUnevenEpochsNoTruncation(t *testing.T) {
	mem := checkedMem(t)
	// Two ranks with partitions of 5 and 8 samples run the same 10
	// iterations of batch 4: every sample of each partition is used, the
	// smaller one simply runs more epochs.
	for _, tc := range []struct {
		n, epochs int
		shuffle   bool
	}{{5, 8, false}, {8, 5, true}, {5, 8, true}} {
		ds, spec := labelled(t, mem, tc.n)
		s, err := NewSampler[float64](ds, spec, SamplerOptions{BatchSize: 4, Shuffle: tc.shuffle, Seed: 7})
		ds.Release()
		if err != nil {
			t.Fatal(err)
		}
		seen := draw(t, s, tc.n, 10)
		for row, c := range seen {
			if c != tc.epochs {
				t.Errorf("n=%d shuffle=%v: row %d drawn %d times, want %d (one per epoch)", tc.n, tc.shuffle, row, c, tc.epochs)
			}
		}
		if s.Epoch() != tc.epochs {
			t.Errorf("n=%d: Epoch() = %d after %d epochs", tc.n, s.Epoch(), tc.epochs)
		}
		if s.Drawn() != 40 {
			t.Errorf("Drawn() = %d, want 40", s.Drawn())
		}
		s.Close()
	}
}

func TestUnevenEpochsShuffleOrder(t *testing.T) {
	mem := checkedMem(t)
	ds, spec := labelled(t, mem, 16)
	defer ds.Release()
	order := func(shuffle bool, seed uint64) []float64 {
		s, err := NewSampler[float64](ds, spec, SamplerOptions{BatchSize: 16, Shuffle: shuffle, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		tops := newTops(s, 2)
		if err := s.Next(tops); err != nil {
			t.Fatal(err)
		}
		return append([]float64(nil), tops[1].Data()...)
	}
	plain := order(false, 1)
	for i, l := range plain {
		if l != float64(i) {
			t.Fatalf("unshuffled order %v", plain)
		}
	}
	a, b, c := order(true, 1), order(true, 1), order(true, 2)
	same := func(x, y []float64) bool {
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Errorf("same seed, different orders: %v vs %v", a, b)
	}
	if same(a, c) || same(a, plain) {
		t.Errorf("shuffle did not reorder: seed1 %v seed2 %v", a, c)
	}
}

func TestWithReplacement(t *testing.T) {
	mem := checkedMem(t)
	ds, spec := labelled(t, mem, 10)
	defer ds.Release()
	s, err := NewSampler[float64](ds, spec, SamplerOptions{BatchSize: 50, Policy: WithReplacement, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	seen := draw(t, s, 10, 20) // 1000 draws from 10 rows
	for row, c := range seen {
		// Binomial(1000, 0.1): mean 100, sd 9.5; 60..140 is over 4 sd.
		if c < 60 || c > 140 {
			t.Errorf("row %d drawn %d of 1000 times", row, c)
		}
	}
	if s.Epoch() != 100 {
		t.Errorf("Epoch() = %d, want 1000/10", s.Epoch())
	}
}

func TestSamplerTransform(t *testing.T) {
	mem := checkedMem(t)
	// One 2×3×4 sample with distinct values.
	const c, h, w = 2, 3, 4
	rec := makeRecord(t, mem, 1, binaryCol("data", func(r int) []byte { return rawImage(0, c*h*w) }), int32Col("label", func(int) int32 { return 0 }))
	spec := RawImageSpec("data", "label", c, h, w)
	spec.Fields[0].Transform = &Transform{Scale: 0.5, MeanValues: []float32{10, 20}, CropSize: 2}
	ds := read(t, mem, stream(t, mem, rec), spec)
	defer ds.Release()
	src := rawImage(0, c*h*w)
	val := func(ch, y, x int) float32 {
		return (float32(src[ch*h*w+y*w+x]) - []float32{10, 20}[ch]) * 0.5
	}
	// Testing: centre crop at (0, 1).
	s, err := NewSampler[float32](ds, spec, SamplerOptions{BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	tops := newTops(s, 2)
	if got := tops[0].Shape(); got[1] != 2 || got[2] != 2 || got[3] != 2 {
		t.Fatalf("cropped top shape %v", got)
	}
	if err := s.Next(tops); err != nil {
		t.Fatal(err)
	}
	for ch := 0; ch < c; ch++ {
		for y := 0; y < 2; y++ {
			for x := 0; x < 2; x++ {
				if got, want := tops[0].Data()[ch*4+y*2+x], val(ch, y+(h-2)/2, x+(w-2)/2); got != want {
					t.Errorf("c%d y%d x%d = %v, want %v", ch, y, x, got, want)
				}
			}
		}
	}
	s.Close()

	// Training with mirror: every output is one of the crops, mirrored or
	// not, and both mirror states occur.
	spec.Fields[0].Transform.Mirror = true
	s, err = NewSampler[float32](ds, spec, SamplerOptions{BatchSize: 1, Train: true, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mirrored, plain := 0, 0
	for it := 0; it < 64; it++ {
		if err := s.Next(tops); err != nil {
			t.Fatal(err)
		}
		out := tops[0].Data()
		found := false
		for hOff := 0; hOff <= h-2 && !found; hOff++ {
			for wOff := 0; wOff <= w-2 && !found; wOff++ {
				for _, m := range []bool{false, true} {
					ok := true
					for ch := 0; ch < c && ok; ch++ {
						for y := 0; y < 2 && ok; y++ {
							for x := 0; x < 2 && ok; x++ {
								sx := x
								if m {
									sx = 1 - x
								}
								ok = out[ch*4+y*2+x] == val(ch, y+hOff, sx+wOff)
							}
						}
					}
					if ok {
						found = true
						if m {
							mirrored++
						} else {
							plain++
						}
						break
					}
				}
			}
		}
		if !found {
			t.Fatalf("iteration %d: output %v is no crop of the sample", it, out)
		}
	}
	if mirrored == 0 || plain == 0 {
		t.Errorf("mirror never varied: %d mirrored, %d plain", mirrored, plain)
	}
}

func TestSamplerErrors(t *testing.T) {
	mem := checkedMem(t)
	ds, spec := labelled(t, mem, 3)
	defer ds.Release()
	if _, err := NewSampler[float32](ds, spec, SamplerOptions{}); err == nil {
		t.Error("batch size 0 accepted")
	}
	bad := spec
	bad.Fields = append([]Field(nil), spec.Fields...)
	bad.Fields[0].Transform = &Transform{CropSize: 5}
	if _, err := NewSampler[float32](ds, bad, SamplerOptions{BatchSize: 1}); err == nil {
		t.Error("crop larger than the sample accepted")
	}
	s, err := NewSampler[float32](ds, spec, SamplerOptions{BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	wrong := []*blob.Blob[float32]{blob.New[float32](3, 1, 1, 2), blob.New[float32](2)}
	if err := s.Next(wrong); err == nil {
		t.Error("top of the wrong shape accepted")
	}
	s.Close()
	if err := s.Next(wrong); err == nil {
		t.Error("Next after Close succeeded")
	}
}

func TestCache(t *testing.T) {
	mem := checkedMem(t)
	c := NewCache()
	k := Key{Dataset: "parquet:/mnist", Partition: 1}
	var loads atomic.Int32
	rec := makeRecord(t, mem, 4, binaryCol("data", func(r int) []byte { return []byte{byte(r), byte(2 * r)} }),
		int32Col("label", func(r int) int32 { return int32(r) }))
	data := stream(t, mem, rec)
	load := func(ctx context.Context) (*Dataset, error) {
		loads.Add(1)
		return ReadStream(ctx, bytes.NewReader(data), mem, RawImageSpec("data", "label", 1, 1, 2))
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, _, err := c.GetOrLoad(context.Background(), k, load)
			if err != nil {
				t.Error(err)
				return
			}
			if d.Len() != 4 {
				t.Errorf("Len %d", d.Len())
			}
			d.Release()
		}()
	}
	wg.Wait()
	if loads.Load() != 1 {
		t.Errorf("partition loaded %d times, want once", loads.Load())
	}
	d, ok := c.Get(k)
	if !ok {
		t.Fatal("cached partition missing")
	}
	// A sampler keeps its dataset alive after the cache drops it.
	s, err := NewSampler[float32](d, RawImageSpec("data", "label", 1, 1, 2), SamplerOptions{BatchSize: 3})
	d.Release()
	if err != nil {
		t.Fatal(err)
	}
	if e := c.Entries(); len(e) != 1 || e[0].Rows != 4 || e[0].Key != k || e[0].Bytes == 0 {
		t.Errorf("Entries = %+v", e)
	}
	if !c.Drop(k) || c.Drop(k) {
		t.Error("Drop did not report the entry once")
	}
	if err := s.Next(newTops(s, 2)); err != nil {
		t.Errorf("sampler after Drop: %v", err)
	}
	s.Close()

	// A failed load caches nothing; the next call loads again.
	boom := errors.New("boom")
	if _, _, err := c.GetOrLoad(context.Background(), k, func(context.Context) (*Dataset, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("load error = %v", err)
	}
	d, loaded, err := c.GetOrLoad(context.Background(), k, load)
	if err != nil || !loaded {
		t.Fatalf("reload: loaded=%v err=%v", loaded, err)
	}
	d.Release()
	ds2, _ := labelled(t, mem, 2)
	c.Put(Key{"other", 0}, ds2)
	c.Close()
}

// TestLastRowsAndSampleIDs: the sampler reports the rows of its last batch
// (shuffled, across epochs) and the dataset the rows' sample ids, kept
// across record batches; without an id column the ids are empty.
func TestLastRowsAndSampleIDs(t *testing.T) {
	mem := checkedMem(t)
	spec := RawImageSpec("data", "label", 1, 1, 2)
	mk := func(first, n int) arrow.RecordBatch {
		return makeRecord(t, mem, n,
			stringCol("id", func(r int) string { return "img-" + strconv.Itoa(first+r) }),
			binaryCol("data", func(r int) []byte { return []byte{byte(first + r), 0} }),
			int32Col("label", func(r int) int32 { return int32(first + r) }))
	}
	ds := read(t, mem, stream(t, mem, mk(0, 3), mk(3, 4)), spec)
	defer ds.Release()
	s, err := NewSampler[float64](ds, spec, SamplerOptions{BatchSize: 5, Shuffle: true, Seed: 3, Train: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tops := newTops(s, 2)
	for it := 0; it < 4; it++ {
		if err := s.Next(tops); err != nil {
			t.Fatal(err)
		}
		rows := s.LastRows()
		if len(rows) != 5 {
			t.Fatalf("%d rows for a batch of 5", len(rows))
		}
		for b, row := range rows {
			if got := int(tops[1].Data()[b]); got != row {
				t.Fatalf("iteration %d slot %d: label %d, LastRows says row %d", it, b, got, row)
			}
			if id := ds.SampleID(row); id != "img-"+strconv.Itoa(row) {
				t.Fatalf("row %d: sample id %q", row, id)
			}
		}
	}
	if id := ds.SampleID(7); id != "" {
		t.Errorf("row 7 of 7: id %q", id)
	}
	plain, _ := labelled(t, mem, 3)
	defer plain.Release()
	if id := plain.SampleID(1); id != "" {
		t.Errorf("no id column: id %q", id)
	}
}

// TestSamplerMeanImage: a mean image (mean_file) is subtracted pixel by
// pixel at the crop's offset, as Caffe's DataTransformer does; one of
// another size is refused.
func TestSamplerMeanImage(t *testing.T) {
	mem := checkedMem(t)
	const c, h, w = 2, 3, 4
	rec := makeRecord(t, mem, 1, binaryCol("data", func(r int) []byte { return rawImage(0, c*h*w) }), int32Col("label", func(int) int32 { return 0 }))
	spec := RawImageSpec("data", "label", c, h, w)
	mean := make([]float32, c*h*w)
	for i := range mean {
		mean[i] = float32(i) * 1.5
	}
	spec.Fields[0].Transform = &Transform{Scale: 0.5, Mean: mean, CropSize: 2}
	ds := read(t, mem, stream(t, mem, rec), spec)
	defer ds.Release()
	src := rawImage(0, c*h*w)
	s, err := NewSampler[float32](ds, spec, SamplerOptions{BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	tops := newTops(s, 2)
	if err := s.Next(tops); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for ch := 0; ch < c; ch++ {
		for y := 0; y < 2; y++ {
			for x := 0; x < 2; x++ {
				i := ch*h*w + (y+(h-2)/2)*w + x + (w-2)/2
				if got, want := tops[0].Data()[ch*4+y*2+x], (float32(src[i])-mean[i])*0.5; got != want {
					t.Errorf("c%d y%d x%d = %v, want %v", ch, y, x, got, want)
				}
			}
		}
	}
	spec.Fields[0].Transform.Mean = mean[:c*h*w-1]
	if _, err := NewSampler[float32](ds, spec, SamplerOptions{BatchSize: 1}); err == nil || !strings.Contains(err.Error(), "mean image has 23 values") {
		t.Errorf("short mean image: err = %v", err)
	}
}
