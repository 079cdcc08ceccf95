package data

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/db"
)

// TestConvertMNISTMatchesIDXAndMean converts the MNIST test set as
// create_mnist.sh does and checks keys, Datums and the mean image.
func TestConvertMNISTMatchesIDXAndMean(t *testing.T) {
	img, lbl, err := MNISTFiles("", "test")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mnist_test_lmdb")
	w, err := db.Create(db.LMDB, path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := ConvertMNIST(img, lbl, w)
	if err != nil || w.Close() != nil || n != 10000 {
		t.Fatalf("ConvertMNIST: %d, %v", n, err)
	}
	ref, err := LoadMNIST("", "test")
	if err != nil {
		t.Fatal(err)
	}
	d, err := db.Open(db.LMDB, path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cur, err := d.NewCursor()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	for i := 0; i < 3; i++ {
		var dt caffepb.Datum
		if err := proto.Unmarshal(cur.Value(), &dt); err != nil {
			t.Fatal(err)
		}
		if string(cur.Key()) != fmt.Sprintf("%08d", i) || dt.GetChannels() != 1 || dt.GetHeight() != 28 || dt.GetWidth() != 28 ||
			string(dt.GetData()) != string(ref.Pix[i*784:(i+1)*784]) || float32(dt.GetLabel()) != ref.Labels[i] || dt.GetEncoded() {
			t.Fatalf("record %d (key %q) differs from the IDX image", i, cur.Key())
		}
		if err := cur.Next(); err != nil {
			t.Fatal(err)
		}
	}
	bp, ch, err := ComputeMean(db.LMDB, path)
	if err != nil {
		t.Fatal(err)
	}
	if bp.GetNum() != 1 || bp.GetChannels() != 1 || bp.GetHeight() != 28 || bp.GetWidth() != 28 || len(bp.GetData()) != 784 {
		t.Fatalf("mean blob %d×%d×%d×%d with %d values", bp.GetNum(), bp.GetChannels(), bp.GetHeight(), bp.GetWidth(), len(bp.GetData()))
	}
	var total float64
	for k := 0; k < 784; k++ {
		var s float64
		for i := 0; i < ref.N; i++ {
			s += float64(ref.Pix[i*784+k])
		}
		total += s
		if math.Abs(float64(bp.GetData()[k])-s/float64(ref.N)) > 1e-3 {
			t.Fatalf("mean pixel %d = %g, want %g", k, bp.GetData()[k], s/float64(ref.N))
		}
	}
	if want := total / float64(ref.N) / 784; math.Abs(ch[0]-want) > 1e-6 {
		t.Errorf("channel mean %g, want %g", ch[0], want)
	}
}

// TestConvertImageSet converts a folder of a PNG and a JPEG raw (resized,
// colour) and encoded (the files' own bytes), and rejects a list line with
// no label.
func TestConvertImageSet(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "sub dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	png := grayPNG(t, 10, 20, 30, 40)
	jpg := grayJPEG(t, 100, 100, 100, 100)
	os.WriteFile(filepath.Join(root, "a.png"), png, 0o644)
	os.WriteFile(filepath.Join(root, "sub dir", "b.jpg"), jpg, 0o644)
	list := filepath.Join(root, "list.txt")
	os.WriteFile(list, []byte("a.png 3\nsub dir/b.jpg 4\n"), 0o644)

	read := func(path string) map[string]*caffepb.Datum {
		d, err := db.Open(db.LMDB, path)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		cur, _ := d.NewCursor()
		defer cur.Close()
		out := map[string]*caffepb.Datum{}
		for ; cur.Valid(); cur.Next() {
			var dt caffepb.Datum
			if err := proto.Unmarshal(cur.Value(), &dt); err != nil {
				t.Fatal(err)
			}
			out[string(cur.Key())] = &dt
		}
		return out
	}
	convert := func(o ImageSetOptions) map[string]*caffepb.Datum {
		path := filepath.Join(t.TempDir(), "db")
		w, err := db.Create(db.LMDB, path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ConvertImageSet(list, o, w); err != nil {
			t.Fatal(err)
		}
		w.Close()
		return read(path)
	}
	raw := convert(ImageSetOptions{Root: root, ResizeH: 4, ResizeW: 4, CheckSize: true})
	a, b := raw["00000000_a.png"], raw["00000001_sub dir/b.jpg"]
	if a == nil || b == nil {
		t.Fatalf("keys %v, want 00000000_a.png and 00000001_sub dir/b.jpg", raw)
	}
	if a.GetChannels() != 3 || a.GetHeight() != 4 || a.GetWidth() != 4 || len(a.GetData()) != 48 || a.GetLabel() != 3 || b.GetLabel() != 4 {
		t.Errorf("raw Datum %d×%d×%d (%d bytes) label %d", a.GetChannels(), a.GetHeight(), a.GetWidth(), len(a.GetData()), a.GetLabel())
	}
	enc := convert(ImageSetOptions{Root: root, Encoded: true, Gray: true})
	if a := enc["00000000_a.png"]; !a.GetEncoded() || string(a.GetData()) != string(png) {
		t.Errorf("encoded Datum does not hold the file's bytes")
	}
	if b := enc["00000001_sub dir/b.jpg"]; !b.GetEncoded() || string(b.GetData()) != string(jpg) {
		t.Errorf("encoded JPEG Datum does not hold the file's bytes")
	}
	reenc := convert(ImageSetOptions{Root: root, Encoded: true, EncodeType: "png"})
	if b := reenc["00000001_sub dir/b.jpg"]; !b.GetEncoded() || !strings.HasPrefix(string(b.GetData()), "\x89PNG") {
		t.Errorf("-encode_type png did not re-encode the JPEG")
	}

	os.WriteFile(list, []byte("a.png 3\nsub dir/b.jpg\n"), 0o644)
	w, _ := db.Create(db.LMDB, filepath.Join(t.TempDir(), "db"))
	defer w.Close()
	if _, err := ConvertImageSet(list, ImageSetOptions{Root: root}, w); err == nil || !strings.Contains(err.Error(), "list.txt:2") {
		t.Errorf("line without a label: %v, want an error naming list.txt:2", err)
	}
}
