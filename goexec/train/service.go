// Package train is goexec's Trainer service: it caches the Spark partitions
// the JVM shim streams as Arrow IPC, trains a Caffe net on them in rounds of
// τ iterations (synchronous SGD with a ring all-reduce of the gradients
// every iteration, or local training whose results the driver averages),
// and scores test nets. CONTRACT.md describes the call sequence per round.
//
// Sync modes. ALLREDUCE sums every learnable parameter's gradient over the
// ranks after each forward/backward (goexec/ring), divides by the world
// size and then applies the update, so N ranks with batch b train exactly
// like one rank with batch N·b and all replicas stay bit-identical. AVERAGE
// trains the round's iterations locally and returns the weights and the
// solver history; the driver averages both blob-wise (momentum history is
// averaged exactly like the weights) and sends the means back.
//
// Data. Each rank draws batch_size samples per iteration from its own
// cached partition only, epoch by epoch (arrowio.UnevenEpochs, or
// arrowio.WithReplacement on request): uneven partitions give uneven epochs,
// never truncation. Partition sizes are logged when cached and each round.
package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/arrowio"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/data"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/caffe/layers"
	"github.com/gocaffe/gocaffe/caffe/solver"
	"github.com/gocaffe/gocaffe/goexec/memcheck"
	"github.com/gocaffe/gocaffe/goexec/ring"
	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
)

// MaxMessageBytes is the gRPC message size goexec's server accepts and
// sends; clients must raise their limits to match.
const MaxMessageBytes = 1 << 30

// ChunkBytes is the largest weights or solver-state chunk TrainRound sends.
const ChunkBytes = 64 << 20

// ServerOptions returns the grpc.ServerOptions the Trainer needs (message
// size limits for weights and solver state).
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes)}
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sends the service's logs (partition sizes, round progress) to l.
func WithLogger(l zerolog.Logger) Option { return func(s *Service) { s.log = l } }

// WithAllocator sets the Arrow allocator partitions are decoded with.
func WithAllocator(m memory.Allocator) Option { return func(s *Service) { s.mem = m } }

// WithRegistry sets the layer registry nets are built from (layers.Standard
// by default).
func WithRegistry(r *layer.Registry) Option { return func(s *Service) { s.reg = r } }

// Service implements the Trainer gRPC service. Several can live in one
// process (tests run one per rank); each owns its partitions and session.
type Service struct {
	pb.UnimplementedTrainerServer
	log zerolog.Logger
	mem memory.Allocator
	reg *layer.Registry

	nonFinite  solver.NonFinite  // what a round does on a non-finite loss or gradient
	memSources *memcheck.Sources // where the memory budget is read (nil: the system's)

	cache *arrowio.Cache
	mu    sync.Mutex
	meta  map[arrowio.Key]partMeta
	lis   net.Listener // open peer port, taken by the next TrainRound

	// busy serialises TrainRound and Score: one net at a time per goexec.
	busy chan struct{}
	sess *session   // guarded by busy
	ring *roundRing // the ring kept for the next round; guarded by busy
}

// partMeta is what LoadPartition reported about a cached partition.
type partMeta struct {
	info *pb.PartitionInfo
	mean []float32 // the layer's mean_file image (PartitionChunk.mean), or nil
}

// meanOf decodes PartitionChunk.mean (a binary BlobProto); nil for none.
func meanOf(b []byte) ([]float32, error) {
	if len(b) == 0 {
		return nil, nil
	}
	bp := &caffepb.BlobProto{}
	if err := proto.Unmarshal(b, bp); err != nil {
		return nil, invalid("mean", "not a caffe.BlobProto: %v", err)
	}
	out := data.MeanValues(bp)
	if len(out) == 0 {
		return nil, invalid("mean", "the mean blob holds no values")
	}
	return out, nil
}

// withMean hands the mean image that came with the partition at key to the
// transform of the layer's data field, when the layer has a mean_file.
func (s *Service) withMean(lp *caffepb.LayerParameter, ld layerData, key arrowio.Key) error {
	if lp.GetType() == "CoSData" {
		for _, t := range lp.GetCosDataParam().GetTop() {
			if f := t.GetTransformParam().GetMeanFile(); f != "" {
				return fmt.Errorf("layer %q: top %q: transform_param.mean_file %s is read for MemoryData and Data layers only; give mean_value", lp.GetName(), t.GetName(), f)
			}
		}
		return nil
	}
	f := lp.GetTransformParam().GetMeanFile()
	if f == "" {
		return nil
	}
	s.mu.Lock()
	m := s.meta[key].mean
	s.mu.Unlock()
	if m == nil {
		return fmt.Errorf("layer %q: transform_param.mean_file %s: partition %s was loaded without its mean image (LoadPartition's mean)", lp.GetName(), f, key)
	}
	ld.spec.Fields[0].Transform.Mean = m
	return nil
}

// New returns a Service with an empty partition cache.
func New(opts ...Option) (*Service, error) {
	s := &Service{log: zerolog.Nop(), mem: memory.DefaultAllocator, cache: arrowio.NewCache(),
		meta: map[arrowio.Key]partMeta{}, busy: make(chan struct{}, 1)}
	for _, o := range opts {
		o(s)
	}
	if s.reg == nil {
		reg, err := layers.Standard()
		if err != nil {
			return nil, fmt.Errorf("trainer: %w", err)
		}
		s.reg = reg
	}
	return s, nil
}

// Register adds the service to a gRPC server (for server.WithService).
func (s *Service) Register(r grpc.ServiceRegistrar) { pb.RegisterTrainerServer(r, s) }

// Close releases the cached partitions, the training session and any open
// peer port. It waits for a running round to end.
func (s *Service) Close() error {
	s.busy <- struct{}{}
	defer func() { <-s.busy }()
	if s.sess != nil {
		s.sess.close()
		s.sess = nil
	}
	if s.ring != nil {
		s.ring.close()
		s.ring = nil
	}
	s.mu.Lock()
	lis := s.lis
	s.lis = nil
	s.meta = map[arrowio.Key]partMeta{}
	s.mu.Unlock()
	s.cache.Close()
	if lis != nil {
		return lis.Close()
	}
	return nil
}

// acquire waits for the net to be free, or for ctx.
func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.busy <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctxStatus(ctx.Err(), "waiting for the running round or score to finish")
	}
}

func (s *Service) release() { <-s.busy }

func keyOf(k *pb.PartitionKey, field string) (arrowio.Key, error) {
	if k == nil || k.GetDataset() == "" {
		return arrowio.Key{}, invalid(field+".dataset", "required")
	}
	if k.GetPartition() < 0 {
		return arrowio.Key{}, invalid(field+".partition", "negative (%d)", k.GetPartition())
	}
	return arrowio.Key{Dataset: k.GetDataset(), Partition: int(k.GetPartition())}, nil
}

func pbKey(k arrowio.Key) *pb.PartitionKey {
	return &pb.PartitionKey{Dataset: k.Dataset, Partition: int32(k.Partition)}
}

// LoadPartition decodes a streamed Arrow partition and caches it.
func (s *Service) LoadPartition(stream grpc.ClientStreamingServer[pb.PartitionChunk, pb.PartitionInfo]) error {
	ctx := stream.Context()
	start := time.Now()
	first, err := stream.Recv()
	if err == io.EOF {
		return invalid("chunks", "empty stream (the first chunk must carry key and layer)")
	}
	if err != nil {
		return err
	}
	key, err := keyOf(first.GetKey(), "key")
	if err != nil {
		return err
	}
	if len(first.GetLayer()) == 0 {
		return invalid("layer", "required in the first chunk (the data layer's LayerParameter)")
	}
	lp := &caffepb.LayerParameter{}
	if err := proto.Unmarshal(first.GetLayer(), lp); err != nil {
		return invalid("layer", "not a caffe.LayerParameter: %v", err)
	}
	ld, err := dataOf(lp, first.GetResize())
	if err != nil {
		return invalid("layer", "%v", err)
	}
	mean, err := meanOf(first.GetMean())
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	var received atomic.Int64
	fed := make(chan struct{})
	go func() {
		// Feed the chunks' bytes into the decoder; stop when it stops reading.
		defer close(fed)
		received.Add(int64(len(first.GetArrowIpc())))
		if b := first.GetArrowIpc(); len(b) > 0 {
			if _, err := pw.Write(b); err != nil {
				return
			}
		}
		for {
			c, err := stream.Recv()
			if err == io.EOF {
				pw.Close()
				return
			}
			if err != nil {
				pw.CloseWithError(fmt.Errorf("receiving chunks: %w", err))
				return
			}
			received.Add(int64(len(c.GetArrowIpc())))
			if b := c.GetArrowIpc(); len(b) > 0 {
				if _, err := pw.Write(b); err != nil {
					return
				}
			}
		}
	}()
	ds, err := arrowio.ReadStream(ctx, pr, s.mem, ld.spec, arrowio.WithSkipUnusable(first.GetSkipUnusable()))
	pr.CloseWithError(errors.New("decoder stopped"))
	if err != nil {
		// The feeder stops at the client's next chunk or end (its write
		// into the closed pipe fails): wait for it, so that no Recv runs on
		// the stream after this handler returns.
		select {
		case <-fed:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			return ctxStatus(ctx.Err(), "loading partition "+key.String())
		}
		subject := key.String()
		var re *arrowio.RowError
		if errors.As(err, &re) && re.ID != "" {
			subject = re.ID
		}
		return badInput(subject, "partition %s for layer %q: %v", key, lp.GetName(), err)
	}
	// The decoder read the whole Arrow stream; wait for the client to end its
	// side so nothing touches the stream after this handler returns.
	select {
	case <-fed:
	case <-ctx.Done():
		ds.Release()
		return ctxStatus(ctx.Err(), "loading partition "+key.String())
	}
	unusable, named := ds.Unusable()
	if want := first.GetExpectedRows(); want > 0 && int64(ds.Len()+unusable) != want {
		ds.Release()
		return invalid("expected_rows", "partition %s: sender wrote %d rows, decoded %d (%d unusable)", key, want, ds.Len()+unusable, unusable)
	}
	info := &pb.PartitionInfo{Key: pbKey(key), Cached: true, Rows: int64(ds.Len()), Bytes: ds.Bytes(),
		LayerName: lp.GetName(), DecodeSeconds: time.Since(start).Seconds(), UnusableRows: int64(unusable)}
	for _, re := range named {
		info.Unusable = append(info.Unusable, re.Error())
	}
	if unusable > 0 {
		s.log.Warn().Str("partition", key.String()).Str("layer", lp.GetName()).Int("unusable", unusable).
			Strs("first", info.Unusable).Msg("unusable rows dropped")
	}
	for _, f := range ds.Fields() {
		info.Tops = append(info.Tops, fmt.Sprintf("%s %s", f.Name, dims(f.Shape)))
	}
	s.cache.Put(key, ds)
	s.mu.Lock()
	s.meta[key] = partMeta{info: info, mean: mean}
	s.mu.Unlock()
	s.log.Info().Str("partition", key.String()).Str("layer", lp.GetName()).Int64("rows", info.Rows).
		Int64("bytes", info.Bytes).Int64("zero_copy_bytes", ds.ZeroCopyBytes()).Int64("ipc_bytes", received.Load()).
		Strs("tops", info.Tops).Float64("seconds", info.DecodeSeconds).Msg("partition cached")
	return stream.SendAndClose(info)
}

func dims(shape []int) string {
	if len(shape) == 0 {
		return "1"
	}
	out := ""
	for i, d := range shape {
		if i > 0 {
			out += "x"
		}
		out += fmt.Sprint(d)
	}
	return out
}

// HasPartition reports whether a partition is cached.
func (s *Service) HasPartition(ctx context.Context, k *pb.PartitionKey) (*pb.PartitionInfo, error) {
	key, err := keyOf(k, "key")
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	m, ok := s.meta[key]
	s.mu.Unlock()
	if !ok {
		return &pb.PartitionInfo{Key: pbKey(key)}, nil
	}
	return proto.CloneOf(m.info), nil
}

// DropPartition frees a cached partition.
func (s *Service) DropPartition(ctx context.Context, k *pb.PartitionKey) (*pb.PartitionInfo, error) {
	key, err := keyOf(k, "key")
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	m, ok := s.meta[key]
	delete(s.meta, key)
	s.mu.Unlock()
	s.cache.Drop(key)
	if !ok {
		return &pb.PartitionInfo{Key: pbKey(key)}, nil
	}
	info := proto.CloneOf(m.info)
	info.Cached = false
	s.log.Info().Str("partition", key.String()).Msg("partition dropped")
	return info, nil
}

// partition returns a cached dataset (with a reference) and the layer it was
// decoded for, or FailedPrecondition.
func (s *Service) partition(k *pb.PartitionKey, field string) (*arrowio.Dataset, arrowio.Key, error) {
	key, err := keyOf(k, field)
	if err != nil {
		return nil, key, err
	}
	ds, ok := s.cache.Get(key)
	if !ok {
		return nil, key, notCached(field, key)
	}
	return ds, key, nil
}

// OpenPeerPort listens for ring peers.
func (s *Service) OpenPeerPort(ctx context.Context, req *pb.OpenPeerPortRequest) (*pb.OpenPeerPortResponse, error) {
	if req.GetIp() == "" {
		return nil, invalid("ip", "required (the executor's IP address)")
	}
	lis, err := ring.Listen(req.GetIp(), int(req.GetPort()), req.GetAllowAnyAddress())
	if err != nil {
		return nil, invalid("ip", "%v", err)
	}
	s.mu.Lock()
	old := s.lis
	s.lis = lis
	s.mu.Unlock()
	if old != nil {
		old.Close()
	}
	s.log.Info().Str("address", lis.Addr().String()).Msg("peer port open")
	return &pb.OpenPeerPortResponse{Address: lis.Addr().String()}, nil
}

// takeListener hands the open peer port to a round.
func (s *Service) takeListener() net.Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lis
	s.lis = nil
	return l
}
