package train

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
)

// TestLoadPartitionResize: 8×8 PNG rows for a layer of 6×6 images are
// refused, naming -resize, unless the first chunk asks for CaffeOnSpark's
// -resize; then they are resampled to 6×6.
func TestLoadPartitionResize(t *testing.T) {
	r := newRank(t)
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 4)
	}
	var one bytes.Buffer
	if err := png.Encode(&one, img); err != nil {
		t.Fatal(err)
	}
	const rows = 10
	labels := make([]int32, rows)
	ipcBytes := arrowIPCRows(t, labels, bytes.Repeat(one.Bytes(), rows), one.Len())
	layer := marshal(t, &caffepb.LayerParameter{Name: proto.String("data"), Type: proto.String("MemoryData"),
		Top: []string{"data", "label"}, MemoryDataParam: &caffepb.MemoryDataParameter{BatchSize: proto.Uint32(4),
			Channels: proto.Uint32(1), Height: proto.Uint32(6), Width: proto.Uint32(6), ImageEncoded: proto.Bool(true)}})

	_, err := r.loadErr(key(0), layer, ipcBytes, 1<<20, 0)
	wantCode(t, err, codes.InvalidArgument, "8×8", "-resize")

	st, err := r.client.LoadPartition(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&pb.PartitionChunk{Key: key(0), Layer: layer, Resize: true, ArrowIpc: ipcBytes}); err != nil {
		t.Fatal(err)
	}
	info, err := st.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(info.GetTops(), ","); info.GetRows() != rows || got != "data 1x6x6,label 1" {
		t.Errorf("with resize: %d rows, tops %q; want %d rows of data 1x6x6", info.GetRows(), got, rows)
	}
}

// TestLoadPartitionSkipUnusable: rows whose image does not decode fail the
// load, naming the row, unless the first chunk asks for skip_unusable; then
// they are dropped, counted and named in the answer, and expected_rows
// counts them as sent.
func TestLoadPartitionSkipUnusable(t *testing.T) {
	r := newRank(t)
	img := image.NewGray(image.Rect(0, 0, 6, 6))
	var one bytes.Buffer
	if err := png.Encode(&one, img); err != nil {
		t.Fatal(err)
	}
	const rows = 10
	labels := make([]int32, rows)
	pix := bytes.Repeat(one.Bytes(), rows)
	for _, bad := range []int{3, 7} {
		copy(pix[bad*one.Len():], bytes.Repeat([]byte{0xee}, one.Len()))
	}
	ipcBytes := arrowIPCRows(t, labels, pix, one.Len())
	layer := marshal(t, &caffepb.LayerParameter{Name: proto.String("data"), Type: proto.String("MemoryData"),
		Top: []string{"data", "label"}, MemoryDataParam: &caffepb.MemoryDataParameter{BatchSize: proto.Uint32(4),
			Channels: proto.Uint32(1), Height: proto.Uint32(6), Width: proto.Uint32(6), ImageEncoded: proto.Bool(true)}})

	_, err := r.loadErr(key(0), layer, ipcBytes, 1<<20, rows)
	wantCode(t, err, codes.InvalidArgument, "row 3", "decoding")

	st, err := r.client.LoadPartition(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&pb.PartitionChunk{Key: key(0), Layer: layer, SkipUnusable: true, ExpectedRows: rows, ArrowIpc: ipcBytes}); err != nil {
		t.Fatal(err)
	}
	info, err := st.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	named := info.GetUnusable()
	if info.GetRows() != rows-2 || info.GetUnusableRows() != 2 || len(named) != 2 ||
		!strings.Contains(named[0], `column "data" row 3: decoding`) || !strings.Contains(named[1], "row 7") {
		t.Errorf("with skip_unusable: %d rows, %d unusable %q; want %d rows and rows 3 and 7 named", info.GetRows(),
			info.GetUnusableRows(), named, rows-2)
	}
}

// TestCropOnPartitions: a MemoryData layer with transform_param.crop_size
// (a Caffe Data layer read through Spark is rewritten into one) trains on
// random crops and scores on centred ones: its data top has the crop's size.
func TestCropOnPartitions(t *testing.T) {
	sp := solverFor(t, 8)
	sp.NetParam.GetLayer()[0].TransformParam.CropSize = proto.Uint32(6)
	r := newRank(t)
	r.load(t, key(0), sp, makeSamples(40, 3))
	bind := []*pb.DataBinding{{Layer: "data", Key: key(0)}}
	res, err := r.train(context.Background(), &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 3, Data: bind})
	if err != nil {
		t.Fatalf("training with crop_size 6 on 8×8 images: %v", err)
	}
	resp, err := r.client.Score(context.Background(), &pb.ScoreRequest{Solver: marshal(t, sp), Weights: marshal(t, res.weights), Data: bind})
	if err != nil {
		t.Fatalf("scoring with crop_size 6: %v", err)
	}
	if resp.GetPasses() != 5 {
		t.Errorf("%d passes over 40 rows at batch 8, want 5", resp.GetPasses())
	}
}

// TestMeanFileOnPartitions: a layer with transform_param.mean_file trains
// on the mean image sent with its partition (LoadPartition's mean); a
// partition loaded without it is refused, naming the file.
func TestMeanFileOnPartitions(t *testing.T) {
	sp := solverFor(t, 8)
	dl := sp.NetParam.GetLayer()[0]
	dl.TransformParam.MeanFile = proto.String("hdfs:///data/mean.binaryproto")
	dl.TransformParam.CropSize = proto.Uint32(6)
	r := newRank(t)
	s := makeSamples(40, 3)
	r.load(t, key(0), sp, s)
	bind := []*pb.DataBinding{{Layer: "data", Key: key(0)}}
	_, err := r.train(context.Background(), &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 1, Data: bind})
	wantCode(t, err, codes.InvalidArgument, "mean_file hdfs:///data/mean.binaryproto", "without its mean image")

	vals := make([]float32, 64)
	for i := range vals {
		vals[i] = float32(i)
	}
	mean := marshal(t, &caffepb.BlobProto{Num: proto.Int32(1), Channels: proto.Int32(1), Height: proto.Int32(8), Width: proto.Int32(8), Data: vals})
	st, err := r.client.LoadPartition(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&pb.PartitionChunk{Key: key(0), Layer: dataLayer(t, sp), Mean: mean, ArrowIpc: arrowIPC(t, s, 37)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.train(context.Background(), &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 2, Data: bind}); err != nil {
		t.Fatalf("training with the mean image: %v", err)
	}
	if _, err := r.client.Score(context.Background(), &pb.ScoreRequest{Solver: marshal(t, sp), Data: bind}); err != nil && !strings.Contains(err.Error(), "weights") {
		t.Fatalf("scoring with the mean image: %v", err)
	}
}
