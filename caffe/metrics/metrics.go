// Package metrics writes and reads validation curves: one JSON object per
// line for each training-loss display and each test score, as
//
//	{"iteration":500,"phase":"test","name":"accuracy","value":0.9812,"wall_time":1796590000.123}
//
// wall_time is seconds since the Unix epoch (UTC). Test nets after the first
// are written with phase "test#N". The Spark driver writes the same format
// (jvm-shim's MetricsFile), so `goexec plot` reads either.
package metrics

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Phases of a record.
const (
	Train = "train"
	Test  = "test"
)

// Record is one line of a metrics file.
type Record struct {
	Iteration int     `json:"iteration"`
	Phase     string  `json:"phase"`
	Name      string  `json:"name"`
	Value     float64 `json:"value"`
	WallTime  float64 `json:"wall_time"`
}

// TestPhase is the phase of test net i: "test", then "test#1", "test#2"...
func TestPhase(i int) string {
	if i == 0 {
		return Test
	}
	return fmt.Sprintf("%s#%d", Test, i)
}

// PathFor is where a run with the given snapshot prefix writes its metrics:
// PREFIX_metrics.jsonl beside the snapshots (gocaffe_metrics.jsonl for an
// empty prefix).
func PathFor(snapshotPrefix string) string {
	p := snapshotPrefix
	if p == "" {
		p = "gocaffe"
	}
	if strings.HasSuffix(p, "/") {
		p += "gocaffe"
	}
	return p + "_metrics.jsonl"
}

// Writer appends records to a file, one flushed line each, so that a
// crashed run keeps every record written before it.
type Writer struct {
	mu   sync.Mutex
	f    *os.File
	path string
	now  func() time.Time
	err  error

	skipped int
}

// Create opens path for writing (creating its directory): truncated for a
// fresh run, appended to when resume is true.
func Create(path string, resume bool) (*Writer, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("metrics file %s: %w", path, err)
		}
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if resume {
		flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("metrics file: %w", err)
	}
	return &Writer{f: f, path: path, now: time.Now}, nil
}

// Path returns the file's path.
func (w *Writer) Path() string { return w.path }

// Add writes one record stamped with the current wall time. NaN and ±Inf
// (a diverged loss) have no JSON number: such a record is not written and
// is counted in Skipped.
func (w *Writer) Add(iter int, phase, name string, value float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	if math.IsNaN(value) || math.IsInf(value, 0) {
		w.skipped++
		return
	}
	t := w.now()
	r := Record{Iteration: iter, Phase: phase, Name: name, Value: value,
		WallTime: math.Round(float64(t.UnixNano())/1e6) / 1e3}
	b, err := json.Marshal(r)
	if err != nil {
		w.err = fmt.Errorf("metrics file %s: %w", w.path, err)
		return
	}
	if _, err := w.f.Write(append(b, '\n')); err != nil {
		w.err = fmt.Errorf("metrics file %s: %w", w.path, err)
	}
}

// Skipped returns how many NaN or infinite values Add left out.
func (w *Writer) Skipped() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.skipped
}

// Close closes the file and returns the first error of any Add.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return errors.Join(w.err, w.f.Close())
}

// Read parses a metrics file; a bad line is an error naming the file and line.
func Read(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("metrics file: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads records from r; name is used in errors.
func Parse(r io.Reader, name string) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(text), &raw); err != nil {
			return nil, fmt.Errorf("%s:%d: not a JSON object: %w", name, line, err)
		}
		for _, k := range []string{"iteration", "phase", "name", "value"} {
			if _, ok := raw[k]; !ok {
				return nil, fmt.Errorf("%s:%d: record has no %q", name, line, k)
			}
		}
		var rec Record
		if err := json.Unmarshal([]byte(text), &rec); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if rec.Phase == "" || rec.Name == "" {
			return nil, fmt.Errorf("%s:%d: empty phase or name", name, line)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	return out, nil
}
