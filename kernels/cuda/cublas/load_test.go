//go:build cuda

package cublas

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadFromFakeFolders runs the loader itself (dlopen) on folders that
// hold files named like cuBLAS but are not libraries: nothing loads, and
// the one line names each file that was found and why it failed.
func TestLoadFromFakeFolders(t *testing.T) {
	root := t.TempDir()
	touch(t, root, "venv/bin/python3")
	fake := touch(t, root, "venv/lib/python3.11/site-packages/nvidia/cu13/lib/libcublas.so.13")
	s := Search{Path: []string{filepath.Join(root, "venv/bin")}}
	if hasSystemCublas() {
		t.Skip("this machine has cuBLAS on its library path: the fake folders would not be reached")
	}
	lib, line := LoadFrom(s)
	t.Log(line)
	if lib != nil {
		t.Fatalf("loaded %s from fake folders", lib.Path)
	}
	if !strings.Contains(line, fake+": ") || !strings.Contains(line, "not found") {
		t.Fatalf("not-found line does not name the fake library and its error:\n%s", line)
	}
	if strings.Contains(line, "libcublas.so.13: cannot open") {
		t.Fatalf("not-found line lists library-path misses one by one:\n%s", line)
	}

	s.Setting = fake
	if lib, line = LoadFrom(s); lib != nil || !strings.Contains(line, Setting+"="+fake) {
		t.Fatalf("setting a non-library: lib %v, line %s", lib, line)
	}
	s.Setting = "off"
	if lib, line = LoadFrom(s); lib != nil || !strings.Contains(line, "off") {
		t.Fatalf("off: lib %v, line %s", lib, line)
	}
}

// hasSystemCublas reports whether the dynamic loader finds a cuBLAS by
// name (then the search stops there, as it should).
func hasSystemCublas() bool {
	l, _ := LoadFrom(Search{})
	return l != nil
}
