package modelio

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
)

// lenetWithWeights returns the LeNet test net with random weights in the
// shapes Caffe gives them.
func lenetWithWeights(t testing.TB) *caffepb.NetParameter {
	t.Helper()
	net, err := prototxt.ParseNetFile("../prototxt/testdata/lenet.prototxt")
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	shapes := map[string][][]int64{
		"conv1": {{20, 1, 5, 5}, {20}},
		"conv2": {{50, 20, 5, 5}, {50}},
		"ip1":   {{500, 800}, {500}},
		"ip2":   {{10, 500}, {10}},
	}
	for _, l := range net.Layer {
		for _, s := range shapes[l.GetName()] {
			n := int64(1)
			for _, d := range s {
				n *= d
			}
			data := make([]float32, n)
			for i := range data {
				data[i] = float32(r.NormFloat64())
			}
			l.Blobs = append(l.Blobs, &caffepb.BlobProto{Shape: &caffepb.BlobShape{Dim: s}, Data: data})
		}
	}
	return net
}

func TestCaffemodelRoundTrip(t *testing.T) {
	net := lenetWithWeights(t)
	path := filepath.Join(t.TempDir(), "lenet.caffemodel")
	if err := WriteCaffemodel(path, net); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCaffemodel(path)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(net, got) {
		t.Fatal("caffemodel read back differs from what was written")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := proto.Marshal(net)
	if !bytes.Equal(raw, want) {
		t.Error("file bytes differ from the protobuf encoding")
	}
	// 431,080 parameters in LeNet: the file must hold them all.
	var params int
	for _, b := range LayerBlobs(got) {
		for _, p := range b {
			params += len(p.Data)
		}
	}
	if params != 431080 {
		t.Errorf("read %d parameters, want 431080", params)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after an atomic write, want 1", len(entries))
	}
}

// The encoding is Caffe's byte for byte: fields in field-number order
// (BlobProto's data (5) before shape (7); NetParameter's layer (100) last),
// floats packed. The expected bytes are assembled by hand from the wire
// format.
func TestWireLayoutMatchesCaffe(t *testing.T) {
	var blobBytes []byte
	blobBytes = protowire.AppendTag(blobBytes, 5, protowire.BytesType)
	var packed []byte
	for _, v := range []float32{1.5, -2} {
		packed = protowire.AppendFixed32(packed, math.Float32bits(v))
	}
	blobBytes = protowire.AppendBytes(blobBytes, packed)
	var shape []byte
	shape = protowire.AppendTag(shape, 1, protowire.BytesType)
	shape = protowire.AppendBytes(shape, protowire.AppendVarint(nil, 2))
	blobBytes = protowire.AppendTag(blobBytes, 7, protowire.BytesType)
	blobBytes = protowire.AppendBytes(blobBytes, shape)

	var layer []byte
	layer = protowire.AppendTag(layer, 1, protowire.BytesType)
	layer = protowire.AppendString(layer, "ip")
	layer = protowire.AppendTag(layer, 2, protowire.BytesType)
	layer = protowire.AppendString(layer, "InnerProduct")
	layer = protowire.AppendTag(layer, 7, protowire.BytesType)
	layer = protowire.AppendBytes(layer, blobBytes)
	layer = protowire.AppendTag(layer, 10001, protowire.BytesType) // source_class
	layer = protowire.AppendString(layer, "x")

	var want []byte
	want = protowire.AppendTag(want, 1, protowire.BytesType)
	want = protowire.AppendString(want, "n")
	want = protowire.AppendTag(want, 5, protowire.VarintType)
	want = protowire.AppendVarint(want, 1)
	want = protowire.AppendTag(want, 100, protowire.BytesType)
	want = protowire.AppendBytes(want, layer)

	net := &caffepb.NetParameter{
		Layer: []*caffepb.LayerParameter{{
			SourceClass: proto.String("x"),
			Blobs:       []*caffepb.BlobProto{{Shape: &caffepb.BlobShape{Dim: []int64{2}}, Data: []float32{1.5, -2}}},
			Type:        proto.String("InnerProduct"),
			Name:        proto.String("ip"),
		}},
		ForceBackward: proto.Bool(true),
		Name:          proto.String("n"),
	}
	got, err := proto.Marshal(net)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encoding\n got %x\nwant %x", got, want)
	}
	back, err := DecodeCaffemodel("hand", want)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(back, net) {
		t.Errorf("decoded %v", back)
	}
}

// A V1 .caffemodel (layers with legacy 4-D blobs) reads as current layers,
// and its blobs load into the net's shapes as in Caffe.
func TestLegacyCaffemodel(t *testing.T) {
	legacy := &caffepb.NetParameter{
		Name: proto.String("old"),
		Layers: []*caffepb.V1LayerParameter{{
			Name:    proto.String("ip"),
			Type:    caffepb.V1LayerParameter_INNER_PRODUCT.Enum(),
			Bottom:  []string{"data"},
			Top:     []string{"ip"},
			BlobsLr: []float32{1, 2},
			Blobs: []*caffepb.BlobProto{
				{Num: proto.Int32(1), Channels: proto.Int32(1), Height: proto.Int32(3), Width: proto.Int32(2), Data: []float32{1, 2, 3, 4, 5, 6}},
				{Num: proto.Int32(1), Channels: proto.Int32(1), Height: proto.Int32(1), Width: proto.Int32(3), Data: []float32{7, 8, 9}},
			},
		}},
	}
	path := filepath.Join(t.TempDir(), "old.caffemodel")
	if err := WriteCaffemodel(path, legacy); err != nil {
		t.Fatal(err)
	}
	net, err := ReadCaffemodel(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(net.Layers) != 0 || len(net.Layer) != 1 || net.Layer[0].GetType() != "InnerProduct" || net.Layer[0].Param[1].GetLrMult() != 2 {
		t.Fatalf("not upgraded: %v", net)
	}
	src := LayerBlobs(net)["ip"]
	w, b := blob.New[float32](3, 2), blob.New[float32](3)
	if err := CopyBlobs("ip", []*blob.Blob[float32]{w, b}, src); err != nil {
		t.Fatal(err)
	}
	if w.Data()[5] != 6 || b.Data()[2] != 9 {
		t.Errorf("copied %v %v", w.Data(), b.Data())
	}
	// Legacy shapes compare right-aligned: (1,1,3,2) does not fit (2,3).
	err = CopyBlobs("ip", []*blob.Blob[float64]{blob.New[float64](2, 3), blob.New[float64](3)}, src)
	var sm *ShapeMismatchError
	if !errors.As(err, &sm) {
		t.Fatalf("err = %v, want ShapeMismatchError", err)
	}
	if sm.Layer != "ip" || sm.Index != 0 || !sm.Legacy || !blob.ShapeEquals(sm.Want, []int{2, 3}) || !blob.ShapeEquals(sm.Got, []int{1, 1, 3, 2}) {
		t.Errorf("mismatch error %+v", sm)
	}
	for _, s := range []string{`layer "ip"`, "2 3 (6)", "1 1 3 2 (6)"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
}

func TestCopyBlobsChecks(t *testing.T) {
	src := []*caffepb.BlobProto{{Shape: &caffepb.BlobShape{Dim: []int64{2, 2}}, DoubleData: []float64{1, 2, 3, 4}, Data: []float32{9, 9, 9, 9}}}
	dst := blob.New[float32](2, 2)
	if err := CopyBlobs("a", []*blob.Blob[float32]{dst}, src); err != nil {
		t.Fatal(err)
	}
	if dst.Data()[3] != 4 {
		t.Errorf("double_data not preferred: %v", dst.Data())
	}
	var ce *BlobCountError
	if err := CopyBlobs("a", []*blob.Blob[float32]{dst, dst}, src); !errors.As(err, &ce) || ce.Want != 2 || ce.Got != 1 || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("count mismatch: %v", err)
	}
	var sm *ShapeMismatchError
	err := CopyBlobs("a", []*blob.Blob[float32]{blob.New[float32](4)}, src)
	if !errors.As(err, &sm) || sm.Legacy || !blob.ShapeEquals(sm.Got, []int{2, 2}) {
		t.Errorf("shape mismatch: %v", err)
	}
	short := []*caffepb.BlobProto{{Shape: &caffepb.BlobShape{Dim: []int64{2, 2}}, Data: []float32{1, 2, 3}}}
	fresh := blob.New[float32](2, 2)
	if err := CopyBlobs("a", []*blob.Blob[float32]{fresh}, short); err == nil || !strings.Contains(err.Error(), "3 values") {
		t.Errorf("short data: %v", err)
	}
}

func TestBlobProtoConversion(t *testing.T) {
	b := blob.New[float64](2, 3)
	for i := range b.Data() {
		b.Data()[i] = float64(i) / 3
		b.Diff()[i] = -float64(i)
	}
	p := BlobToProto(b, true)
	if len(p.DoubleData) != 6 || len(p.DoubleDiff) != 6 || len(p.Data) != 0 {
		t.Fatalf("float64 blob stored as %v", p)
	}
	back, err := BlobFromProto[float64](p, true)
	if err != nil {
		t.Fatal(err)
	}
	if !blob.ShapeEquals(back.Shape(), []int{2, 3}) || back.Data()[5] != b.Data()[5] || back.Diff()[4] != -4 {
		t.Errorf("round trip: %v %v", back.Data(), back.Diff())
	}
	p32 := BlobToProto(blob.New[float32](4), false)
	if len(p32.Data) != 4 || p32.Diff != nil || p32.DoubleData != nil {
		t.Errorf("float32 blob stored as %v", p32)
	}
	if _, err := BlobFromProto[float32](&caffepb.BlobProto{Shape: &caffepb.BlobShape{Dim: []int64{1 << 40, 1 << 40}}}, false); err == nil {
		t.Error("huge shape without values accepted")
	}
	if _, err := BlobFromProto[float32](&caffepb.BlobProto{Shape: &caffepb.BlobShape{Dim: []int64{-1}}}, false); err == nil {
		t.Error("negative shape accepted")
	}
}

func TestSolverStateRoundTrip(t *testing.T) {
	st := &caffepb.SolverState{
		Iter:        proto.Int32(5000),
		CurrentStep: proto.Int32(2),
		LearnedNet:  proto.String("lenet_iter_5000.caffemodel"),
		History: []*caffepb.BlobProto{
			{Shape: &caffepb.BlobShape{Dim: []int64{20, 1, 5, 5}}, Data: make([]float32, 500)},
			{Shape: &caffepb.BlobShape{Dim: []int64{20}}, Data: []float32{0.5}},
		},
	}
	st.History[1].Data = make([]float32, 20)
	st.History[1].Data[19] = -3.25
	path := filepath.Join(t.TempDir(), "lenet_iter_5000.solverstate")
	if err := WriteSolverState(path, st); err != nil {
		t.Fatal(err)
	}
	// Overwriting an existing snapshot replaces it atomically.
	st.Iter = proto.Int32(5001)
	if err := WriteSolverState(path, st); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSolverState(path)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(st, got) {
		t.Errorf("solver state read back differs: %v", got)
	}
}

func TestWriteFileAtomicFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "missing", "x.caffemodel")
	if err := WriteFileAtomic(target, []byte("x"), 0o644); err == nil || !strings.Contains(err.Error(), target) {
		t.Errorf("err = %v, want one naming %s", err, target)
	}
	// Renaming onto a directory fails after the temp file was written: the
	// temp file must be removed.
	if err := os.Mkdir(filepath.Join(dir, "isdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "isdir", "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "isdir"), []byte("x"), 0o644); err == nil {
		t.Error("rename over a non-empty directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temp file %s left behind", e.Name())
		}
	}
}

// TestWriteFilesAtomicKeepsReplacedFiles: a group whose second file cannot
// be renamed into place leaves the first file as it was before the call
// (an earlier snapshot of the same iteration), not removed with the new
// one, and no temporary or backup file; a group that succeeds replaces
// both and leaves nothing else.
func TestWriteFilesAtomicKeepsReplacedFiles(t *testing.T) {
	dir := t.TempDir()
	model, state := filepath.Join(dir, "a_iter_5.caffemodel"), filepath.Join(dir, "a_iter_5.solverstate")
	if err := os.WriteFile(model, []byte("old model"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A non-empty directory where the state goes makes its rename fail.
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := WriteFilesAtomic([]File{{Path: model, Data: []byte("new model")}, {Path: state, Data: []byte("new state")}}, 0o644)
	if err == nil || !strings.Contains(err.Error(), state) {
		t.Fatalf("err = %v, want one naming %s", err, state)
	}
	if got, err := os.ReadFile(model); err != nil || string(got) != "old model" {
		t.Errorf("after the failed group, %s holds %q (%v), want the old model", model, got, err)
	}
	left := func() []string {
		var names []string
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	if names := left(); len(names) != 2 {
		t.Errorf("files left: %v, want only the old model and the directory", names)
	}
	if err := os.RemoveAll(state); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, []byte("old state"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFilesAtomic([]File{{Path: model, Data: []byte("new model")}, {Path: state, Data: []byte("new state")}}, 0o644); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{model: "new model", state: "new state"} {
		if got, err := os.ReadFile(p); err != nil || string(got) != want {
			t.Errorf("%s holds %q (%v), want %q", p, got, err, want)
		}
	}
	if names := left(); len(names) != 2 {
		t.Errorf("files left: %v, want only the two new files", names)
	}
}

func TestDecodeErrors(t *testing.T) {
	good, err := proto.Marshal(lenetWithWeights(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("truncated", func(t *testing.T) {
		_, err := DecodeCaffemodel("cut.caffemodel", good[:len(good)/2])
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("err = %v (%T), want *DecodeError", err, err)
		}
		if de.Offset < 0 || de.Offset >= int64(len(good)/2) || !strings.HasPrefix(de.Field, "NetParameter.layer[") || !strings.Contains(de.Field, ".blobs[") {
			t.Errorf("error %+v: want an offset inside the file and a field path into a layer's blobs", de)
		}
		if !strings.Contains(err.Error(), "cut.caffemodel: byte ") {
			t.Errorf("message %q", err)
		}
	})
	t.Run("bad packed floats", func(t *testing.T) {
		var blob []byte
		blob = protowire.AppendTag(blob, 5, protowire.BytesType)
		blob = protowire.AppendBytes(blob, []byte{1, 2, 3, 4, 5, 6, 7})
		var layer []byte
		layer = protowire.AppendTag(layer, 1, protowire.BytesType)
		layer = protowire.AppendString(layer, "x")
		layer = protowire.AppendTag(layer, 7, protowire.BytesType)
		layer = protowire.AppendBytes(layer, blob)
		var data []byte
		data = protowire.AppendTag(data, 1, protowire.BytesType)
		data = protowire.AppendString(data, "n")
		data = protowire.AppendTag(data, 100, protowire.BytesType)
		data = protowire.AppendBytes(data, layer)
		_, err := DecodeCaffemodel("bad.caffemodel", data)
		// name (3 bytes), layer tag 100 (2) and length (1), the layer's
		// name (3), blobs tag and length (2): the data tag is at byte 11.
		var de *DecodeError
		if !errors.As(err, &de) || de.Field != "NetParameter.layer[0].blobs[0].data" || de.Offset != 11 {
			t.Fatalf("err = %v (%+v), want field NetParameter.layer[0].blobs[0].data at byte 11", err, de)
		}
	})
	t.Run("bad tag", func(t *testing.T) {
		_, err := DecodeCaffemodel("zero.caffemodel", []byte{0x0a, 0x01, 'n', 0x00})
		var de *DecodeError
		if !errors.As(err, &de) || de.Offset != 3 {
			t.Errorf("err = %v, want a DecodeError at byte 3", err)
		}
	})
	t.Run("required field", func(t *testing.T) {
		var clip []byte
		clip = protowire.AppendTag(clip, 1, protowire.Fixed32Type)
		clip = protowire.AppendFixed32(clip, 0)
		var layer []byte
		layer = protowire.AppendTag(layer, 148, protowire.BytesType)
		layer = protowire.AppendBytes(layer, clip)
		var data []byte
		data = protowire.AppendTag(data, 100, protowire.BytesType)
		data = protowire.AppendBytes(data, layer)
		_, err := DecodeCaffemodel("clip.caffemodel", data)
		var de *DecodeError
		if !errors.As(err, &de) || de.Field != "NetParameter.layer[0].clip_param.max" {
			t.Errorf("err = %v, want the missing clip_param.max named", err)
		}
	})
	t.Run("text file", func(t *testing.T) {
		_, err := DecodeCaffemodel("lenet.prototxt", []byte("name: \"LeNet\"\nlayer {\n  name: \"x\"\n}\n"))
		if err == nil || !strings.Contains(err.Error(), "text prototxt") {
			t.Errorf("err = %v, want a hint that this is a text file", err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "empty.caffemodel")
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadCaffemodel(path); err == nil || !strings.Contains(err.Error(), "empty") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := ReadCaffemodel(filepath.Join(t.TempDir(), "nope.caffemodel"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v, want ErrNotExist", err)
		}
	})
}

// Reading maps the file instead of copying it to the heap: the heap
// allocated while reading a model is about its decoded size, not twice it.
func TestReadAllocatesAboutTheModelSizeOnce(t *testing.T) {
	const floats = 8 << 20 // a 32 MiB weight blob
	net := &caffepb.NetParameter{Layer: []*caffepb.LayerParameter{{
		Name:  proto.String("big"),
		Blobs: []*caffepb.BlobProto{{Shape: &caffepb.BlobShape{Dim: []int64{floats}}, Data: make([]float32, floats)}},
	}}}
	path := filepath.Join(t.TempDir(), "big.caffemodel")
	if err := WriteCaffemodel(path, net); err != nil {
		t.Fatal(err)
	}
	net = nil
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := ReadCaffemodel(path)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	size := uint64(4 * floats)
	t.Logf("file %d bytes, heap allocated while reading %d bytes (%.2fx)", size, alloc, float64(alloc)/float64(size))
	if alloc > size*5/4 {
		t.Errorf("reading allocated %d bytes for a %d-byte model: the file was copied", alloc, size)
	}
	if len(got.Layer[0].Blobs[0].Data) != floats {
		t.Errorf("read %d floats", len(got.Layer[0].Blobs[0].Data))
	}
}

// tinyNet is a two-layer net with small blobs, in the current form.
func tinyNet() *caffepb.NetParameter {
	return &caffepb.NetParameter{
		Name: proto.String("tiny"),
		Layer: []*caffepb.LayerParameter{
			{Name: proto.String("in"), Type: proto.String("Input"), Top: []string{"x"},
				InputParam: &caffepb.InputParameter{Shape: []*caffepb.BlobShape{{Dim: []int64{1, 3}}}}},
			{Name: proto.String("ip"), Type: proto.String("InnerProduct"), Bottom: []string{"x"}, Top: []string{"y"},
				InnerProductParam: &caffepb.InnerProductParameter{NumOutput: proto.Uint32(2)},
				Blobs: []*caffepb.BlobProto{
					{Shape: &caffepb.BlobShape{Dim: []int64{2, 3}}, Data: []float32{1, 2, 3, 4, 5, 6}},
					{Shape: &caffepb.BlobShape{Dim: []int64{2}}, DoubleData: []float64{0.5, -0.5}},
				}},
		},
	}
}

func TestBinaryProtoMeanFile(t *testing.T) {
	mean := &caffepb.BlobProto{Num: proto.Int32(1), Channels: proto.Int32(3), Height: proto.Int32(2), Width: proto.Int32(2),
		Data: []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}}
	path := filepath.Join(t.TempDir(), "mean.binaryproto")
	if err := WriteProto(path, mean); err != nil {
		t.Fatal(err)
	}
	got, err := ReadBlobProto(path)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, mean) || !blob.ShapeEquals(ProtoShape(got), []int{1, 3, 2, 2}) {
		t.Errorf("read %v", got)
	}
	b, err := BlobFromProto[float32](got, false)
	if err != nil || b.Data()[11] != 12 {
		t.Errorf("BlobFromProto: %v", err)
	}
	// A truncated file is a DecodeError naming the path.
	raw, _ := os.ReadFile(path)
	if err := os.WriteFile(path, raw[:len(raw)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	var de *DecodeError
	if _, err := ReadBlobProto(path); !errors.As(err, &de) || de.File != path || de.Field != "BlobProto.data" {
		t.Errorf("err = %v, want a DecodeError for BlobProto.data in %s", err, path)
	}
}
