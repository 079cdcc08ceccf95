package metrics

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteReadResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "lenet_metrics.jsonl")
	w, err := Create(path, false)
	if err != nil {
		t.Fatal(err)
	}
	w.now = func() time.Time { return time.Unix(1700000000, 250e6) }
	w.Add(0, TestPhase(0), "accuracy", 0.1)
	w.Add(100, Train, "loss", 0.5)
	w.Add(100, TestPhase(1), "accuracy", math.NaN())
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Skipped() != 1 {
		t.Errorf("Skipped = %d, want 1 (the NaN)", w.Skipped())
	}
	raw, _ := os.ReadFile(path)
	want := `{"iteration":0,"phase":"test","name":"accuracy","value":0.1,"wall_time":1700000000.25}` + "\n" +
		`{"iteration":100,"phase":"train","name":"loss","value":0.5,"wall_time":1700000000.25}` + "\n"
	if string(raw) != want {
		t.Errorf("file:\n%s\nwant:\n%s", raw, want)
	}
	// A resumed run appends; a fresh one truncates.
	w, err = Create(path, true)
	if err != nil {
		t.Fatal(err)
	}
	w.Add(200, TestPhase(1), "accuracy", 0.9)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[2] != (Record{Iteration: 200, Phase: "test#1", Name: "accuracy", Value: 0.9, WallTime: recs[2].WallTime}) {
		t.Errorf("after resume: %+v", recs)
	}
	w, _ = Create(path, false)
	w.Close()
	if recs, _ := Read(path); len(recs) != 0 {
		t.Errorf("fresh run kept %d records", len(recs))
	}
}

func TestParseErrorsNameLine(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"{\"iteration\":1,\"phase\":\"train\",\"name\":\"loss\",\"value\":1}\nnot json\n", "m.jsonl:2: not a JSON object"},
		{`{"iteration":1,"phase":"train","name":"loss"}`, `m.jsonl:1: record has no "value"`},
		{`{"iteration":"x","phase":"train","name":"loss","value":1}`, "m.jsonl:1:"},
		{`{"iteration":1,"phase":"","name":"loss","value":1}`, "m.jsonl:1: empty phase or name"},
	} {
		_, err := Parse(strings.NewReader(c.in), "m.jsonl")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q): %v, want %q", c.in, err, c.want)
		}
	}
}

func TestPathFor(t *testing.T) {
	for in, want := range map[string]string{"out/lenet": "out/lenet_metrics.jsonl", "": "gocaffe_metrics.jsonl", "snaps/": "snaps/gocaffe_metrics.jsonl"} {
		if got := PathFor(in); got != want {
			t.Errorf("PathFor(%q) = %q, want %q", in, got, want)
		}
	}
}
