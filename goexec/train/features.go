package train

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/arrowio"
	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/network"
	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
)

// SampleIDColumn is the first column of every Features chunk, named as in
// CaffeOnSpark's feature DataFrames.
const SampleIDColumn = "SampleID"

// DefaultRowsPerChunk caps the rows of one FeaturesChunk unless the request
// says otherwise; featureChunkBytes caps its feature values.
const (
	DefaultRowsPerChunk = 4096
	featureChunkBytes   = 16 << 20
)

// featurePlan is a validated FeaturesRequest.
type featurePlan struct {
	np      *caffepb.NetParameter
	state   *caffepb.NetState
	idx     int
	weights *caffepb.NetParameter
	blobs   []string
	perMsg  int
}

// testNet picks the solver's test net idx and its state (phase TEST).
func testNet(sp *caffepb.SolverParameter, idx int) (*caffepb.NetParameter, *caffepb.NetState, error) {
	var np *caffepb.NetParameter
	switch {
	case idx < 0:
		return nil, nil, invalid("test_net_index", "negative (%d)", idx)
	case idx < len(sp.GetTestNetParam()):
		np = sp.GetTestNetParam()[idx]
	case sp.NetParam != nil:
		np = sp.GetNetParam()
	default:
		return nil, nil, invalid("test_net_index", "%d: the solver has %d inlined test nets and no net_param", idx, len(sp.GetTestNetParam()))
	}
	st := &caffepb.NetState{}
	if idx < len(sp.GetTestState()) {
		st = proto.CloneOf(sp.GetTestState()[idx])
	}
	st.Phase = caffepb.Phase_TEST.Enum()
	return np, st, nil
}

func planFeatures(req *pb.FeaturesRequest) (*featurePlan, error) {
	if len(req.GetSolver()) == 0 {
		return nil, invalid("solver", "required (binary caffe.SolverParameter with the nets inlined)")
	}
	sp := &caffepb.SolverParameter{}
	if err := proto.Unmarshal(req.GetSolver(), sp); err != nil {
		return nil, invalid("solver", "not a caffe.SolverParameter: %v", err)
	}
	p := &featurePlan{idx: int(req.GetTestNetIndex())}
	var err error
	if p.np, p.state, err = testNet(sp, p.idx); err != nil {
		return nil, err
	}
	if len(req.GetWeights()) == 0 {
		return nil, invalid("weights", "required (the caffe.NetParameter to extract features with)")
	}
	p.weights = &caffepb.NetParameter{}
	if err := proto.Unmarshal(req.GetWeights(), p.weights); err != nil {
		return nil, invalid("weights", "not a caffe.NetParameter: %v", err)
	}
	if len(req.GetBlobs()) == 0 {
		return nil, invalid("blobs", "required (the blobs to extract, e.g. ip2, prob)")
	}
	for i, b := range req.GetBlobs() {
		switch {
		case b == "":
			return nil, invalid(fmt.Sprintf("blobs[%d]", i), "empty name")
		case b == SampleIDColumn:
			return nil, invalid(fmt.Sprintf("blobs[%d]", i), "%q is the name of the sample ID column", b)
		case slices.Contains(req.GetBlobs()[:i], b):
			return nil, invalid(fmt.Sprintf("blobs[%d]", i), "blob %q requested twice", b)
		}
	}
	p.blobs = req.GetBlobs()
	if req.GetData() == nil || req.GetData().GetLayer() == "" {
		return nil, invalid("data.layer", "required (the test net's data layer fed from the partition)")
	}
	if _, err := keyOf(req.GetData().GetKey(), "data.key"); err != nil {
		return nil, err
	}
	switch n := req.GetRowsPerChunk(); {
	case n < 0:
		return nil, invalid("rows_per_chunk", "negative (%d)", n)
	case n == 0:
		p.perMsg = DefaultRowsPerChunk
	default:
		p.perMsg = int(n)
	}
	return p, nil
}

// Features runs a test net forward over every row of a cached partition once
// and streams the requested blobs per sample as Arrow IPC (see trainer.proto).
func (s *Service) Features(req *pb.FeaturesRequest, stream grpc.ServerStreamingServer[pb.FeaturesChunk]) error {
	ctx := stream.Context()
	p, err := planFeatures(req)
	if err != nil {
		return err
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	start := time.Now()
	n, err := network.New[float32](p.np, p.state, s.reg, network.WithoutFillers())
	if err != nil {
		return invalid("solver", "test net %d: %v", p.idx, err)
	}
	if err := n.CopyTrainedLayersFrom(p.weights); err != nil {
		return invalid("weights", "%v", err)
	}
	var missing []string
	for _, b := range p.blobs {
		if n.BlobByName(b) == nil {
			missing = append(missing, fmt.Sprintf("%q", b))
		}
	}
	if len(missing) > 0 {
		return invalid("blobs", "test net %q has no blob %s (its blobs: %s)", n.Name(), strings.Join(missing, ", "), strings.Join(n.BlobNames(), ", "))
	}
	src, err := s.bindInOrder(n, req.GetData())
	if err != nil {
		return err
	}
	defer src.sampler.Close()
	rows := src.rows
	ids := req.GetSampleIds()
	if len(ids) > 0 && len(ids) != rows {
		return invalid("sample_ids", "%d IDs for partition %s of %d rows", len(ids), src.key, rows)
	}
	if len(ids) == 0 {
		ids = make([]string, rows)
		for i := range ids {
			ids[i] = fmt.Sprintf("%s:%d", src.key, i)
		}
	}
	out := newFeatureWriter(s.mem, p.blobs)
	defer out.release()
	send := func() error {
		if out.rows == 0 {
			return nil
		}
		first, k := out.first, out.rows
		b, err := out.flush()
		if err != nil {
			return internal(noIter, "features of partition %s: encoding rows %d-%d: %v", src.key, first, first+k-1, err)
		}
		return stream.Send(&pb.FeaturesChunk{ArrowIpc: b, FirstRow: int64(first), Rows: int64(k), PartitionRows: int64(rows)})
	}
	batch := src.batch
	passes := (rows + batch - 1) / batch
	blobs := make([]*blob.Blob[float32], len(p.blobs))
	for pass := 0; pass < passes; pass++ {
		if err := ctx.Err(); err != nil {
			return ctxStatus(err, "features stopped")
		}
		if _, err := n.Forward(); err != nil {
			at := func(pos int) (string, string, bool) {
				if pos < 0 || pos >= batch {
					return "", "", false
				}
				i := (pass*batch + pos) % rows
				return ids[i], fmt.Sprintf("partition %s row %d (sample id %q)", src.key, i, ids[i]), true
			}
			return trainError(ctx, fmt.Sprintf("test net %d: pass %d over partition %s", p.idx, pass, src.key), noIter, err, at)
		}
		for j, name := range p.blobs {
			blobs[j] = n.BlobByName(name)
		}
		lo := pass * batch
		hi := min(lo+batch, rows) // the rest of the last batch wrapped around: dropped
		for i := lo; i < hi; i++ {
			if out.rows == 0 {
				out.first = i
			}
			out.add(ids[i], blobs, i-lo, batch)
			if out.rows >= p.perMsg || out.bytes >= featureChunkBytes {
				if err := send(); err != nil {
					return err
				}
			}
		}
	}
	if err := send(); err != nil {
		return err
	}
	s.log.Info().Str("partition", src.key.String()).Int("rows", rows).Int("passes", passes).
		Int("padded_rows", passes*batch-rows).Strs("blobs", p.blobs).
		Float64("seconds", time.Since(start).Seconds()).Msg("features extracted")
	return nil
}

// orderedSource is the one fed data layer of a features net, walking its
// partition in order from row 0.
type orderedSource struct {
	key     arrowio.Key
	sampler *arrowio.Sampler[float32]
	rows    int
	batch   int
}

// bindInOrder feeds the net's data layer from the cached partition in
// partition order (never shuffled, test-time transforms), so pass k holds
// rows k·batch to k·batch+batch-1, the last pass wrapping around to row 0.
func (s *Service) bindInOrder(n *network.Net[float32], db *pb.DataBinding) (*orderedSource, error) {
	li := n.LayerIndex(db.GetLayer())
	if li < 0 {
		return nil, invalid("data.layer", "the test net has no layer %q (fed layers: %s)", db.GetLayer(), strings.Join(n.FedLayers(), ", "))
	}
	for _, name := range n.FedLayers() {
		if name != db.GetLayer() {
			return nil, invalid("data", "the test net feeds data layers %s; features bind exactly one", strings.Join(n.FedLayers(), ", "))
		}
	}
	lp := n.LayerParams()[li]
	ld, err := dataOf(lp, false)
	if err != nil {
		return nil, invalid("data.layer", "%v", err)
	}
	ds, key, err := s.partition(db.GetKey(), "data.key")
	if err != nil {
		return nil, err
	}
	defer ds.Release()
	if err := s.withMean(lp, ld, key); err != nil {
		return nil, badInput(key.String(), "data: %v", err)
	}
	sm, err := arrowio.NewSampler[float32](ds, ld.spec, arrowio.SamplerOptions{BatchSize: ld.batch, Policy: arrowio.UnevenEpochs})
	if err != nil {
		return nil, badInput(key.String(), "data.key: partition %s does not fit layer %q: %v", key, lp.GetName(), err)
	}
	if err := n.SetSource(lp.GetName(), sm); err != nil {
		sm.Close()
		return nil, invalid("data.layer", "%v", err)
	}
	return &orderedSource{key: key, sampler: sm, rows: ds.Len(), batch: ld.batch}, nil
}

// featureWriter builds the rows of one FeaturesChunk.
type featureWriter struct {
	mem    memory.Allocator
	schema *arrow.Schema
	b      *array.RecordBuilder
	first  int // partition row of the first buffered sample
	rows   int
	bytes  int
}

func newFeatureWriter(mem memory.Allocator, blobs []string) *featureWriter {
	fields := []arrow.Field{{Name: SampleIDColumn, Type: arrow.BinaryTypes.String}}
	for _, name := range blobs {
		fields = append(fields, arrow.Field{Name: name, Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Float32)})
	}
	schema := arrow.NewSchema(fields, nil)
	return &featureWriter{mem: mem, schema: schema, b: array.NewRecordBuilder(mem, schema)}
}

// add appends sample i of a batch of the given size: each blob's slice for
// the sample when its first axis is the batch, else the whole blob.
func (w *featureWriter) add(id string, blobs []*blob.Blob[float32], i, batch int) {
	w.b.Field(0).(*array.StringBuilder).Append(id)
	for j, bl := range blobs {
		vals := bl.Data()
		if sh := bl.Shape(); len(sh) > 0 && sh[0] == batch {
			per := bl.Count() / batch
			vals = vals[i*per : (i+1)*per]
		}
		lb := w.b.Field(j + 1).(*array.ListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.Float32Builder).AppendValues(vals, nil)
		w.bytes += 4 * len(vals)
	}
	w.rows++
}

// flush returns the buffered rows as one Arrow IPC stream and resets.
func (w *featureWriter) flush() ([]byte, error) {
	rec := w.b.NewRecordBatch()
	defer rec.Release()
	w.rows, w.bytes = 0, 0
	var buf bytes.Buffer
	iw := ipc.NewWriter(&buf, ipc.WithSchema(w.schema), ipc.WithAllocator(w.mem))
	if err := iw.Write(rec); err != nil {
		iw.Close()
		return nil, err
	}
	if err := iw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (w *featureWriter) release() { w.b.Release() }
