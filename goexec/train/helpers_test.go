package train

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
)

// Tiny images keep the tests cheap on a shared machine: 1×8×8, 10 classes.
const (
	imgC, imgH, imgW = 1, 8, 8
	imgSize          = imgC * imgH * imgW
)

// sampleSet is a labelled image set in memory.
type sampleSet struct {
	pix    []byte // n × imgSize
	labels []int32
}

func (s sampleSet) n() int { return len(s.labels) }

func (s sampleSet) slice(lo, hi int) sampleSet {
	return sampleSet{pix: s.pix[lo*imgSize : hi*imgSize], labels: s.labels[lo:hi]}
}

func (s sampleSet) concat(o sampleSet) sampleSet {
	return sampleSet{pix: append(append([]byte{}, s.pix...), o.pix...), labels: append(append([]int32{}, s.labels...), o.labels...)}
}

// makeSamples returns n images whose label is readable from the pixels
// (a bright row at the label's position), plus noise.
func makeSamples(n int, seed uint64) sampleSet {
	rng := rand.New(rand.NewPCG(seed, 1))
	s := sampleSet{pix: make([]byte, n*imgSize), labels: make([]int32, n)}
	for i := 0; i < n; i++ {
		l := int32(rng.IntN(10))
		s.labels[i] = l
		img := s.pix[i*imgSize : (i+1)*imgSize]
		for j := range img {
			img[j] = byte(rng.IntN(64))
		}
		r := int(l) % imgH
		for x := 0; x < imgW; x++ {
			if int(l) < imgH || x%2 == 0 {
				img[r*imgW+x] = 200 + byte(rng.IntN(55))
			}
		}
	}
	return s
}

// arrowIPC writes the samples as an Arrow IPC stream in the MNIST "plain"
// schema (label int32, data binary), in batches of batchRows rows.
func arrowIPC(t testing.TB, s sampleSet, batchRows int) []byte {
	t.Helper()
	return arrowIPCRowsBatched(t, s.labels, s.pix, imgSize, batchRows)
}

// arrowIPCRows writes labels and fixed-size pixel rows as one Arrow IPC stream.
func arrowIPCRows(t testing.TB, labels []int32, pix []byte, size int) []byte {
	return arrowIPCRowsBatched(t, labels, pix, size, 1000)
}

func arrowIPCRowsBatched(t testing.TB, labels []int32, pix []byte, size, batchRows int) []byte {
	t.Helper()
	s := struct {
		pix    []byte
		labels []int32
	}{pix, labels}
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "label", Type: arrow.PrimitiveTypes.Int32},
		{Name: "data", Type: arrow.BinaryTypes.Binary},
	}, nil)
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	for lo := 0; lo < len(s.labels); lo += batchRows {
		hi := min(lo+batchRows, len(s.labels))
		b := array.NewRecordBuilder(mem, schema)
		b.Field(0).(*array.Int32Builder).AppendValues(s.labels[lo:hi], nil)
		db := b.Field(1).(*array.BinaryBuilder)
		for i := lo; i < hi; i++ {
			db.Append(s.pix[i*size : (i+1)*size])
		}
		rec := b.NewRecordBatch()
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		b.Release()
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const netTemplate = `
name: "tiny"
layer { name: "data" type: "MemoryData" top: "data" top: "label"
  memory_data_param { batch_size: %d channels: 1 height: 8 width: 8 }
  transform_param { scale: 0.00390625 } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1"
  param { lr_mult: 1 } param { lr_mult: 2 }
  inner_product_param { num_output: 16 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy" include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
`

// solverFor returns LeNet's solver settings around the tiny net with the
// given per-rank batch size.
func solverFor(t testing.TB, batch int) *caffepb.SolverParameter {
	t.Helper()
	np, err := prototxt.ParseNet("tiny.prototxt", []byte(fmt.Sprintf(netTemplate, batch)))
	if err != nil {
		t.Fatal(err)
	}
	sp, err := prototxt.ParseSolver("solver.prototxt", []byte(`
base_lr: 0.05 momentum: 0.9 weight_decay: 0.0005
lr_policy: "inv" gamma: 0.0001 power: 0.75
display: 2 max_iter: 1000 random_seed: 7 test_iter: 1 test_interval: 1000000 test_initialization: false`))
	if err != nil {
		t.Fatal(err)
	}
	sp.NetParam = np
	return sp
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rank is one in-process goexec: a Service behind a bufconn gRPC server.
type rank struct {
	svc    *Service
	client pb.TrainerClient
	mem    *memory.CheckedAllocator
}

// newRank starts a Service with a checked allocator; cleanup closes it and
// asserts that every Arrow byte was freed.
func newRank(t testing.TB) *rank {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	svc, err := New(WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(ServerOptions()...)
	svc.Register(srv)
	go srv.Serve(lis)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		if err := svc.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if n := mem.CurrentAlloc(); n != 0 {
			t.Errorf("Arrow memory leaked: %d bytes still allocated", n)
		}
	})
	return &rank{svc: svc, client: pb.NewTrainerClient(conn), mem: mem}
}

// load streams the samples to the rank as a partition, in small chunks.
func (r *rank) load(t testing.TB, key *pb.PartitionKey, sp *caffepb.SolverParameter, s sampleSet) *pb.PartitionInfo {
	t.Helper()
	info, err := r.loadErr(key, dataLayer(t, sp), arrowIPC(t, s, 37), 1000, int64(s.n()))
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func (r *rank) loadErr(key *pb.PartitionKey, layer, ipcBytes []byte, chunk int, rows int64) (*pb.PartitionInfo, error) {
	return r.loadChunks(key, layer, ipcBytes, chunk, rows, false)
}

// loadChunks streams a partition; headerOnly sends key and layer in a first
// chunk of their own (as the JVM shim does), the Arrow bytes after it.
func (r *rank) loadChunks(key *pb.PartitionKey, layer, ipcBytes []byte, chunk int, rows int64, headerOnly bool) (*pb.PartitionInfo, error) {
	st, err := r.client.LoadPartition(context.Background())
	if err != nil {
		return nil, err
	}
	if headerOnly {
		if err := st.Send(&pb.PartitionChunk{Key: key, Layer: layer, ExpectedRows: rows}); err != nil {
			return nil, err
		}
		key, layer, rows = nil, nil, 0
	}
	first := true
	for off := 0; first || off < len(ipcBytes); off += chunk {
		c := &pb.PartitionChunk{ArrowIpc: ipcBytes[off:min(off+chunk, len(ipcBytes))]}
		if first && !headerOnly {
			c.Key, c.Layer, c.ExpectedRows = key, layer, rows
		}
		first = false
		if err := st.Send(c); err != nil {
			if err == io.EOF {
				break // the server answered early; CloseAndRecv has its status
			}
			return nil, err
		}
	}
	return st.CloseAndRecv()
}

// dataLayer returns the MemoryData layer of the solver's net, serialised.
func dataLayer(t testing.TB, sp *caffepb.SolverParameter) []byte {
	t.Helper()
	for _, lp := range sp.GetNetParam().GetLayer() {
		if lp.GetType() == "MemoryData" {
			return marshal(t, lp)
		}
	}
	t.Fatal("no MemoryData layer")
	return nil
}

// roundResult is what a TrainRound stream delivered.
type roundResult struct {
	weights  *caffepb.NetParameter
	state    *caffepb.SolverState
	progress []*pb.Progress
	done     *pb.RoundStats
}

func collect(stream grpc.ServerStreamingClient[pb.TrainRoundEvent]) (*roundResult, error) {
	var w, st []byte
	res := &roundResult{}
	for {
		ev, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch e := ev.GetEvent().(type) {
		case *pb.TrainRoundEvent_Progress:
			res.progress = append(res.progress, e.Progress)
		case *pb.TrainRoundEvent_Weights:
			if int64(len(w)) != e.Weights.GetOffset() {
				return nil, fmt.Errorf("weights chunk at %d, have %d bytes", e.Weights.GetOffset(), len(w))
			}
			w = append(w, e.Weights.GetData()...)
		case *pb.TrainRoundEvent_SolverState:
			st = append(st, e.SolverState.GetData()...)
		case *pb.TrainRoundEvent_Done:
			res.done = e.Done
		}
	}
	if res.done == nil {
		return nil, fmt.Errorf("stream ended without done")
	}
	res.weights, res.state = &caffepb.NetParameter{}, &caffepb.SolverState{}
	if err := proto.Unmarshal(w, res.weights); err != nil {
		return nil, err
	}
	if err := proto.Unmarshal(st, res.state); err != nil {
		return nil, err
	}
	return res, nil
}

func (r *rank) train(ctx context.Context, req *pb.TrainRoundRequest) (*roundResult, error) {
	stream, err := r.client.TrainRound(ctx, req)
	if err != nil {
		return nil, err
	}
	return collect(stream)
}

// trainRanks runs one round on every rank concurrently (allreduce over
// loopback TCP when there are several), with per-rank request tweaks.
func trainRanks(t testing.TB, ranks []*rank, base *pb.TrainRoundRequest, tweak func(i int, r *pb.TrainRoundRequest)) ([]*roundResult, []error) {
	t.Helper()
	n := len(ranks)
	var peers []string
	if n > 1 && base.GetSyncMode() != pb.SyncMode_AVERAGE {
		for _, r := range ranks {
			resp, err := r.client.OpenPeerPort(context.Background(), &pb.OpenPeerPortRequest{Ip: "127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			peers = append(peers, resp.GetAddress())
		}
	}
	res := make([]*roundResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, r := range ranks {
		req := proto.CloneOf(base)
		req.Rank, req.WorldSize, req.Peers = int32(i), int32(n), peers
		req.Secret = []byte("per-application-secret-0123456789")
		if tweak != nil {
			tweak(i, req)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = r.train(context.Background(), req)
		}()
	}
	wg.Wait()
	return res, errs
}

func blobsOf(np *caffepb.NetParameter) map[string][]float32 {
	out := map[string][]float32{}
	for _, lp := range np.GetLayer() {
		for j, b := range lp.GetBlobs() {
			out[fmt.Sprintf("%s/%d", lp.GetName(), j)] = b.GetData()
		}
	}
	return out
}

// maxRelDiff compares two nets' blobs: the largest |a-b| / (1 + |a|).
func maxRelDiff(t testing.TB, a, b *caffepb.NetParameter) float64 {
	t.Helper()
	ba, bb := blobsOf(a), blobsOf(b)
	if len(ba) == 0 || len(ba) != len(bb) {
		t.Fatalf("nets have %d and %d blobs", len(ba), len(bb))
	}
	worst := 0.0
	for k, va := range ba {
		vb, ok := bb[k]
		if !ok || len(va) != len(vb) {
			t.Fatalf("blob %s: %d vs %d values", k, len(va), len(vb))
		}
		for i := range va {
			d := float64(va[i]) - float64(vb[i])
			if d < 0 {
				d = -d
			}
			av := float64(va[i])
			if av < 0 {
				av = -av
			}
			worst = max(worst, d/(1+av))
		}
	}
	return worst
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
