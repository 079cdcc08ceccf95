//go:build cuda

package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/kernels/cpu"
	"github.com/gocaffe/gocaffe/kernels/cuda"
)

// On a machine without a usable GPU (CI links and runs this against the
// stub libcuda), the CUDA build trains on the CPU after one warning line,
// and cuda-probe fails with the reason.
func TestCUDABuildWithoutGPU(t *testing.T) {
	if n, err := cuda.Count(); err == nil && n > 0 {
		t.Skipf("this machine has %d usable GPU(s): the no-GPU path is not reachable here", n)
	}
	var buf bytes.Buffer
	d := trainDevice(&caffepb.SolverParameter{}, -1, zerolog.New(&buf))
	if d != cpu.Device {
		t.Fatalf("device %s, want the CPU", d.Name())
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "computing on the CPU") {
		t.Fatalf("want one warning line, got %q", buf.String())
	}
	if err := runCUDAProbe([]string{"-device", "0"}); err == nil {
		t.Fatal("cuda-probe succeeded without a GPU")
	}
}

// With a GPU, -gpu 0 trains there.
func TestCUDABuildWithGPU(t *testing.T) {
	if n, err := cuda.Count(); err != nil || n == 0 {
		t.Skipf("no usable CUDA device, GPU test skipped: %v", err)
	}
	var buf bytes.Buffer
	d := trainDevice(&caffepb.SolverParameter{}, 0, zerolog.New(&buf))
	if d.Name() != "cuda:0" {
		t.Fatalf("device %s (log %q), want cuda:0", d.Name(), buf.String())
	}
	if err := deviceErr(d); err != nil {
		t.Fatal(err)
	}
}
