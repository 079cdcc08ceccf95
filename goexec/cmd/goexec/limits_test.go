package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestServeAppliesRuntimeLimits checks that serve's -memory-limit and
// -threads (what spark.gocaffe.goexec.memoryLimit and .threads become) are
// in force while it serves, are logged, and are restored when it stops.
func TestServeAppliesRuntimeLimits(t *testing.T) {
	beforeMem, beforeProcs := debug.SetMemoryLimit(-1), runtime.GOMAXPROCS(0)
	const limit = 300 << 20
	threads := 1
	if beforeProcs == 1 {
		threads = 2
	}
	sock := filepath.Join(t.TempDir(), "g.sock")
	logs := &lockedBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, done := startServe(t, ctx, []string{"--socket", sock, "--memory-limit", fmt.Sprint(limit),
		"--threads", fmt.Sprint(threads)}, strings.NewReader(""), logs)

	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Errorf("memory limit while serving = %d, want %d", got, limit)
	}
	if got := runtime.GOMAXPROCS(0); got != threads {
		t.Errorf("GOMAXPROCS while serving = %d, want %d", got, threads)
	}
	want := fmt.Sprintf(`{"level":"info","component":"goexec","pid":%d,"memory_limit":%d,"gomaxprocs":%d`,
		os.Getpid(), limit, threads)
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, logs.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if got := debug.SetMemoryLimit(-1); got != beforeMem {
		t.Errorf("memory limit after serve = %d, want it restored to %d", got, beforeMem)
	}
	if got := runtime.GOMAXPROCS(0); got != beforeProcs {
		t.Errorf("GOMAXPROCS after serve = %d, want it restored to %d", got, beforeProcs)
	}
}

func TestServeRejectsNegativeLimits(t *testing.T) {
	err := serve(context.Background(), []string{"--socket", "x.sock", "--memory-limit", "-5", "--threads", "-1"},
		strings.NewReader(""), &lockedBuf{})
	if err == nil || !strings.Contains(err.Error(), "-memory-limit -5") || !strings.Contains(err.Error(), "-threads -1") {
		t.Errorf("serve = %v, want both limits named", err)
	}
}

// TestServeLogsDefaultLimitsQuietly: without limit flags the runtime limits
// line is a debug line, so an info-level log starts with "goexec serving".
func TestServeLogsDefaultLimitsQuietly(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "g.sock")
	logs := &lockedBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, done := startServe(t, ctx, []string{"--socket", sock}, strings.NewReader(""), logs)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if strings.Contains(logs.String(), "runtime limits") {
		t.Errorf("info-level log shows the default limits:\n%s", logs.String())
	}
}
