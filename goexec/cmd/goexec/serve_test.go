package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/gocaffe/gocaffe/goexec/rpc/goexecpb"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServe runs serve in the background and returns a client once the
// server answers Health (gRPC waits for the socket to appear).
func startServe(t *testing.T, ctx context.Context, args []string, stdin io.Reader, logs io.Writer) (pb.ExecutorClient, chan error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- serve(ctx, args, stdin, logs) }()
	sock := args[1]
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := pb.NewExecutorClient(conn)
	hctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := c.Health(hctx, &pb.HealthRequest{}, grpc.WaitForReady(true)); err != nil {
		select {
		case serr := <-done:
			t.Fatalf("serve exited: %v (health: %v)", serr, err)
		default:
		}
		t.Fatalf("Health: %v", err)
	}
	return c, done
}

func TestServeAnswersAndStopsOnCancel(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "g.sock")
	logs := &lockedBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, done := startServe(t, ctx, []string{"--socket", sock, "--log-level", "debug"}, strings.NewReader(""), logs)

	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %o, want 600", fi.Mode().Perm())
	}
	v, err := c.Version(ctx, &pb.VersionRequest{})
	if err != nil || v.Version != version || v.Pid != int64(os.Getpid()) {
		t.Fatalf("Version = %v, %v", v, err)
	}
	cancel() // what SIGTERM does in runServe
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after cancel")
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
	// JSON logs by default, one object per line.
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !strings.HasPrefix(line, "{") || !strings.Contains(line, `"component":"goexec"`) {
			t.Errorf("log line is not zerolog JSON: %q", line)
		}
	}
	if !strings.Contains(logs.String(), `"message":"goexec stopped"`) {
		t.Errorf("no 'goexec stopped' log:\n%s", logs.String())
	}
}

func TestServeStopsAndCleansUpWhenStdinCloses(t *testing.T) {
	work := filepath.Join(t.TempDir(), "gocaffe-goexec-test")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(work, "g.sock")
	pr, pw := io.Pipe()
	logs := &lockedBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, done := startServe(t, ctx, []string{"--socket", sock, "--exit-on-stdin-eof", "--remove-on-exit", work,
		"--log-format", "console"}, pr, logs)
	pw.Close() // the parent JVM is gone
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after stdin closed")
	}
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Errorf("work dir not removed: %v", err)
	}
	if out := logs.String(); strings.HasPrefix(out, "{") || !strings.Contains(out, "parent process is gone") {
		t.Errorf("console log output unexpected:\n%s", out)
	}
}

// TestServeRemovesWorkDirOnSignal: SIGTERM or SIGINT (the context passed in)
// stops serve and removes the work directory, as Ctrl-C of spark-submit
// signals the JVMs and goexec together.
func TestServeRemovesWorkDirOnSignal(t *testing.T) {
	work := filepath.Join(t.TempDir(), "gocaffe-goexec-test")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	defer pw.Close() // the parent lives on
	ctx, signal := context.WithCancel(context.Background())
	_, done := startServe(t, ctx, []string{"--socket", filepath.Join(work, "g.sock"), "--exit-on-stdin-eof",
		"--remove-on-exit", work}, pr, &lockedBuf{})
	signal()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after the signal")
	}
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Errorf("work dir not removed: %v", err)
	}
}

func TestServeFlagProblemsReportedTogether(t *testing.T) {
	err := serve(context.Background(), []string{"--log-format", "xml", "--log-level", "loud", "--remove-on-exit", "/x", "extra"},
		strings.NewReader(""), io.Discard)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"-socket is required", `-log-format "xml"`, `-log-level "loud"`,
		"-remove-on-exit needs -exit-on-stdin-eof", "unexpected arguments"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
