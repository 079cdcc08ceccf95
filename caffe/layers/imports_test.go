package layers

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"testing"
)

// Layers and solvers reach math only through kernels.Backend: no file of
// theirs (tests included) imports the CPU kernels directly.
func TestNoDirectCPUKernelImports(t *testing.T) {
	var files []string
	for _, dir := range []string{".", "../solver"} {
		m, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 50 {
		t.Fatalf("found only %d Go files: wrong directory?", len(files))
	}
	fset := token.NewFileSet()
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "github.com/gocaffe/gocaffe/kernels/cpu" {
				t.Errorf("%s imports %s: use the layer's kernels.Backend", f, p)
			}
		}
	}
}
