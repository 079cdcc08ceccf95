package train

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/layers"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
)

// lenetSolver is Caffe's LeNet solver around examples/lenet_train_test.prototxt
// (batch 64 per rank), without testing or display.
func lenetSolver(b testing.TB) *caffepb.SolverParameter {
	np, err := prototxt.ParseNetFile("../../examples/lenet_train_test.prototxt")
	if err != nil {
		b.Fatal(err)
	}
	sp, err := prototxt.ParseSolver("lenet_solver", []byte(`base_lr: 0.01 momentum: 0.9 weight_decay: 0.0005
lr_policy: "inv" gamma: 0.0001 power: 0.75 display: 0 max_iter: 10000 random_seed: 1`))
	if err != nil {
		b.Fatal(err)
	}
	sp.NetParam = np
	return sp
}

// mnistLike is n random 28×28 images with labels, in the MNIST Parquet schema.
func mnistLike(b testing.TB, n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 2))
	const size = 28 * 28
	s := struct {
		pix    []byte
		labels []int32
	}{make([]byte, n*size), make([]int32, n)}
	for i := range s.pix {
		s.pix[i] = byte(rng.IntN(256))
	}
	for i := range s.labels {
		s.labels[i] = int32(rng.IntN(10))
	}
	return arrowIPCRows(b, s.labels, s.pix, size)
}

// BenchmarkLeNetIteration times one LeNet training iteration (batch 64 per
// rank) with 1, 2 and 4 in-process ranks whose gradients are all-reduced
// over loopback TCP. All ranks share this machine's cores, so more ranks
// means proportionally less CPU each: the numbers show the synchronisation
// overhead on top of that, not a cluster's speed-up.
//
//	go test -run '^$' -bench LeNetIteration -benchtime 20x ./goexec/train/
func BenchmarkLeNetIteration(b *testing.B) {
	sp := lenetSolver(b)
	var layer []byte
	for _, lp := range sp.GetNetParam().GetLayer() {
		if lp.GetType() == "MemoryData" && lp.GetInclude()[0].GetPhase() == caffepb.Phase_TRAIN {
			layer = marshal(b, lp)
		}
	}
	for _, n := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("ranks=%d", n), func(b *testing.B) {
			ranks := make([]*rank, n)
			for i := range ranks {
				ranks[i] = newRank(b)
				if _, err := ranks[i].loadErr(key(i), layer, mnistLike(b, 1000, uint64(i)), 1<<20, 1000); err != nil {
					b.Fatal(err)
				}
			}
			req := &pb.TrainRoundRequest{Solver: marshal(b, sp), Iterations: int64(b.N), SyncMode: pb.SyncMode_ALLREDUCE}
			b.ResetTimer()
			res, errs := trainRanks(b, ranks, req, func(i int, r *pb.TrainRoundRequest) {
				r.Data = []*pb.DataBinding{{Layer: "mnist", Key: key(i)}}
			})
			b.StopTimer()
			for i, err := range errs {
				if err != nil {
					b.Fatalf("rank %d: %v", i, err)
				}
			}
			d := res[0].done
			b.ReportMetric(d.GetSeconds()/float64(d.GetIterations())*1e3, "ms/iter")
			b.ReportMetric(d.GetAllreduceSeconds()/float64(d.GetIterations())*1e3, "allreduce-ms/iter")
			b.ReportMetric(float64(n*64)*float64(d.GetIterations())/d.GetSeconds(), "images/s")
		})
	}
}

// BenchmarkWeightsRoundTrip is goexec's part of an averaging round: the
// trained weights to caffemodel bytes (what TrainRound returns) and the
// averaged bytes back into the net (what the next TrainRound loads), for
// LeNet and for a 60M-parameter net (one 6000×10000 inner product).
//
//	go test -run '^$' -bench WeightsRoundTrip -benchtime 3x ./goexec/train/
func BenchmarkWeightsRoundTrip(b *testing.B) {
	reg, err := layers.Standard()
	if err != nil {
		b.Fatal(err)
	}
	big, err := prototxt.ParseNet("big", []byte(`name: "big60M"
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 6000 } } }
layer { name: "fc" type: "InnerProduct" bottom: "x" top: "y" inner_product_param { num_output: 10000 } }`))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		np   *caffepb.NetParameter
	}{{"lenet", lenetSolver(b).GetNetParam()}, {"60M", big}} {
		b.Run(c.name, func(b *testing.B) {
			n, err := network.New[float32](c.np, &caffepb.NetState{Phase: caffepb.Phase_TRAIN.Enum()}, reg, network.WithoutFillers())
			if err != nil {
				b.Fatal(err)
			}
			params := 0
			for _, p := range n.LearnableParams() {
				params += p.Count()
			}
			var size int
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				w, err := proto.Marshal(n.ToProto(false))
				if err != nil {
					b.Fatal(err)
				}
				size = len(w)
				back := &caffepb.NetParameter{}
				if err := proto.Unmarshal(w, back); err != nil {
					b.Fatal(err)
				}
				if err := n.CopyTrainedLayersFrom(back); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(size))
			b.ReportMetric(float64(params), "params")
		})
	}
}
