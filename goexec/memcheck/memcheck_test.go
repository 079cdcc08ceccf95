package memcheck

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/network"
)

func TestBudgetTakesTheSmallestLimit(t *testing.T) {
	dir := t.TempDir()
	cg, mi := filepath.Join(dir, "memory.max"), filepath.Join(dir, "meminfo")
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(mi, "MemTotal:       32000000 kB\nMemAvailable:    2000000 kB\n")
	write(cg, "max\n")
	none := func() int64 { return math.MaxInt64 }
	for _, c := range []struct {
		goLimit int64
		cgroup  string
		want    Budget
	}{
		{math.MaxInt64, "max\n", Budget{2000000 * 1024, "MemAvailable"}},
		{math.MaxInt64, "1073741824\n", Budget{1 << 30, "cgroup memory.max"}},
		{300 << 20, "1073741824\n", Budget{300 << 20, "Go memory limit"}},
	} {
		write(cg, c.cgroup)
		g := c.goLimit
		got := Sources{GoLimit: func() int64 { return g }, CgroupMax: cg, MemInfo: mi}.Budget()
		if got != c.want {
			t.Errorf("go %d, cgroup %q: %+v, want %+v", c.goLimit, c.cgroup, got, c.want)
		}
	}
	if b := (Sources{GoLimit: none, CgroupMax: filepath.Join(dir, "absent"), MemInfo: filepath.Join(dir, "absent")}).Budget(); b.Bytes != math.MaxInt64 {
		t.Errorf("no limits: %+v", b)
	}
}

func TestCheckMessage(t *testing.T) {
	largest := []network.BlobSize{{Name: "conv1", Shape: []int{1000, 20, 24, 24}, Values: 11520000}}
	if err := Check("x", 100, 0, 10, largest, Budget{Bytes: 100, Source: "MemAvailable"}); err != nil {
		t.Errorf("a need equal to the budget: %v", err)
	}
	err := Check("training s.prototxt", 3<<30, 1<<20, 1000, largest, Budget{Bytes: 1 << 30, Source: "cgroup memory.max"})
	want := "training s.prototxt needs about 3.0 GiB (batch 1000) but this process may use 1.0 GiB (cgroup memory.max); largest blobs: conv1 [1000×20×24×24] (43.9 MiB); lower batch_size"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	// Parameters over the budget: no batch size fits, and the advice says so.
	err = Check("training s.prototxt", 3<<30, 2<<30, 2, largest, Budget{Bytes: 1 << 30, Source: "cgroup memory.max"})
	if err == nil || strings.Contains(err.Error(), "lower batch_size") ||
		!strings.HasSuffix(err.Error(), "; the parameters alone need 2.0 GiB with their gradients and update history: no batch_size fits, the net must be smaller") {
		t.Errorf("parameters over the budget: got %v", err)
	}
}
