package data

import (
	"slices"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
)

func TestSyntheticFixedAndFresh(t *testing.T) {
	tops := func() []*blob.Blob[float32] {
		return []*blob.Blob[float32]{blob.New[float32](3, 1, 2, 2), blob.New[float32](3)}
	}
	// Fixed: the first call fills the tops, later ones leave them as they are.
	fixed, top := NewSynthetic(1, 2, false), tops()
	if err := fixed.Next(top); err != nil {
		t.Fatal(err)
	}
	for _, v := range top[0].HostData() {
		if v < 0 || v >= 1 {
			t.Fatalf("image value %v outside [0, 1)", v)
		}
	}
	for _, v := range top[1].HostData() {
		if v != 0 && v != 1 {
			t.Fatalf("label %v is not 0 or 1", v)
		}
	}
	top[0].Data()[0] = 42
	if err := fixed.Next(top); err != nil {
		t.Fatal(err)
	}
	if top[0].HostData()[0] != 42 {
		t.Fatalf("a fixed source rewrote its tops on a later call")
	}
	// Fresh: every call copies in a batch, alternating between two.
	fresh, top := NewSynthetic(1, 10, true), tops()
	var seen [][]float32
	for range 3 {
		if err := fresh.Next(top); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, slices.Clone(top[0].HostData()))
	}
	if slices.Equal(seen[0], seen[1]) || !slices.Equal(seen[0], seen[2]) {
		t.Fatalf("fresh batches: want two alternating, got %v", seen)
	}
}
