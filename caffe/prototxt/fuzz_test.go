package prototxt

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseNet feeds arbitrary text to the net parser. Bad input must give
// an error, never a panic; input that parses must print to text that parses
// back to the same net (compared through the printed form, which also makes
// NaNs compare equal).
//
// Seeds: every net under testdata/ plus the corpus in
// testdata/fuzz/FuzzParseNet.
func FuzzParseNet(f *testing.F) {
	files, err := filepath.Glob("testdata/*.prototxt")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		src, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		net, err := ParseNet("fuzz.prototxt", src)
		if err != nil {
			if _, ok := IsParseError(err); !ok {
				t.Fatalf("error is not a *ParseError: %v", err)
			}
			return
		}
		text := FormatNet(net)
		again, err := ParseNet("printed", text)
		if err != nil {
			t.Fatalf("printed net does not parse: %v\n%s", err, text)
		}
		if text2 := FormatNet(again); !bytes.Equal(text, text2) {
			t.Fatalf("print → parse → print changed the net:\n%s\n---\n%s", text, text2)
		}
	})
}

// FuzzParseSolver does the same for solver prototxt.
func FuzzParseSolver(f *testing.F) {
	for _, p := range []string{"testdata/lenet_solver.prototxt", "testdata/legacy_solver.prototxt"} {
		src, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		sp, err := ParseSolver("fuzz.prototxt", src)
		if err != nil {
			if _, ok := IsParseError(err); !ok {
				t.Fatalf("error is not a *ParseError: %v", err)
			}
			return
		}
		text := FormatSolver(sp)
		again, err := ParseSolver("printed", text)
		if err != nil {
			t.Fatalf("printed solver does not parse: %v\n%s", err, text)
		}
		if text2 := FormatSolver(again); !bytes.Equal(text, text2) {
			t.Fatalf("print → parse → print changed the solver:\n%s\n---\n%s", text, text2)
		}
	})
}
