//go:build integration

package integration

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTrainFakeGPUFallsBackToCPU: Spark grants the executor a GPU that a
// discovery script invents. The shim extracts goexec-cuda beside goexec and
// passes the GPU to `goexec serve -gpus`; goexec-cuda cannot start here (no
// NVIDIA driver), so goexec stays on the CPU after one warning line that
// names the reason, and training finishes.
func TestTrainFakeGPUFallsBackToCPU(t *testing.T) {
	e := setup(t)
	start := time.Now()
	script := filepath.Join(e.tmp, "fake-gpus.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho '{\"name\":\"gpu\",\"addresses\":[\"0\"]}'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const iters = 200
	solver := lenetFiles(t, e, iters, iters, 1000)
	model := filepath.Join(e.tmp, "model", "lenet.caffemodel")
	r := e.submitWatching(t, 8*time.Minute, "local-cluster[1,2,2048]", []string{
		"--conf", "spark.executor.memory=1g",
		"--conf", "spark.worker.resource.gpu.amount=1",
		"--conf", "spark.worker.resource.gpu.discoveryScript=" + script,
		"--conf", "spark.executor.resource.gpu.amount=1",
		"--conf", "spark.executor.resource.gpu.discoveryScript=" + script,
		"--conf", "spark.task.resource.gpu.amount=0.5",
	}, nil, "-train", "-conf", solver, "-model", model, "-clusterSize", "1")
	o := parseTraining(t, r, iters)
	if o.accuracy < 0.9 {
		t.Errorf("test accuracy %.4f after %d iterations, want >= 0.9", o.accuracy, iters)
	}
	// The executor's log holds goexec's output: exactly one warning that
	// says the granted GPU is not used, and why.
	var logs strings.Builder
	_ = filepath.WalkDir(filepath.Join(e.sparkHome, "work", o.app), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "stderr" {
			if b, err := os.ReadFile(p); err == nil {
				logs.Write(b)
			}
		}
		return nil
	})
	warn := 0
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "GPU 0 granted: computing on the CPU") {
			warn++
			if !strings.Contains(l, "goexec-cuda cannot use GPU 0") {
				t.Errorf("warning does not say why: %s", l)
			}
		}
	}
	if warn != 1 {
		t.Errorf("%d warnings about the granted GPU in the executor's log, want 1; log tail:\n%s", warn, tail(logs.String(), 40))
	}
	t.Logf("fake-GPU training took %v", time.Since(start).Round(time.Second))
}
