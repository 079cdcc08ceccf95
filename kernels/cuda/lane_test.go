//go:build cuda

package cuda

import (
	"testing"

	"github.com/gocaffe/gocaffe/kernels/cuda/cudnn"
)

// Work issued Beside starts after what was issued before it and is seen by
// what is issued after a join: each round fills a fresh buffer on the main
// stream behind a large GEMM (so a side stream that did not wait would
// read it unfilled), adds it to an accumulator beside (behind a GEMM on
// the side stream, through cuBLAS when loaded, so that the side stream is
// still busy when the main one goes on), and after the last round the
// main stream copies the accumulator. Launched, and recorded as a graph
// replayed twice; with the side stream on, and off as the reference.
func TestSideStreamOrder(t *testing.T) {
	need(t)
	defer dev.SetSideStream(dev.SetSideStream(true))
	o := Ops[float32]{dev}
	const n, rounds, gm = 1 << 18, 6, 1024
	xs := make([]Ptr, rounds)
	for i := range xs {
		xs[i] = up(t, make([]float32, n))
	}
	acc, out := up(t, make([]float32, n)), up(t, make([]float32, n))
	ga, gb := up(t, make([]float32, gm*gm)), up(t, make([]float32, gm*gm))
	gc, gd := up(t, make([]float32, gm*gm)), up(t, make([]float32, gm*gm))
	iteration := func() error {
		if err := o.Fill(acc, n, 0); err != nil {
			return err
		}
		for i, x := range xs {
			if err := o.Gemm(false, false, gm, gm, gm, 1, ga, gm, gb, gm, 0, gc, gm); err != nil {
				return err
			}
			if err := o.Fill(x, n, float32(i+1)); err != nil {
				return err
			}
			var err error
			dev.Beside(func() {
				if err = o.Gemm(false, false, gm, gm, gm, 1, ga, gm, gb, gm, 0, gd, gm); err == nil {
					err = o.Axpy(n, 1, x, acc)
				}
			})
			if err != nil {
				return err
			}
		}
		if err := dev.Join(); err != nil {
			return err
		}
		return o.Copy(out, acc, n)
	}
	want := float32(rounds * (rounds + 1) / 2)
	check := func(what string) {
		t.Helper()
		for i, v := range down[float32](t, out, n) {
			if v != want {
				t.Fatalf("%s: element %d is %g, want %g: a side stream's add ran before its fill, or the copy before the adds", what, i, v, want)
			}
		}
		if err := o.Fill(out, n, -1); err != nil {
			t.Fatal(err)
		}
	}
	for _, side := range []bool{false, true} {
		dev.SetSideStream(side)
		forks := dev.SideForks()
		if err := iteration(); err != nil {
			t.Fatal(err)
		}
		check("launched")
		g, err := dev.Capture(iteration)
		if err != nil {
			t.Fatal(err)
		}
		for r := range 2 {
			if err := g.Launch(); err != nil {
				t.Fatal(err)
			}
			check("replay " + string(rune('1'+r)))
		}
		g.Destroy()
		want := int64(0)
		if side {
			want = 2 * rounds // the launched iteration's and the recording's
		}
		if got := dev.SideForks() - forks; got != want {
			t.Fatalf("side stream %v: %d forks, want %d", side, got, want)
		}
	}
}

// A download waits for the side stream's work without an explicit join.
func TestSideStreamDownloadJoins(t *testing.T) {
	need(t)
	defer dev.SetSideStream(dev.SetSideStream(true))
	o := Ops[float32]{dev}
	const n, gm = 1 << 18, 1024
	x := up(t, make([]float32, n))
	ga, gb, gc := up(t, make([]float32, gm*gm)), up(t, make([]float32, gm*gm)), up(t, make([]float32, gm*gm))
	var err error
	dev.Beside(func() {
		for range 4 {
			if err == nil {
				err = o.Gemm(false, false, gm, gm, gm, 1, ga, gm, gb, gm, 0, gc, gm)
			}
		}
		if err == nil {
			err = o.Fill(x, n, 7)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range down[float32](t, x, n) {
		if v != 7 {
			t.Fatalf("element %d is %g after the download, want 7", i, v)
		}
	}
}

// A cuDNN plan whose weight gradient runs beside and whose data gradient,
// chosen later on the main stream, needs a larger workspace leaves both
// lanes' workspaces large enough for every direction: a recording that
// replays the weight gradient beside grows nothing (LeNet b64's conv2
// failed to record so on an H100, where its backward-data algorithm
// needed 8.2 MB and the weight gradient's 3.7).
func TestSideStreamDNNWorkspaces(t *testing.T) {
	need(t)
	if !dev.HasDNN() {
		t.Skipf("cuDNN not loaded, cuDNN test skipped: %s", dev.DNN())
	}
	defer dev.SetSideStream(dev.SetSideStream(true))
	was := dev.DNNChoice()
	dev.SetDNNChoice(cudnn.Fastest)
	defer dev.SetDNNChoice(was)
	s := cudnn.Shape{N: 64, C: 20, H: 12, W: 12, K: 50, Groups: 1, KH: 5, KW: 5, SH: 1, SW: 1, DH: 1, DW: 1, OH: 8, OW: 8}
	c, err := dev.NewDNNConv(4, s)
	if err != nil {
		t.Fatal(err)
	}
	defer c.c.Destroy()
	x, w := up(t, make([]float32, s.N*s.C*s.H*s.W)), up(t, make([]float32, s.K*s.C*s.KH*s.KW))
	y, dy := up(t, make([]float32, s.N*s.K*s.OH*s.OW)), up(t, make([]float32, s.N*s.K*s.OH*s.OW))
	dx, dw := up(t, make([]float32, s.N*s.C*s.H*s.W)), up(t, make([]float32, s.K*s.C*s.KH*s.KW))
	pass := func() error {
		if err := c.Forward(x, w, y); err != nil {
			return err
		}
		var err error
		dev.Beside(func() { err = c.BackwardFilter(x, dy, dw) })
		if err != nil {
			return err
		}
		return c.BackwardData(dy, w, dx)
	}
	if err := pass(); err != nil {
		t.Fatal(err)
	}
	for name, l := range map[string]*lane{"main": dev.main, "side": dev.sides.l} {
		if l == nil || l.dnnWSBytes < c.c.Workspace {
			t.Fatalf("%s lane: cuDNN workspace short of the plan's %d bytes (%s)", name, c.c.Workspace, c.Algorithms())
		}
	}
	g, err := dev.Capture(pass)
	if err != nil {
		t.Fatalf("recording the passes: %v (%s)", err, c.Algorithms())
	}
	defer g.Destroy()
	if err := g.Launch(); err != nil {
		t.Fatal(err)
	}
	if err := dev.Sync(); err != nil {
		t.Fatal(err)
	}
}
