package train

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
	"github.com/gocaffe/gocaffe/goexec/server"
)

// TestRankProcess is the child side of TestLeNetProcesses: a goexec-like
// process serving the Trainer on a Unix socket until its stdin closes.
func TestRankProcess(t *testing.T) {
	sock := os.Getenv("GOCAFFE_RANK_SOCKET")
	if sock == "" {
		t.Skip("child process of TestLeNetProcesses only")
	}
	// Each round's summary (its all-reduce's wait, transfer and reduce
	// times) goes to stderr, which the parent passes through.
	svc, err := New(WithLogger(zerolog.New(os.Stderr).Level(zerolog.InfoLevel)))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	lis, err := server.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.WithService(svc.Register), server.WithGRPCOptions(ServerOptions()...))
	ctx, stop := context.WithCancel(context.Background())
	go func() {
		io.Copy(io.Discard, os.Stdin) // the parent closes stdin to stop us
		stop()
	}()
	fmt.Println("READY")
	if err := srv.Serve(ctx, lis); err != nil {
		t.Fatal(err)
	}
}

// TestLeNetProcesses measures LeNet (batch 64 per rank) with 1, 2 and 4
// ranks as separate processes, each pinned to its own cores with taskset
// (like executors on one host), all-reducing over loopback TCP. It is a
// measurement, run only when GOCAFFE_DIST_BENCH=1; CORES_PER_RANK (default:
// all cores / 4) sets each rank's cores (its GOMAXPROCS), ITERS (default 30)
// the iterations. SHARED_CPUS (a taskset list such as 0-1) pins every rank
// to the same CPUs instead, oversubscribed like N one-core executors of a
// local cluster on a small machine; RANKS (default "1 2 4") the rank counts.
//
//	GOCAFFE_DIST_BENCH=1 GOEXPERIMENT=simd go test -run LeNetProcesses -v ./goexec/train/
//	GOCAFFE_DIST_BENCH=1 SHARED_CPUS=0-1 CORES_PER_RANK=1 GOEXPERIMENT=simd go test -run LeNetProcesses -v ./goexec/train/
func TestLeNetProcesses(t *testing.T) {
	if os.Getenv("GOCAFFE_DIST_BENCH") != "1" {
		t.Skip("measurement; set GOCAFFE_DIST_BENCH=1")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset not installed")
	}
	per := runtime.NumCPU() / 4
	if v, err := strconv.Atoi(os.Getenv("CORES_PER_RANK")); err == nil && v > 0 {
		per = v
	}
	per = max(per, 1)
	iters := 30
	if v, err := strconv.Atoi(os.Getenv("ITERS")); err == nil && v > 0 {
		iters = v
	}
	sp := lenetSolver(t)
	var layer []byte
	for _, lp := range sp.GetNetParam().GetLayer() {
		if lp.GetType() == "MemoryData" && lp.GetInclude()[0].GetPhase() == caffepb.Phase_TRAIN {
			layer = marshal(t, lp)
		}
	}
	shared := os.Getenv("SHARED_CPUS")
	counts := []int{1, 2, 4}
	if v := os.Getenv("RANKS"); v != "" {
		counts = nil
		for _, f := range strings.Fields(v) {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 {
				t.Fatalf("RANKS=%q: %q is not a rank count", v, f)
			}
			counts = append(counts, n)
		}
	}
	for _, n := range counts {
		if shared == "" && n*per > runtime.NumCPU() {
			t.Logf("ranks=%d: needs %d cores, have %d; skipped", n, n*per, runtime.NumCPU())
			continue
		}
		ranks := make([]*rank, n)
		for i := range ranks {
			cpus := shared
			if cpus == "" {
				cpus = fmt.Sprintf("%d-%d", i*per, (i+1)*per-1)
			}
			ranks[i] = startRankProcess(t, i, per, cpus)
			if _, err := ranks[i].loadErr(key(i), layer, mnistLike(t, 1000, uint64(i)), 1<<20, 1000); err != nil {
				t.Fatal(err)
			}
		}
		for _, warm := range []bool{true, false} {
			it := iters
			if warm {
				it = 3
			}
			req := &pb.TrainRoundRequest{Solver: marshal(t, sp), Iterations: int64(it), SyncMode: pb.SyncMode_ALLREDUCE, RingTimeoutMs: 60000}
			res, errs := trainRanks(t, ranks, req, func(i int, r *pb.TrainRoundRequest) {
				r.Data = []*pb.DataBinding{{Layer: "mnist", Key: key(i)}}
			})
			for i, err := range errs {
				if err != nil {
					t.Fatalf("ranks=%d rank %d: %v", n, i, err)
				}
			}
			if warm {
				continue
			}
			d := res[0].done
			ms := d.GetSeconds() / float64(d.GetIterations()) * 1e3
			fmt.Printf("LeNetProcesses ranks=%d cores/rank=%d cpus=%s iters=%d: %.2f ms/iter, all-reduce %.2f ms/iter, %.0f images/s, setup %.2f s\n",
				n, per, shared, it, ms, d.GetAllreduceSeconds()/float64(d.GetIterations())*1e3, float64(n*64)/ms*1e3, d.GetSetupSeconds())
		}
	}
}

// startRankProcess starts a child serving the Trainer with GOMAXPROCS per,
// pinned to cpus (a taskset list), and returns a client; cleanup stops it.
func startRankProcess(t *testing.T, i, per int, cpus string) *rank {
	t.Helper()
	sock := filepath.Join(t.TempDir(), fmt.Sprintf("rank%d.sock", i))
	cmd := exec.Command("taskset", "-c", cpus, os.Args[0], "-test.run=^TestRankProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), "GOCAFFE_RANK_SOCKET="+sock, "GOMAXPROCS="+strconv.Itoa(per))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			stdin.Close()
			cmd.Wait()
		})
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "READY" {
		t.Fatalf("rank %d did not start: %q %v", i, line, err)
	}
	go io.Copy(io.Discard, stdout)
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(MaxMessageBytes), grpc.MaxCallRecvMsgSize(MaxMessageBytes)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rank{client: pb.NewTrainerClient(conn)}
}
