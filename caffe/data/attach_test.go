package data

import (
	"errors"
	"fmt"
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
