package network

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

func TestToProtoCopyRoundTrip(t *testing.T) {
	a := newTiny(t, tinyNet)
	b, err := New[float64](parseNet(t, tinyNet), nil, fakeRegistry(t), WithSeed(99))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(a.LearnableParams()[0].Data(), b.LearnableParams()[0].Data()) {
		t.Fatal("different seeds gave equal weights; the test would prove nothing")
	}
	p := a.ToProto(false)
	// Through the wire format, as a .caffemodel goes.
	raw, err := proto.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back caffepb.NetParameter
	if err := proto.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if err := b.CopyTrainedLayersFrom(&back); err != nil {
		t.Fatal(err)
	}
	for i, pa := range a.LearnableParams() {
		if !slices.Equal(pa.Data(), b.LearnableParams()[i].Data()) {
			t.Errorf("param %d differs after copy", i)
		}
	}
	ip1 := p.GetLayer()[1]
	if ip1.GetName() != "ip1" || len(ip1.GetBlobs()) != 2 ||
		!slices.Equal(ip1.GetBlobs()[0].GetShape().GetDim(), []int64{4, 3}) ||
		len(ip1.GetBlobs()[0].GetDoubleData()) != 12 || len(ip1.GetBlobs()[0].GetDoubleDiff()) != 0 {
		t.Errorf("ip1 as written: %v", ip1)
	}
	if d := a.ToProto(true).GetLayer()[1].GetBlobs()[0].GetDoubleDiff(); len(d) != 12 {
		t.Errorf("writeDiff: %d diff values, want 12", len(d))
	}
	// float32 nets write float data.
	f, err := New[float32](parseNet(t, tinyNet), nil, fakeRegistry(t), WithSeed(7))
	if err != nil {
		t.Fatal(err)
	}
	if d := f.ToProto(false).GetLayer()[3].GetBlobs()[0].GetData(); len(d) != 8 {
		t.Errorf("float32 net wrote %d float values for ip2, want 8", len(d))
	}
	if err := f.CopyTrainedLayersFrom(p); err != nil {
		t.Fatalf("float32 net from double weights: %v", err)
	}
	if got, want := f.LearnableParams()[0].Data()[5], float32(a.LearnableParams()[0].Data()[5]); got != want {
		t.Errorf("converted weight %v, want %v", got, want)
	}
}

func TestCopyTrainedLayersMismatch(t *testing.T) {
	a := newTiny(t, tinyNet)
	p := a.ToProto(false)
	p.GetLayer()[3].GetBlobs()[0].Shape.Dim = []int64{2, 5}
	err := a.CopyTrainedLayersFrom(p)
	if !errors.Is(err, ErrIncompatible) {
		t.Fatalf("got %v, want ErrIncompatible", err)
	}
	for _, want := range []string{`"ip2"`, "2 4 (8)", "2 5 (10)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	p = a.ToProto(false)
	p.GetLayer()[1].Blobs = p.GetLayer()[1].Blobs[:1]
	if err := a.CopyTrainedLayersFrom(p); err == nil || !strings.Contains(err.Error(), `"ip1"`) {
		t.Errorf("missing bias blob: got %v", err)
	}
	// Legacy 4-D shapes (num, channels, height, width) match a 2-D blob
	// whose leading axes count as 1.
	p = a.ToProto(false)
	bp := p.GetLayer()[1].GetBlobs()[0]
	bp.Shape = nil
	bp.Num, bp.Channels, bp.Height, bp.Width = proto.Int32(1), proto.Int32(1), proto.Int32(4), proto.Int32(3)
	if err := a.CopyTrainedLayersFrom(p); err != nil {
		t.Errorf("legacy shape: %v", err)
	}
	bp.Height, bp.Width = proto.Int32(3), proto.Int32(4)
	if err := a.CopyTrainedLayersFrom(p); err == nil {
		t.Error("legacy shape 1 1 3 4 for a 4x3 blob: no error")
	}
	// Layers the net lacks are ignored.
	extra := &caffepb.LayerParameter{Name: proto.String("elsewhere"), Blobs: []*caffepb.BlobProto{{}}}
	if err := a.CopyTrainedLayersFrom(&caffepb.NetParameter{Layer: []*caffepb.LayerParameter{extra}}); err != nil {
		t.Errorf("unknown source layer: %v", err)
	}
}

func TestShareTrainedLayersWith(t *testing.T) {
	train := newTiny(t, tinyNet)
	test, err := New[float64](parseNet(t, tinyNet), nil, fakeRegistry(t), WithSeed(99))
	if err != nil {
		t.Fatal(err)
	}
	if err := test.ShareTrainedLayersWith(train); err != nil {
		t.Fatal(err)
	}
	train.LearnableParams()[0].Data()[0] = 42
	if test.LearnableParams()[0].Data()[0] != 42 {
		t.Error("test net does not see the train net's update")
	}
	other, err := New[float64](parseNet(t, strings.Replace(tinyNet, "num_output: 4", "num_output: 5", 1)), nil, fakeRegistry(t))
	if err == nil {
		err = other.ShareTrainedLayersWith(train)
	}
	if err == nil || !strings.Contains(err.Error(), `"ip1"`) {
		t.Errorf("sharing mismatched weights: got %v", err)
	}
}
