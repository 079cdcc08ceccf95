package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBenchDataModes(t *testing.T) {
	for _, mode := range []string{"fixed", "fresh"} {
		var out, errOut bytes.Buffer
		err := benchCmd(t.Context(), []string{"-cases", "lenet:../../../examples/lenet_train_test.prototxt:4",
			"-iterations", "2", "-warmup", "1", "-data", mode, "-log-level", "warn"}, &out, &errOut)
		if err != nil {
			t.Fatalf("-data %s: %v\n%s", mode, err, errOut.String())
		}
		if !strings.Contains(out.String(), "bench lenet b4 cpu") || !strings.Contains(out.String(), "data "+mode+":") {
			t.Fatalf("-data %s: output %q", mode, out.String())
		}
	}
	var out, errOut bytes.Buffer
	err := benchCmd(t.Context(), []string{"-data", "stale"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), `-data "stale": want fixed or fresh`) {
		t.Fatalf("-data stale: got %v", err)
	}
}

// A net whose Data layer names a database that is not there still runs:
// bench feeds it batches of -sample's shape, cropped as the layer would.
func TestBenchDataLayerNet(t *testing.T) {
	model := filepath.Join(t.TempDir(), "net.prototxt")
	err := os.WriteFile(model, []byte(`name: "dbnet"
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TRAIN }
  transform_param { crop_size: 5 } data_param { source: "no/such/lmdb" backend: LMDB batch_size: 7 } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := benchCmd(t.Context(), []string{"-cases", "db:" + model + ":2", "-sample", "2,8,8", "-iterations", "2",
		"-warmup", "0", "-log-level", "warn"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "bench db b2 cpu") {
		t.Fatalf("output %q", out.String())
	}
	err = benchCmd(t.Context(), []string{"-cases", "db:" + model + ":2", "-sample", "2,8"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), `-sample "2,8": want CHANNELS,HEIGHT,WIDTH`) {
		t.Fatalf("-sample 2,8: got %v", err)
	}
}
