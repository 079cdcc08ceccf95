package data

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"strings"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/db"
	"github.com/gocaffe/gocaffe/caffe/layers"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
)

func buildNet(t *testing.T, src string) *network.Net[float32] {
	t.Helper()
	np, err := prototxt.ParseNet("attach", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := layers.Standard()
	if err != nil {
		t.Fatal(err)
	}
	n, err := network.New[float32](np, &caffepb.NetState{Phase: caffepb.Phase_TEST.Enum()}, reg, network.WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

const mnistLayer = `name: "m"
layer { name: "mnist" type: "MemoryData" top: "data" top: "label" %s
  transform_param { scale: 0.00390625 crop_size: 24 }
  memory_data_param { %s batch_size: 3 channels: 1 height: 24 width: 24 } }`

func TestAttachMNIST(t *testing.T) {
	n := buildNet(t, strings.Replace(strings.Replace(mnistLayer, "%s", "", 1), "%s", `source: "mnist::test"`, 1))
	cache := &Cache{}
	got, err := Attach(t.Context(), n, AttachOptions{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Layer != "mnist" || got[0].Images != 10000 {
		t.Fatalf("attached %+v", got)
	}
	if _, err := n.Forward(); err != nil {
		t.Fatal(err)
	}
	// Centre crop of the first test image (a 7), scaled to [0, 1].
	im, _ := cache.Load(t.Context(), "mnist::test", [3]int{})
	d := n.BlobByName("data").Data()
	for y := 0; y < 24; y++ {
		for x := 0; x < 24; x++ {
			want := float32(im.Pix[(y+2)*28+x+2]) * 0.00390625
			if d[y*24+x] != want {
				t.Fatalf("pixel (%d,%d) = %g, want %g", y, x, d[y*24+x], want)
			}
		}
	}
	if l := n.BlobByName("label").Data(); l[0] != 7 || l[1] != 2 || l[2] != 1 {
		t.Errorf("labels %v, want the first MNIST test labels 7 2 1", l)
	}
}

func TestAttachErrors(t *testing.T) {
	n := buildNet(t, strings.Replace(strings.Replace(mnistLayer, "%s", "", 1), "%s", "", 1))
	if _, err := Attach(t.Context(), n, AttachOptions{}); err == nil || !strings.Contains(err.Error(), "no source") {
		t.Errorf("no source: %v", err)
	}
	if got, err := Attach(t.Context(), n, AttachOptions{SkipUnnamed: true}); err != nil || len(got) != 0 {
		t.Errorf("SkipUnnamed: %v %v", got, err)
	}
	n = buildNet(t, strings.Replace(strings.Replace(mnistLayer, "%s", `source_class: "com.yahoo.ml.caffe.LMDB"`, 1), "%s", `source: "file:/data/mnist_train_lmdb"`, 1))
	if _, err := Attach(t.Context(), n, AttachOptions{}); !errors.Is(err, db.ErrMissing) || !strings.Contains(err.Error(), "/data/mnist_train_lmdb") {
		t.Errorf("LMDB source_class on a missing database: %v, want ErrMissing naming the path", err)
	}
	np, _ := prototxt.ParseNet("d", []byte(`layer { name: "d" type: "Data" top: "data" data_param { source: "x_lmdb" backend: LMDB } }`))
	if err := CheckDataLayers(np); !errors.Is(err, db.ErrMissing) || !strings.Contains(err.Error(), `layer "d"`) {
		t.Errorf("Data layer on a missing LMDB: %v, want ErrMissing naming the layer", err)
	}
	np, _ = prototxt.ParseNet("d", []byte(`layer { name: "d" type: "Data" top: "data" data_param { source: "mnist::train" } }`))
	if err := CheckDataLayers(np); err != nil {
		t.Errorf("Data layer on an mnist source: %v", err)
	}
}

// TestAttachDataLayer builds Caffe's Data layer on an LMDB (shape from the
// first record, centre crop at TEST) and feeds it through Attach.
func TestAttachDataLayer(t *testing.T) {
	path := writeDB(t, db.LMDB, rawRecords(3))
	n := buildNet(t, `name: "d" layer { name: "db" type: "Data" top: "data" top: "label"
  transform_param { crop_size: 1 scale: 2 } data_param { source: "`+path+`" backend: LMDB batch_size: 2 } }`)
	if s := n.BlobByName("data").Shape(); fmt.Sprint(s) != "[2 1 1 1]" {
		t.Fatalf("data top %v, want [2 1 1 1]", s)
	}
	got, err := Attach(t.Context(), n, AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Images != 3 || got[0].Source != "lmdb:"+path {
		t.Fatalf("attached %+v", got)
	}
	if _, err := n.Forward(); err != nil {
		t.Fatal(err)
	}
	// 2×2 images, centre crop 1 takes pixel (0,0): 10i, scaled by 2.
	if d, l := n.BlobByName("data").Data(), n.BlobByName("label").Data(); d[0] != 0 || d[1] != 20 || l[0] != 0 || l[1] != 1 {
		t.Errorf("data %v labels %v", d, l)
	}
	np, _ := prototxt.ParseNet("d", []byte(`layer { name: "d" type: "Data" top: "data" data_param { source: "`+path+`" batch_size: 1 } }`))
	reg, _ := layers.Standard()
	_, err = network.New[float32](np, &caffepb.NetState{Phase: caffepb.Phase_TEST.Enum()}, reg)
	if err == nil || !strings.Contains(err.Error(), "leveldb") || !strings.Contains(err.Error(), path) {
		t.Errorf("an LMDB read with the default backend (LevelDB): %v, want an error naming leveldb and the path", err)
	}
}

// TestAttachImageData feeds Caffe's ImageData layer from a folder holding a
// PNG and a JPEG: grayscale, resized, then the bad inputs.
func TestAttachImageData(t *testing.T) {
	root := t.TempDir() + "/"
	png := grayPNG(t, 10, 20, 30, 40)
	jpg := grayJPEG(t, 200, 200, 200, 200)
	os.WriteFile(root+"a.png", png, 0o644)
	os.WriteFile(root+"b.jpg", jpg, 0o644)
	list := root + "list.txt"
	os.WriteFile(list, []byte("a.png 1\nb.jpg 2\n"), 0o644)
	net := func(extra string) string {
		return `name: "i" layer { name: "img" type: "ImageData" top: "data" top: "label"
  image_data_param { source: "` + list + `" root_folder: "` + root + `" batch_size: 3 is_color: false ` + extra + ` } }`
	}
	n := buildNet(t, net(""))
	if s := n.BlobByName("data").Shape(); fmt.Sprint(s) != "[3 1 1 4]" {
		t.Fatalf("data top %v, want [3 1 1 4]", s)
	}
	got, err := Attach(t.Context(), n, AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Images != 2 {
		t.Fatalf("attached %+v", got)
	}
	if _, err := n.Forward(); err != nil {
		t.Fatal(err)
	}
	d, l := n.BlobByName("data").Data(), n.BlobByName("label").Data()
	if fmt.Sprint(d[:4]) != "[10 20 30 40]" || fmt.Sprint(l) != "[1 2 1]" || d[8] != 10 {
		t.Errorf("data %v labels %v: want the PNG, the JPEG, the PNG again", d, l)
	}
	for _, v := range d[4:8] {
		if v < 198 || v > 202 {
			t.Errorf("JPEG pixels %v, want about 200", d[4:8])
			break
		}
	}
	// Resized 1×4 -> 4×4 colour.
	n = buildNet(t, strings.Replace(net("new_height: 4 new_width: 4"), "is_color: false", "", 1))
	if s := n.BlobByName("data").Shape(); fmt.Sprint(s) != "[3 3 4 4]" {
		t.Fatalf("resized data top %v, want [3 3 4 4]", s)
	}
	if _, err := Attach(t.Context(), n, AttachOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Forward(); err != nil {
		t.Fatal(err)
	}

	// Bad inputs, each named.
	os.WriteFile(root+"big.png", grayPNGSized(t, 3, 3), 0o644)
	for _, c := range []struct{ list, want string }{
		{"a.png 1\nb.jpg\n", "list.txt:2"},
		{"a.png 1\nbig.png 2\n", "big.png: image is 3×3, the first is 1×4"},
		{"a.png 1\nmissing.png 2\n", "missing.png"},
	} {
		os.WriteFile(list, []byte(c.list), 0o644)
		n := buildNet(t, net(""))
		_, err := Attach(t.Context(), n, AttachOptions{})
		if err == nil {
			_, err = n.Forward()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("list %q: %v, want an error containing %q", c.list, err, c.want)
		}
	}
}

// grayPNGSized is an h×w gray PNG.
func grayPNGSized(t *testing.T, h, w int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
