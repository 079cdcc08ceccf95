//go:build cuda

package cudnn

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gocaffe/gocaffe/kernels/cuda/libsearch"
)

// TestLoadFromFakeFolders runs the loader itself (the sub-libraries'
// preload, dlopen) on a wheel folder whose files are named like cuDNN's
// but are not libraries: nothing loads, and the one line names the file
// that was found and why it failed; a setting that names it says so, and
// "off" loads nothing.
func TestLoadFromFakeFolders(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"venv/bin/python3", "venv/lib/python3.12/site-packages/nvidia/cudnn/lib/libcudnn_ops.so.9"} {
		touch(t, root, f)
	}
	fake := touch(t, root, "venv/lib/python3.12/site-packages/nvidia/cudnn/lib/libcudnn.so.9")
	if l, _ := LoadFrom(libsearch.Search{Lib: Lib()}); l != nil {
		t.Skipf("this machine has cuDNN %d on its library path: the fake folders would not be reached", l.Version)
	}
	s := libsearch.Search{Lib: Lib(), Path: []string{filepath.Join(root, "venv/bin")}}
	l, line := LoadFrom(s)
	t.Log(line)
	if l != nil {
		t.Fatalf("loaded %s from fake folders", l.Path)
	}
	if !strings.Contains(line, fake+": ") || !strings.Contains(line, "cuDNN not found") {
		t.Fatalf("not-found line does not name the fake library and its error:\n%s", line)
	}
	s.Setting = fake
	if l, line = LoadFrom(s); l != nil || !strings.Contains(line, Setting+"="+fake) {
		t.Fatalf("setting a non-library: lib %v, line %s", l, line)
	}
	s.Setting = "off"
	if l, line = LoadFrom(s); l != nil || !strings.Contains(line, "cuDNN off") {
		t.Fatalf("off: lib %v, line %s", l, line)
	}
}

func touch(t *testing.T, root, f string) string {
	t.Helper()
	p := filepath.Join(root, f)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("not a library"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDescribeWithRealLibrary needs no GPU, only a cuDNN (found as goexec
// finds it): the descriptors of several shapes are accepted and cuDNN's
// output size is GoCaffe's (a wrong enum value or argument order in the
// declared prototypes fails here); a shape whose output size GoCaffe gets
// wrong is refused, naming both.
func TestDescribeWithRealLibrary(t *testing.T) {
	l, line := Load()
	if l == nil {
		t.Skipf("no cuDNN on this machine, test skipped: %s", line)
	}
	t.Log(line)
	out := func(n, k, p, s, d int) int { return (n+2*p-(d*(k-1)+1))/s + 1 }
	for _, s := range []Shape{
		{N: 64, C: 1, H: 28, W: 28, K: 20, Groups: 1, KH: 5, KW: 5, SH: 1, SW: 1, DH: 1, DW: 1},
		{N: 2, C: 6, H: 9, W: 10, K: 4, Groups: 2, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, DH: 2, DW: 2},
		{N: 2, C: 4, H: 12, W: 15, K: 6, Groups: 2, KH: 3, KW: 5, SH: 1, SW: 2, PH: 2, PW: 1, DH: 1, DW: 1},
	} {
		s.OH, s.OW = out(s.H, s.KH, s.PH, s.SH, s.DH), out(s.W, s.KW, s.PW, s.SW, s.DW)
		for _, elem := range []int{4, 8} {
			c, err := l.Describe(elem, s, elem == 4)
			if err != nil {
				t.Fatalf("%+v, %d-byte elements: %v", s, elem, err)
			}
			c.Destroy()
		}
		s.OW++
		if c, err := l.Describe(4, s, false); err == nil || !strings.Contains(err.Error(), "GoCaffe computes") {
			if c != nil {
				c.Destroy()
			}
			t.Fatalf("%+v with a wrong output width: %v, want a refusal naming both sizes", s, err)
		}
	}
}
