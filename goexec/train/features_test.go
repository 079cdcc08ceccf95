package train

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
)

// featureRows is a decoded Features stream: IDs and each blob's values per row.
type featureRows struct {
	ids    []string
	values map[string][][]float32
	chunks int
}

// features calls Features and decodes every chunk, checking that chunks are
// contiguous, each a complete Arrow IPC stream with the documented schema.
func (r *rank) features(t *testing.T, req *pb.FeaturesRequest) (*featureRows, error) {
	t.Helper()
	stream, err := r.client.Features(context.Background(), req)
	if err != nil {
		return nil, err
	}
	out := &featureRows{values: map[string][][]float32{}}
	for {
		c, err := stream.Recv()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out.chunks++
		if c.GetFirstRow() != int64(len(out.ids)) {
			t.Fatalf("chunk %d starts at row %d, want %d", out.chunks, c.GetFirstRow(), len(out.ids))
		}
		rd, err := ipc.NewReader(bytes.NewReader(c.GetArrowIpc()), ipc.WithAllocator(memory.NewGoAllocator()))
		if err != nil {
			t.Fatalf("chunk %d: %v", out.chunks, err)
		}
		sch := rd.Schema()
		if sch.Field(0).Name != SampleIDColumn || sch.Field(0).Type.ID() != arrow.STRING || sch.Field(0).Nullable {
			t.Fatalf("first column %v, want SampleID utf8 not null", sch.Field(0))
		}
		got := 0
		for rd.Next() {
			rec := rd.RecordBatch()
			ids := rec.Column(0).(*array.String)
			for i := 0; i < ids.Len(); i++ {
				out.ids = append(out.ids, ids.Value(i))
			}
			for j := 1; j < int(rec.NumCols()); j++ {
				name := sch.Field(j).Name
				l := rec.Column(j).(*array.List)
				vals := l.ListValues().(*array.Float32).Float32Values()
				offs := l.Offsets()
				for i := 0; i < l.Len(); i++ {
					out.values[name] = append(out.values[name], append([]float32(nil), vals[offs[i]:offs[i+1]]...))
				}
			}
			got += int(rec.NumRows())
		}
		if err := rd.Err(); err != nil {
			t.Fatalf("chunk %d: %v", out.chunks, err)
		}
		rd.Release()
		if int64(got) != c.GetRows() {
			t.Fatalf("chunk %d says %d rows, holds %d", out.chunks, c.GetRows(), got)
		}
	}
}

// trainedWeights trains the tiny net briefly on a partition of its own.
func trainedWeights(t *testing.T, r *rank, sp *caffepb.SolverParameter) *caffepb.NetParameter {
	t.Helper()
	r.load(t, key(0), sp, makeSamples(400, 50))
	res, err := r.train(context.Background(), &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: 100,
		Data: []*pb.DataBinding{{Layer: "data", Key: key(0)}}})
	if err != nil {
		t.Fatal(err)
	}
	return res.weights
}

// TestFeatures: every row of the partition exactly once, in order, with the
// caller's IDs; the partial last batch's padding is dropped; the values are
// those a net of batch size 1 computes for the same sample.
func TestFeatures(t *testing.T) {
	const batch, rows = 7, 23 // 4 passes, the last with 2 real rows and 5 padded
	sp := solverFor(t, batch)
	r := newRank(t)
	w := trainedWeights(t, r, sp)
	test := makeSamples(rows, 51)
	tk := &pb.PartitionKey{Dataset: "app/features/data", Partition: 3}
	r.load(t, tk, sp, test)
	ids := make([]string, rows)
	for i := range ids {
		ids[i] = fmt.Sprintf("img-%02d", i)
	}
	req := &pb.FeaturesRequest{Solver: marshal(t, sp), Weights: marshal(t, w), Data: &pb.DataBinding{Layer: "data", Key: tk},
		Blobs: []string{"ip2", "label", "accuracy"}, SampleIds: ids, RowsPerChunk: 5}
	got, err := r.features(t, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.ids) != rows || got.chunks != 5 {
		t.Fatalf("%d rows in %d chunks, want %d rows in 5 chunks", len(got.ids), got.chunks, rows)
	}
	for i, id := range got.ids {
		if id != ids[i] {
			t.Fatalf("row %d: SampleID %q, want %q", i, id, ids[i])
		}
		if l := got.values["label"][i]; len(l) != 1 || l[0] != float32(test.labels[i]) {
			t.Fatalf("row %d: label %v, want [%d]", i, l, test.labels[i])
		}
		if n := len(got.values["ip2"][i]); n != 10 {
			t.Fatalf("row %d: ip2 has %d values, want 10", i, n)
		}
		if a := got.values["accuracy"][i]; len(a) != 1 || a[0] < 0 || a[0] > 1 {
			t.Fatalf("row %d: accuracy %v, want one value in [0, 1] (the batch's)", i, a)
		}
	}

	// The same net with batch size 1 has no padding: same values per sample.
	sp1 := solverFor(t, 1)
	req1 := &pb.FeaturesRequest{Solver: marshal(t, sp1), Weights: marshal(t, w), Data: &pb.DataBinding{Layer: "data", Key: tk},
		Blobs: []string{"ip2"}}
	one, err := r.features(t, req1)
	if err != nil {
		t.Fatal(err)
	}
	right := 0
	for i := 0; i < rows; i++ {
		if want := fmt.Sprintf("%s#%d:%d", tk.GetDataset(), tk.GetPartition(), i); one.ids[i] != want {
			t.Fatalf("generated SampleID %q, want %q", one.ids[i], want)
		}
		a, b := got.values["ip2"][i], one.values["ip2"][i]
		best := 0
		for k := range a {
			if d := math.Abs(float64(a[k] - b[k])); d > 1e-4*(1+math.Abs(float64(b[k]))) {
				t.Fatalf("row %d ip2[%d]: %g with batch %d, %g with batch 1", i, k, a[k], batch, b[k])
			}
			if a[k] > a[best] {
				best = k
			}
		}
		if int32(best) == test.labels[i] {
			right++
		}
	}
	if right < rows*8/10 {
		t.Errorf("argmax(ip2) matches the label on %d of %d rows after training", right, rows)
	}
}

func TestFeaturesErrors(t *testing.T) {
	sp := solverFor(t, 4)
	r := newRank(t)
	tk := &pb.PartitionKey{Dataset: "app/features/data", Partition: 0}
	r.load(t, tk, sp, makeSamples(10, 60))
	w := trainedWeights(t, r, sp)
	base := func() *pb.FeaturesRequest {
		return &pb.FeaturesRequest{Solver: marshal(t, sp), Weights: marshal(t, w), Data: &pb.DataBinding{Layer: "data", Key: tk},
			Blobs: []string{"ip2"}}
	}
	call := func(tweak func(*pb.FeaturesRequest)) error {
		req := base()
		tweak(req)
		_, err := r.features(t, req)
		return err
	}
	wantCode(t, call(func(q *pb.FeaturesRequest) { q.Blobs = []string{"ip2", "fc7"} }), codes.InvalidArgument,
		`"fc7"`, "its blobs:", "data", "label", "conv1", "ip2", "accuracy")
	wantCode(t, call(func(q *pb.FeaturesRequest) { q.Blobs = nil }), codes.InvalidArgument, "blobs", "required")
	wantCode(t, call(func(q *pb.FeaturesRequest) { q.Blobs = []string{"ip2", "ip2"} }), codes.InvalidArgument, `"ip2"`, "twice")
	wantCode(t, call(func(q *pb.FeaturesRequest) { q.Blobs = []string{"SampleID"} }), codes.InvalidArgument, "sample ID")
	wantCode(t, call(func(q *pb.FeaturesRequest) { q.SampleIds = []string{"a", "b"} }), codes.InvalidArgument,
		"sample_ids", "2 IDs", "10 rows")
	wantCode(t, call(func(q *pb.FeaturesRequest) { q.Weights = nil }), codes.InvalidArgument, "weights")
	wantCode(t, call(func(q *pb.FeaturesRequest) { q.Data.Layer = "nope" }), codes.InvalidArgument, `"nope"`, "data")
	wantCode(t, call(func(q *pb.FeaturesRequest) { q.Data.Key = key(9) }), codes.FailedPrecondition, "LoadPartition")
	wantCode(t, call(func(q *pb.FeaturesRequest) { q.RowsPerChunk = -1 }), codes.InvalidArgument, "rows_per_chunk")
}

// TestFeaturesIgnoreShuffle: a CoSData layer that shuffles for training
// still yields the partition's rows in order, each once.
func TestFeaturesIgnoreShuffle(t *testing.T) {
	const batch, rows = 5, 13
	sp := solverFor(t, batch)
	r := newRank(t)
	w := trainedWeights(t, r, sp)
	memData := `layer { name: "data" type: "MemoryData" top: "data" top: "label"
  memory_data_param { batch_size: %d channels: 1 height: 8 width: 8 }
  transform_param { scale: 0.00390625 } }`
	cosData := `layer { name: "data" type: "CoSData" top: "data" top: "label"
  cos_data_param { batch_size: %d shuffle: true
    top { name: "data" type: RAW_IMAGE channels: 1 height: 8 width: 8 transform_param { scale: 0.00390625 } }
    top { name: "label" type: INT sample_num_axes: 0 } } }`
	if !strings.Contains(netTemplate, memData) {
		t.Fatal("netTemplate's data layer changed; update this test")
	}
	np, err := prototxt.ParseNet("cos.prototxt", []byte(fmt.Sprintf(strings.Replace(netTemplate, memData, cosData, 1), batch)))
	if err != nil {
		t.Fatal(err)
	}
	cos := proto.CloneOf(sp)
	cos.NetParam = np
	test := makeSamples(rows, 70)
	tk := &pb.PartitionKey{Dataset: "app/features/cos", Partition: 0}
	if _, err := r.loadErr(tk, marshal(t, np.GetLayer()[0]), arrowIPC(t, test, 4), 1000, rows); err != nil {
		t.Fatal(err)
	}
	got, err := r.features(t, &pb.FeaturesRequest{Solver: marshal(t, cos), Weights: marshal(t, w),
		Data: &pb.DataBinding{Layer: "data", Key: tk}, Blobs: []string{"label"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.ids) != rows {
		t.Fatalf("%d rows, want %d", len(got.ids), rows)
	}
	for i := 0; i < rows; i++ {
		if l := got.values["label"][i]; l[0] != float32(test.labels[i]) {
			t.Fatalf("row %d: label %v, want %d (rows out of order)", i, l, test.labels[i])
		}
	}
}
