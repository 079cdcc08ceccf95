//go:build cuda

package cuda

import (
	"testing"
	"unsafe"
)

// Uploads through the copy stream are never read before their copy
// completes, nor overwritten before the stream has read them: batches of
// distinct values go up into one device buffer while the stream is kept
// busy by a large GEMM before each, and each batch is added to an
// accumulator right after its upload. More batches than upload slots, so
// every slot's host and device buffers are reused several times; a copy
// read early or a slot overwritten early changes the (exact, integer) sum.
func TestCopyStreamOrder(t *testing.T) {
	need(t)
	was := dev.CopyStream()
	if err := dev.SetCopyStream(true); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := dev.SetCopyStream(was); err != nil {
			t.Error(err)
		}
	}()
	if !dev.CopyStream() {
		t.Fatal("the copy stream is not on after SetCopyStream(true)")
	}
	o := Ops[float32]{dev}
	const n, batches, gm = 1 << 20, 3*stageSlots + 1, 1024
	dst, acc := up(t, make([]float32, n)), up(t, make([]float32, n))
	ga, gb, gc := up(t, make([]float32, gm*gm)), up(t, make([]float32, gm*gm)), up(t, make([]float32, gm*gm))
	x := make([]float32, n)
	want := make([]float64, n)
	for i := range batches {
		if err := o.Gemm(false, false, gm, gm, gm, 1, ga, gm, gb, gm, 0, gc, gm); err != nil {
			t.Fatal(err)
		}
		for j := range x {
			x[j] = float32((i + 1) * (j%7 + 1))
			want[j] += float64(x[j])
		}
		if err := dev.Upload(dst, unsafe.Pointer(&x[0]), 4*n); err != nil {
			t.Fatal(err)
		}
		if err := o.Axpy(n, 1, dst, acc); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]float32, n)
	if err := dev.Download(unsafe.Pointer(&got[0]), acc, 4*n); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for j := range got {
		if float64(got[j]) != want[j] {
			if bad < 5 {
				t.Errorf("element %d: sum of the uploaded batches %g, want %g", j, got[j], want[j])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d elements differ: an upload was read before its copy completed or overwritten before it was read", bad, n)
	}
}
