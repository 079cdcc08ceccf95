package server

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/test/bufconn"

	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
)

// syncBuffer is a bytes.Buffer safe for the server's concurrent log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startBufconn serves srv in-process over bufconn and returns a connected
// client plus a stop function that cancels Serve and waits for it.
func startBufconn(t *testing.T, srv *Server) (*grpc.ClientConn, func() error) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial bufconn: %v", err)
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after its context was cancelled")
			return nil
		}
	}
	t.Cleanup(func() { conn.Close(); _ = stop() })
	return conn, stop
}

func TestHealthVersionDevicesOverBufconn(t *testing.T) {
	logs := &syncBuffer{}
	srv := New(WithVersion("1.2.3-test"), WithLogger(zerolog.New(logs).Level(zerolog.DebugLevel)))
	conn, stop := startBufconn(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := pb.NewExecutorClient(conn)

	h, err := c.Health(ctx, &pb.HealthRequest{})
	if err != nil {
		t.Fatalf("Health: %v", err)
	}
	if h.Status != pb.HealthResponse_SERVING {
		t.Errorf("Health status = %v, want SERVING", h.Status)
	}
	std, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("grpc.health.v1 Check: %v", err)
	}
	if std.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("grpc.health.v1 status = %v, want SERVING", std.Status)
	}

	v, err := c.Version(ctx, &pb.VersionRequest{})
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	if v.Version != "1.2.3-test" || v.GoVersion != runtime.Version() || v.Pid != int64(os.Getpid()) ||
		v.OsArch != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("Version = %+v", v)
	}

	d, err := c.Devices(ctx, &pb.DevicesRequest{})
	if err != nil {
		t.Fatalf("Devices: %v", err)
	}
	if d.Cpu == nil || d.Cpu.LogicalCores < 1 || d.Cpu.UsableCores < 1 || d.Cpu.UsableCores > int32(runtime.NumCPU()) {
		t.Errorf("Devices CPU = %+v", d.Cpu)
	}

	if err := stop(); err != nil {
		t.Fatalf("Serve returned %v after stop", err)
	}
	if _, err := c.Health(ctx, &pb.HealthRequest{}); err == nil {
		t.Error("Health succeeded after the server stopped")
	}
	out := logs.String()
	for _, want := range []string{`"method":"/gocaffe.goexec.v1.Executor/Version"`, `"message":"goexec stopped"`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s:\n%s", want, out)
		}
	}
}

// TestTwoServersInOneProcess checks that servers share no state.
func TestTwoServersInOneProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, ver := range []string{"a", "b"} {
		conn, _ := startBufconn(t, New(WithVersion(ver)))
		v, err := pb.NewExecutorClient(conn).Version(ctx, &pb.VersionRequest{})
		if err != nil {
			t.Fatalf("Version on server %s: %v", ver, err)
		}
		if v.Version != ver {
			t.Errorf("server %s answered version %q", ver, v.Version)
		}
	}
}

// TestGracefulStopWaitsForInFlightCall runs a slow call from a plugged-in
// service and stops the server while it runs: the call must complete.
func TestGracefulStopWaitsForInFlightCall(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	slow := &slowExecutor{started: started, release: release}
	srv := New(WithService(func(r grpc.ServiceRegistrar) {
		// A second Executor under another name would clash, so register the
		// slow one through the standard service descriptor of a copy.
		desc := pb.Executor_ServiceDesc
		desc.ServiceName = "test.Slow"
		r.RegisterService(&desc, slow)
	}))
	conn, stop := startBufconn(t, srv)
	callErr := make(chan error, 1)
	go func() {
		var out pb.HealthResponse
		callErr <- conn.Invoke(context.Background(), "/test.Slow/Health", &pb.HealthRequest{}, &out)
	}()
	<-started
	stopErr := make(chan error, 1)
	go func() { stopErr <- stop() }()
	select {
	case err := <-stopErr:
		t.Fatalf("Serve returned (%v) while a call was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-callErr; err != nil {
		t.Errorf("in-flight call failed: %v", err)
	}
	if err := <-stopErr; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

type slowExecutor struct {
	pb.UnimplementedExecutorServer
	started chan struct{}
	release chan struct{}
}

func (s *slowExecutor) Health(ctx context.Context, _ *pb.HealthRequest) (*pb.HealthResponse, error) {
	close(s.started)
	<-s.release
	return &pb.HealthResponse{Status: pb.HealthResponse_SERVING}, nil
}

func TestListenUnixMode0600AndServes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "goexec.sock")
	lis, err := ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode = %o, want 600", perm)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(WithVersion("unix")).Serve(ctx, lis) }()
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	v, err := pb.NewExecutorClient(conn).Version(cctx, &pb.VersionRequest{})
	if err != nil || v.Version != "unix" {
		t.Fatalf("Version over unix socket = %v, %v", v, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket still exists after stop: %v", err)
	}
}

func TestListenUnixReplacesStaleSocketRefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	// A stale socket: a listener whose file is left behind.
	old, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	old.Close()
	lis, err := ListenUnix(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	lis.Close()

	regular := filepath.Join(dir, "file")
	if err := os.WriteFile(regular, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ListenUnix(regular); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("ListenUnix on a regular file: err = %v, want 'not a socket'", err)
	}
	if data, _ := os.ReadFile(regular); string(data) != "x" {
		t.Error("regular file was modified")
	}
}
