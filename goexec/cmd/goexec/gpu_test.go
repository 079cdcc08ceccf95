package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/kernels/cpu"
)

// The CPU build asked for a GPU: without goexec-cuda beside it, or with
// one that cannot open the GPU, it stays on the CPU and says why.
func TestExecCUDAFallsBack(t *testing.T) {
	if cudaBuild {
		t.Skip("the CUDA build does not hand over")
	}
	dir := t.TempDir()
	self := filepath.Join(dir, "goexec")
	err := execCUDAFrom(self, 0)
	if err == nil || !strings.Contains(err.Error(), "goexec-cuda is not beside it") {
		t.Fatalf("no sibling: got %v", err)
	}
	// A goexec-cuda that cannot start (as on a node without the NVIDIA
	// driver: the dynamic loader fails) or finds no device.
	script := "#!/bin/sh\necho \"goexec-cuda: error while loading shared libraries: libcuda.so.1: cannot open shared object file\" >&2\nexit 127\n"
	if err := os.WriteFile(filepath.Join(dir, "goexec-cuda"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	err = execCUDAFrom(self, 1)
	if err == nil || !strings.Contains(err.Error(), "cannot use GPU 1") || !strings.Contains(err.Error(), "libcuda.so.1") {
		t.Fatalf("failing sibling: got %v", err)
	}
}

func TestTrainDeviceCPUBuild(t *testing.T) {
	if cudaBuild {
		t.Skip("CPU build only")
	}
	var buf bytes.Buffer
	log := zerolog.New(&buf)
	cpuMode := caffepb.SolverParameter_CPU
	if d := trainDevice(&caffepb.SolverParameter{SolverMode: &cpuMode}, -1, log); d.Name() != cpu.Device.Name() || buf.Len() != 0 {
		t.Fatalf("solver_mode CPU: device %v, log %q", d.Name(), buf.String())
	}
	// solver_mode GPU (Caffe's default) on the CPU build, nothing beside
	// the test binary: the CPU and exactly one warning line.
	if d := trainDevice(&caffepb.SolverParameter{}, -1, log); d.Name() != cpu.Device.Name() {
		t.Fatalf("solver_mode GPU on the CPU build: device %s", d.Name())
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "training on the CPU") || !strings.Contains(lines[0], `"warn"`) {
		t.Fatalf("want one warning line, got %q", buf.String())
	}
}

func TestParseGPUs(t *testing.T) {
	if g, err := parseGPUs("0, 2"); err != nil || len(g) != 2 || g[1] != 2 {
		t.Fatalf("parseGPUs: %v %v", g, err)
	}
	for _, bad := range []string{"a", "-1", "0,,1"} {
		if _, err := parseGPUs(bad); err == nil || !strings.Contains(err.Error(), "-gpus") {
			t.Errorf("parseGPUs(%q): %v", bad, err)
		}
	}
}
