package cudnn

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gocaffe/gocaffe/kernels/cuda/libsearch"
)

// cuDNN is searched as cuBLAS is, in its own wheel folder: the names on
// the library path first, then nvidia/cudnn/lib under a venv's python3;
// the setting alone when set; nothing when off; and the not-found line
// names the variable, the file names and the wheel folder.
func TestSearch(t *testing.T) {
	root := t.TempDir()
	site := filepath.Join(root, "venv/lib/python3.11/site-packages")
	for _, f := range []string{"venv/bin/python3", "venv/lib/python3.11/site-packages/nvidia/cudnn/lib/libcudnn.so.9",
		"venv/lib/python3.11/site-packages/nvidia/cudnn/lib/libcudnn_cnn.so.9"} {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := libsearch.Search{Lib: Lib(), Path: []string{filepath.Join(root, "venv/bin")}}
	var got []string
	for _, c := range s.Candidates() {
		got = append(got, c.Lib)
	}
	want := append(append([]string{}, Names...), filepath.Join(site, "nvidia/cudnn/lib/libcudnn.so.9"))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("candidates %v, want %v", got, want)
	}
	if c := (libsearch.Search{Lib: Lib(), Setting: "/x/libcudnn.so.9"}).Candidates(); len(c) != 1 || c[0].Lib != "/x/libcudnn.so.9" || c[0].Where != Setting {
		t.Errorf("with %s set: candidates %v", Setting, c)
	}
	if c := (libsearch.Search{Lib: Lib(), Setting: "OFF"}).Candidates(); len(c) != 0 {
		t.Errorf("with %s=OFF: candidates %v, want none", Setting, c)
	}
	line := libsearch.Search{Lib: Lib()}.NotFound(nil)
	for _, w := range []string{"cuDNN not found", Setting + " unset", "libcudnn.so.9, libcudnn.so.8", "site-packages/nvidia/{cudnn,cu13}/lib", "convolutions run on GoCaffe's own CUDA kernels"} {
		if !strings.Contains(line, w) {
			t.Errorf("not-found line %q lacks %q", line, w)
		}
	}
	if off := (libsearch.Search{Lib: Lib(), Setting: "off"}).NotFound(nil); !strings.Contains(off, "cuDNN off ("+Setting+"=off)") {
		t.Errorf("off line %q", off)
	}
}
