package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTimeAndTestRefuseNetTooLarge: goexec time, test, bench (on the CPU)
// and forward (and export, which builds its net as forward does) check a net's memory
// before building it, as train does: a net whose inner
// product holds 4·10¹¹ parameters (3 TB with its gradient buffer, more than
// any machine here) is one error naming the command and the model, with
// the parameters' share, instead of the runtime's fatal out-of-memory.
func TestTimeAndTestRefuseNetTooLarge(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "huge.prototxt")
	if err := os.WriteFile(model, []byte(`name: "huge"
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 100 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" inner_product_param { num_output: 4000000000 } }`), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	err := timeCmd(t.Context(), []string{"-model", model, "-iterations", "1"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "timing "+model+" needs about") || !strings.Contains(err.Error(), "the parameters alone need") {
		t.Errorf("goexec time: %v", err)
	}
	err = testCmd(t.Context(), []string{"-model", model, "-weights", filepath.Join(dir, "none.caffemodel")}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "testing "+model+" needs about") || !strings.Contains(err.Error(), "the parameters alone need") {
		t.Errorf("goexec test: %v", err)
	}
	err = benchCmd(t.Context(), []string{"-cases", "huge:" + model + ":2", "-iterations", "1"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "bench huge: training huge ("+model+") at batch 2 needs about") {
		t.Errorf("goexec bench: %v", err)
	}
	err = forwardCmd([]string{"-model", model, "-random-weights", "1"}, &errOut)
	if err == nil || !strings.Contains(err.Error(), "building "+model+" needs about") || !strings.Contains(err.Error(), "the parameters alone need") {
		t.Errorf("goexec forward: %v", err)
	}
}
