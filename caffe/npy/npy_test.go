package npy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRoundTripAndGolden(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.npy")
	if err := Write(p, []int{2, 3}, []float32{1, 2, 3, 4, 5, -6.5}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(p)
	// What numpy.save writes for numpy.array([[1,2,3],[4,5,-6.5]], numpy.float32).
	wantHeader := "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + strings.Repeat(" ", 58) + "\n"
	if got := string(raw[:128]); got != wantHeader {
		t.Errorf("header %q\nwant   %q", got, wantHeader)
	}
	shape, data, err := Read(p)
	if err != nil || !slices.Equal(shape, []int{2, 3}) || !slices.Equal(data, []float32{1, 2, 3, 4, 5, -6.5}) {
		t.Errorf("Read: %v %v %v", shape, data, err)
	}
	if err := Write(p, []int{4}, []float32{1}); err == nil {
		t.Error("Write with a wrong shape succeeded")
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	hdr := func(descr, order, shape string) []byte {
		h := "{'descr': '" + descr + "', 'fortran_order': " + order + ", 'shape': (" + shape + "), }\n"
		return append([]byte("\x93NUMPY\x01\x00"+string(rune(len(h)))+"\x00"), h...)
	}
	for name, c := range map[string]struct {
		raw  []byte
		want string
	}{
		"text":    {[]byte("hello world"), "not a .npy file"},
		"f8":      {hdr("<f8", "False", "1,"), "dtype"},
		"fortran": {hdr("<f4", "True", "1,"), "Fortran order"},
		"short":   {append(hdr("<f4", "False", "2,"), 0, 0, 0, 0), "needs 8 bytes"},
	} {
		p := filepath.Join(dir, name+".npy")
		os.WriteFile(p, c.raw, 0o644)
		if _, _, err := Read(p); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming the file with %q", name, err, c.want)
		}
	}
}
