// Package server is goexec's gRPC server: the Executor service (health,
// version, devices), the standard gRPC health service, request logging, and
// a Unix-socket listener with owner-only permissions. Later services (training,
// features) plug in through WithService.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
)

// Option configures a Server.
type Option func(*config)

type config struct {
	version   string
	logger    zerolog.Logger
	procRoot  string
	lookupEnv func(string) (string, bool)
	services  []func(grpc.ServiceRegistrar)
	grpcOpts  []grpc.ServerOption
	grace     time.Duration
}

// WithVersion sets the version string that Version reports.
func WithVersion(v string) Option { return func(c *config) { c.version = v } }

// WithLogger sets the logger for server events and per-call logs.
func WithLogger(l zerolog.Logger) Option { return func(c *config) { c.logger = l } }

// WithProcRoot sets where /proc is read from for device discovery (tests use
// a fake tree).
func WithProcRoot(dir string) Option { return func(c *config) { c.procRoot = dir } }

// WithLookupEnv sets the environment lookup used for CUDA_VISIBLE_DEVICES
// (os.LookupEnv by default).
func WithLookupEnv(f func(string) (string, bool)) Option { return func(c *config) { c.lookupEnv = f } }

// WithService registers an additional gRPC service on the server.
func WithService(register func(grpc.ServiceRegistrar)) Option {
	return func(c *config) { c.services = append(c.services, register) }
}

// WithGRPCOptions adds options to the gRPC server (for example the message
// size limits a registered service needs).
func WithGRPCOptions(opts ...grpc.ServerOption) Option {
	return func(c *config) { c.grpcOpts = append(c.grpcOpts, opts...) }
}

// WithGracePeriod bounds how long Serve waits for in-flight calls when its
// context ends before it stops them forcibly.
func WithGracePeriod(d time.Duration) Option { return func(c *config) { c.grace = d } }

// Server is one goexec gRPC server. Several can run in one process.
type Server struct {
	pb.UnimplementedExecutorServer
	cfg    config
	grpc   *grpc.Server
	health *health.Server
}

// New builds a Server; it serves nothing until Serve is called.
func New(opts ...Option) *Server {
	cfg := config{
		version:   "dev",
		logger:    zerolog.Nop(),
		procRoot:  "/proc",
		lookupEnv: os.LookupEnv,
		grace:     10 * time.Second,
	}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{cfg: cfg, health: health.NewServer()}
	s.grpc = grpc.NewServer(append([]grpc.ServerOption{grpc.ChainUnaryInterceptor(logUnary(cfg.logger))}, cfg.grpcOpts...)...)
	pb.RegisterExecutorServer(s.grpc, s)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	for _, reg := range cfg.services {
		reg(s.grpc)
	}
	return s
}

// Serve accepts calls on lis until ctx ends, then stops gracefully: in-flight
// calls get the grace period to finish. It returns nil after a requested stop.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.cfg.logger.Info().Str("addr", lis.Addr().String()).Str("version", s.cfg.version).Msg("goexec serving")
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(lis) }()
	select {
	case err := <-errc:
		if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("serve %s: %w", lis.Addr(), err)
		}
		return nil
	case <-ctx.Done():
	}
	s.cfg.logger.Info().Msg("goexec stopping")
	s.health.Shutdown()
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(s.cfg.grace)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		s.cfg.logger.Warn().Dur("grace", s.cfg.grace).Msg("in-flight calls did not finish; stopping forcibly")
		s.grpc.Stop()
		<-stopped
	}
	<-errc
	s.cfg.logger.Info().Msg("goexec stopped")
	return nil
}

// Health reports SERVING while the server accepts calls.
func (s *Server) Health(ctx context.Context, _ *pb.HealthRequest) (*pb.HealthResponse, error) {
	return &pb.HealthResponse{Status: pb.HealthResponse_SERVING}, nil
}

// Version reports the goexec build and the serving process.
func (s *Server) Version(ctx context.Context, _ *pb.VersionRequest) (*pb.VersionResponse, error) {
	host, _ := os.Hostname()
	return &pb.VersionResponse{
		Version:   s.cfg.version,
		GoVersion: runtime.Version(),
		OsArch:    runtime.GOOS + "/" + runtime.GOARCH,
		Pid:       int64(os.Getpid()),
		Hostname:  host,
		BuildTags: buildTags(),
	}, nil
}

// Devices lists the CPUs and GPUs this process can use.
func (s *Server) Devices(ctx context.Context, _ *pb.DevicesRequest) (*pb.DevicesResponse, error) {
	return DetectDevices(s.cfg.procRoot, s.cfg.lookupEnv)
}

// buildTags lists the build settings worth reporting (GOEXPERIMENT, tags,
// GOAMD64, CGO_ENABLED).
func buildTags() []string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	var tags []string
	for _, st := range bi.Settings {
		switch st.Key {
		case "GOEXPERIMENT", "-tags", "GOAMD64", "CGO_ENABLED":
			if st.Value != "" {
				tags = append(tags, st.Key+"="+st.Value)
			}
		}
	}
	return tags
}

// logUnary logs each call's method, duration and status code at debug level,
// and failures at warn level.
func logUnary(l zerolog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		ev := l.Debug()
		if err != nil {
			ev = l.Warn().Err(err)
		}
		ev.Str("method", info.FullMethod).Dur("took", time.Since(start)).Msg("rpc")
		return resp, err
	}
}
