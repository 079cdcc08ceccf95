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
