package data

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/db"
)

// rawDatum is a 1×2×2 Datum whose pixels are 10i..10i+3, label i.
func rawDatum(i int) []byte {
	d := &caffepb.Datum{Channels: proto.Int32(1), Height: proto.Int32(2), Width: proto.Int32(2),
		Data: []byte{byte(10 * i), byte(10*i + 1), byte(10*i + 2), byte(10*i + 3)}, Label: proto.Int32(int32(i))}
	b, _ := proto.Marshal(d)
	return b
}

// writeDB writes records key -> value (keys written in the given order).
func writeDB(t *testing.T, b db.Backend, recs map[string][]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db_"+db.Name(b))
	w, err := db.Create(b, path)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range recs {
		if err := w.Put([]byte(k), v); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func rawRecords(n int) map[string][]byte {
	m := map[string][]byte{}
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("%08d", i)] = rawDatum(i)
	}
	return m
}

// TestDBSourceKeyOrderWrapAndTransform reads 3 records in batches of 2:
// key order, wrap to the first record, scale applied, labels.
func TestDBSourceKeyOrderWrapAndTransform(t *testing.T) {
	for _, b := range []db.Backend{db.LMDB, db.LevelDB} {
		t.Run(db.Name(b), func(t *testing.T) {
			s, err := OpenDB[float64](DBOptions{Backend: b, Path: writeDB(t, b, rawRecords(3)), Transform: Transform{Scale: 0.5}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if c, h, w := s.Shape(); c != 1 || h != 2 || w != 2 || s.Len() != 3 {
				t.Fatalf("shape %d×%d×%d len %d", c, h, w, s.Len())
			}
			data, label := blob.New[float64](2, 1, 2, 2), blob.New[float64](2)
			var got, labels []float64
			for range 3 {
				if err := s.Next([]*blob.Blob[float64]{data, label}); err != nil {
					t.Fatal(err)
				}
				got = append(got, data.Data()...)
				labels = append(labels, label.Data()...)
			}
			wantLabels := []float64{0, 1, 2, 0, 1, 2}
			for i, l := range labels {
				if l != wantLabels[i] {
					t.Fatalf("labels %v, want %v", labels, wantLabels)
				}
				for j := 0; j < 4; j++ {
					if w := float64(10*int(l)+j) * 0.5; got[4*i+j] != w {
						t.Fatalf("image %d pixel %d = %g, want %g", i, j, got[4*i+j], w)
					}
				}
			}
			if s.Epoch() != 2 {
				t.Errorf("epoch %d after 6 of 3 records, want 2", s.Epoch())
			}
		})
	}
}

// TestDBSourceFloatAndEncoded reads float_data Datums and a PNG Datum.
func TestDBSourceFloatAndEncoded(t *testing.T) {
	fd, _ := proto.Marshal(&caffepb.Datum{Channels: proto.Int32(1), Height: proto.Int32(1), Width: proto.Int32(2),
		FloatData: []float32{-1.5, 2.25}, Label: proto.Int32(3)})
	s, err := OpenDB[float32](DBOptions{Backend: db.LMDB, Path: writeDB(t, db.LMDB, map[string][]byte{"a": fd})})
	if err != nil {
		t.Fatal(err)
	}
	data, label := blob.New[float32](1, 1, 1, 2), blob.New[float32](1)
	if err := s.Next([]*blob.Blob[float32]{data, label}); err != nil {
		t.Fatal(err)
	}
	if d := data.Data(); d[0] != -1.5 || d[1] != 2.25 || label.Data()[0] != 3 {
		t.Errorf("float_data Datum read as %v label %v", d, label.Data())
	}
	s.Close()

	enc, _ := proto.Marshal(&caffepb.Datum{Data: grayPNG(t, 1, 2, 3, 4), Encoded: proto.Bool(true), Label: proto.Int32(5)})
	for _, c := range []struct {
		mode ColorMode
		want []float32
	}{
		{Unchanged, []float32{1, 2, 3, 4}},
		{ForceColor, []float32{1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4}},
	} {
		s, err := OpenDB[float32](DBOptions{Backend: db.LMDB, Color: c.mode, Path: writeDB(t, db.LMDB, map[string][]byte{"a": enc})})
		if err != nil {
			t.Fatal(err)
		}
		ch, h, w := s.Shape()
		data := blob.New[float32](1, ch, h, w)
		if err := s.Next([]*blob.Blob[float32]{data}); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(data.Data()) != fmt.Sprint(c.want) {
			t.Errorf("mode %d: %v, want %v", c.mode, data.Data(), c.want)
		}
		s.Close()
	}
}

// TestDBSourceBadRecords: an unusable record among many is skipped and
// reported by key; past 1 % of the database, reading fails naming it.
func TestDBSourceBadRecords(t *testing.T) {
	recs := rawRecords(200)
	recs["00000007"] = []byte("\xff\xff not a datum")
	recs["00000009"], _ = proto.Marshal(&caffepb.Datum{Channels: proto.Int32(1), Height: proto.Int32(3), Width: proto.Int32(2),
		Data: make([]byte, 6), Label: proto.Int32(9)})
	path := writeDB(t, db.LMDB, recs)
	s, err := OpenDB[float32](DBOptions{Backend: db.LMDB, Path: path})
	if err != nil {
		t.Fatal(err)
	}
	data, label := blob.New[float32](20, 1, 2, 2), blob.New[float32](20)
	if err := s.Next([]*blob.Blob[float32]{data, label}); err != nil {
		t.Fatal(err)
	}
	for i, l := range label.Data() {
		want := float32(i)
		if i >= 7 {
			want++ // 7 skipped
		}
		if i >= 8 {
			want++ // 9 skipped
		}
		if l != want {
			t.Fatalf("labels %v: bad records not skipped in order", label.Data())
		}
	}
	bad := strings.Join(s.Bad(), "\n")
	if len(s.Bad()) != 2 || !strings.Contains(bad, `"00000007"`) || !strings.Contains(bad, "not a Datum") ||
		!strings.Contains(bad, `"00000009"`) || !strings.Contains(bad, "1×3×2") {
		t.Errorf("bad records reported as %q", s.Bad())
	}
	s.Close()

	// 10 records, one bad: more than 1 %.
	small := rawRecords(10)
	small["00000004"] = []byte("junk")
	s, err = OpenDB[float32](DBOptions{Backend: db.LevelDB, Path: writeDB(t, db.LevelDB, small)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Next([]*blob.Blob[float32]{blob.New[float32](8, 1, 2, 2)})
	if err == nil || !strings.Contains(err.Error(), `key "00000004"`) || !strings.Contains(err.Error(), "1 of 10 records unusable") {
		t.Errorf("one bad record of 10: %v, want an error naming key 00000004", err)
	}

	// Nothing usable at all.
	_, err = OpenDB[float32](DBOptions{Backend: db.LMDB, Path: writeDB(t, db.LMDB, map[string][]byte{"k1": []byte("x"), "k2": []byte("y")})})
	if err == nil || !strings.Contains(err.Error(), `key "k1"`) {
		t.Errorf("database of junk: %v, want an error naming k1", err)
	}
}

// TestDBSourceKeyRange reads only the keys of its range, wrapping inside it.
func TestDBSourceKeyRange(t *testing.T) {
	path := writeDB(t, db.LMDB, rawRecords(10))
	s, err := OpenDB[float32](DBOptions{Backend: db.LMDB, Path: path, Range: KeyRange{Start: []byte("00000003"), End: []byte("00000006")}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Len() != 3 {
		t.Fatalf("range holds %d records, want 3", s.Len())
	}
	label := blob.New[float32](7)
	if err := s.Next([]*blob.Blob[float32]{blob.New[float32](7, 1, 2, 2), label}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(label.Data()); got != "[3 4 5 3 4 5 3]" {
		t.Errorf("labels %s, want [3 4 5 3 4 5 3]", got)
	}
	if _, err := OpenDB[float32](DBOptions{Backend: db.LMDB, Path: path, Range: KeyRange{Start: []byte("x")}}); err == nil || !strings.Contains(err.Error(), "no records") {
		t.Errorf("empty range: %v", err)
	}
}

// TestPrefetchSameBatches: batches through Prefetch are the source's own,
// in order, and an error of the source comes through.
func TestPrefetchSameBatches(t *testing.T) {
	path := writeDB(t, db.LMDB, rawRecords(5))
	direct, err := OpenDB[float32](DBOptions{Backend: db.LMDB, Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	inner, err := OpenDB[float32](DBOptions{Backend: db.LMDB, Path: path})
	if err != nil {
		t.Fatal(err)
	}
	pre := NewPrefetch[float32](t.Context(), inner)
	defer func() {
		if err := pre.Close(); err != nil { // stops reading ahead, then closes inner
			t.Error(err)
		}
	}()
	for i := range 7 {
		a := []*blob.Blob[float32]{blob.New[float32](3, 1, 2, 2), blob.New[float32](3)}
		b := []*blob.Blob[float32]{blob.New[float32](3, 1, 2, 2), blob.New[float32](3)}
		if err := direct.Next(a); err != nil {
			t.Fatal(err)
		}
		if err := pre.Next(b); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(a[0].Data(), a[1].Data()) != fmt.Sprint(b[0].Data(), b[1].Data()) {
			t.Fatalf("batch %d: prefetched %v, direct %v", i, b[1].Data(), a[1].Data())
		}
	}
	bad := NewPrefetch[float32](t.Context(), failing{})
	top := []*blob.Blob[float32]{blob.New[float32](1)}
	for range 3 {
		if err := bad.Next(top); err == nil || err.Error() != "boom" {
			t.Fatalf("failing source: %v", err)
		}
	}
}

type failing struct{}

func (failing) Next([]*blob.Blob[float32]) error { return fmt.Errorf("boom") }
