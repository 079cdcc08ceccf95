package train

import (
	"context"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
	"github.com/gocaffe/gocaffe/goexec/server"
)

// TestServedByGoexecServer registers the Trainer on goexec's own server (as
// `goexec serve` does) over a Unix socket and loads a partition whose single
// chunk is larger than gRPC's 4 MiB default, so the raised limits are in
// force.
func TestServedByGoexecServer(t *testing.T) {
	svc, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	sock := filepath.Join(t.TempDir(), "goexec.sock")
	lis, err := server.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.WithService(svc.Register), server.WithGRPCOptions(ServerOptions()...))
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(MaxMessageBytes), grpc.MaxCallRecvMsgSize(MaxMessageBytes)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := &rank{client: pb.NewTrainerClient(conn)}
	sp := solverFor(t, 8)
	s := makeSamples(90_000, 30) // 90,000 × 64 bytes: one 5.8 MB chunk
	ipc := arrowIPC(t, s, 30_000)
	if len(ipc) <= 4<<20 {
		t.Fatalf("test data is only %d bytes", len(ipc))
	}
	info, err := r.loadErr(key(0), dataLayer(t, sp), ipc, len(ipc), int64(s.n()))
	if err != nil {
		t.Fatal(err)
	}
	if info.GetRows() != int64(s.n()) {
		t.Errorf("%d rows", info.GetRows())
	}
}
