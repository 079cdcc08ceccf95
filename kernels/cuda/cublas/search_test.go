package cublas

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// touch creates the file p (and its folders) under root.
func touch(t *testing.T, root, p string) string {
	t.Helper()
	f := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

func libs(cs []Candidate) []string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Lib)
	}
	return s
}

func TestSearchOrder(t *testing.T) {
	root := t.TempDir()
	// A venv whose python3 is on PATH, with a 12.x wheel (nvidia/cublas/lib)
	// under two Python versions, and a prefix with a 13.x wheel.
	touch(t, root, "venv/bin/python3")
	v12 := touch(t, root, "venv/lib/python3.12/site-packages/nvidia/cublas/lib/libcublas.so.12")
	v11 := touch(t, root, "venv/lib/python3.11/site-packages/nvidia/cublas/lib/libcublas.so.12")
	p13 := touch(t, root, "usr/lib/python3/dist-packages/nvidia/cu13/lib/libcublas.so.13")
	// Folders that must not count: a PATH entry without python3, a
	// site-packages without the wheel.
	touch(t, root, "other/bin/python2")
	touch(t, root, "other/lib/python3.10/site-packages/nvidia/cublas/lib/libcublas.so.12")
	os.MkdirAll(filepath.Join(root, "usr/local/lib/python3.9/site-packages/numpy"), 0o755)

	s := Search{Path: []string{"", filepath.Join(root, "other/bin"), filepath.Join(root, "venv/bin")},
		Prefixes: []string{filepath.Join(root, "usr/local"), filepath.Join(root, "usr")}}
	want := append(append([]string{}, Names...), v12, v11, p13)
	if got := libs(s.Candidates()); !reflect.DeepEqual(got, want) {
		t.Fatalf("candidates\n got %q\nwant %q", got, want)
	}
	for i, c := range s.Candidates() {
		if i < len(Names) && c.Where != "library path" || i >= len(Names) && c.Where != filepath.Dir(c.Lib) {
			t.Errorf("candidate %d %s found in %q", i, c.Lib, c.Where)
		}
	}

	// The setting wins alone; "off" (any case) tries nothing.
	s.Setting = "/opt/x/libcublas.so.12"
	if got := libs(s.Candidates()); !reflect.DeepEqual(got, []string{"/opt/x/libcublas.so.12"}) {
		t.Fatalf("with %s set: %q", Setting, got)
	}
	s.Setting = "OFF"
	if got := s.Candidates(); len(got) != 0 {
		t.Fatalf("with %s=off: %q", Setting, libs(got))
	}
}

func TestNotFoundLine(t *testing.T) {
	root := t.TempDir()
	touch(t, root, "venv/bin/python3")
	os.MkdirAll(filepath.Join(root, "venv/lib/python3.11/site-packages/nvidia/cublas/lib"), 0o755)
	s := Search{Path: []string{filepath.Join(root, "venv/bin")}}
	line := s.NotFound([]string{"/x/libcublas.so.12: file too short"})
	for _, want := range []string{Setting + " unset", "libcublas.so.13, libcublas.so.12, libcublas.so on the library path",
		filepath.Join(root, "venv/lib/python3.11/site-packages/nvidia/cublas/lib"), "/x/libcublas.so.12: file too short",
		"own CUDA kernels"} {
		if !strings.Contains(line, want) {
			t.Errorf("not-found line lacks %q:\n%s", want, line)
		}
	}
	if strings.Contains(line, "\n") {
		t.Errorf("not-found line is several lines:\n%s", line)
	}
	empty := Search{}.NotFound(nil)
	if !strings.Contains(empty, "no pip wheel folder") {
		t.Errorf("with no wheel folder: %s", empty)
	}
	if off := (Search{Setting: "off"}).NotFound(nil); !strings.Contains(off, Setting+"=off") {
		t.Errorf("off: %s", off)
	}
	if set := (Search{Setting: "/y/libcublas.so"}).NotFound([]string{"/y/libcublas.so: no such file"}); !strings.Contains(set, Setting+"=/y/libcublas.so") ||
		!strings.Contains(set, "no such file") {
		t.Errorf("set: %s", set)
	}
}

// TestColMajor checks the row-major → column-major mapping GemmRowMajor
// hands cuBLAS by running both GEMMs on the host at odd shapes, every
// transpose, leading dimensions wider than the rows.
func TestColMajor(t *testing.T) {
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			m, n, k := 5, 7, 3
			lda, ldb, ldc := k+2, n+1, n+3
			if ta {
				lda = m + 2
			}
			if tb {
				ldb = k + 1
			}
			a := make([]float64, 64)
			b := make([]float64, 64)
			for i := range a {
				a[i], b[i] = float64(i%11)-5, float64(i%7)-3
			}
			// Row-major reference.
			want := make([]float64, m*ldc)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					s := 0.0
					for p := 0; p < k; p++ {
						av := a[i*lda+p]
						if ta {
							av = a[p*lda+i]
						}
						bv := b[p*ldb+j]
						if tb {
							bv = b[j*ldb+p]
						}
						s += av * bv
					}
					want[i*ldc+j] = s
				}
			}
			// Column-major BLAS semantics on the mapped call; the
			// addresses 1 and 2 stand for a and b.
			g := ColMajor(ta, tb, m, n, k, 1, lda, 0, 2, ldb, 0)
			mat := map[uintptr][]float64{1: a, 2: b}
			A, B := mat[g.A], mat[g.B]
			got := make([]float64, m*ldc)
			for i := 0; i < g.M; i++ {
				for j := 0; j < g.N; j++ {
					s := 0.0
					for p := 0; p < g.K; p++ {
						av := A[i+p*g.LDA] // column-major (i, p)
						if g.TransA == 1 {
							av = A[p+i*g.LDA]
						}
						bv := B[p+j*g.LDB]
						if g.TransB == 1 {
							bv = B[j+p*g.LDB]
						}
						s += av * bv
					}
					got[i+j*ldc] = s // column-major C with ldc
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ta=%v tb=%v: column-major call gives %v, want %v", ta, tb, got, want)
			}
		}
	}
}
