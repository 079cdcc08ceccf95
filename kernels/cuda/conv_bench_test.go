//go:build cuda

package cuda

import (
	"fmt"
	"testing"

	"github.com/gocaffe/gocaffe/kernels"
	"github.com/gocaffe/gocaffe/kernels/cuda/cudnn"
)

// BenchmarkDirectConv times each pass of LeNet's (b64) and CIFAR-10
// quick's (b100) convolutions in float32 as a replayed graph runs them
// (timeGraphs: 20 calls recorded, the replays timed): cuDNN's heuristic
// choice, the tiled kernels as tilePick and tileSplits choose, at each
// block shape and at 1, 2, 4 and 8 splits (forward and data gradient),
// and the untiled kernels. One line per case and candidate, µs a pass.
func BenchmarkDirectConv(b *testing.B) {
	if dev == nil {
		b.Skip(noGPU)
	}
	geom := kernels.ConvGeom{KH: 5, KW: 5, SH: 1, SW: 1, DH: 1, DW: 1}
	pad := geom
	pad.PH, pad.PW = 2, 2
	cases := []struct {
		name string
		s    kernels.ConvShape
	}{
		{"lenet-conv1-b64", kernels.ConvShape{N: 64, C: 1, H: 28, W: 28, K: 20, Groups: 1, Geom: geom}},
		{"lenet-conv2-b64", kernels.ConvShape{N: 64, C: 20, H: 12, W: 12, K: 50, Groups: 1, Geom: geom}},
		{"cifar-conv1-b100", kernels.ConvShape{N: 100, C: 3, H: 32, W: 32, K: 32, Groups: 1, Geom: pad}},
		{"cifar-conv2-b100", kernels.ConvShape{N: 100, C: 32, H: 16, W: 16, K: 32, Groups: 1, Geom: pad}},
		{"cifar-conv3-b100", kernels.ConvShape{N: 100, C: 32, H: 8, W: 8, K: 64, Groups: 1, Geom: pad}},
	}
	o := Ops[float32]{dev}
	reset := func() { dev.noTile, dev.tileForce, dev.tileSplitForce = false, tileCfg{}, 0 }
	defer reset()
	for _, c := range cases {
		s := withOutputs([]kernels.ConvShape{c.s})[0]
		nx, nw, ny := s.N*s.C*s.H*s.W, s.K*s.C*s.Geom.KH*s.Geom.KW, s.N*s.K*s.OH*s.OW
		var bufs [4]Ptr
		for i, n := range []int{nx, nw, ny, nx} {
			p, err := dev.Alloc(4 * n)
			if err != nil {
				b.Fatal(err)
			}
			bufs[i] = p
			defer dev.Free(p)
		}
		x, w, y, dx := bufs[0], bufs[1], bufs[2], bufs[3]
		dw, err := dev.Alloc(4 * nw)
		if err != nil {
			b.Fatal(err)
		}
		defer dev.Free(dw)
		passes := [3]func() error{
			func() error { return o.DirectConvForward(s, x, w, y) },
			func() error { return o.DirectConvBackwardData(s, y, w, dx) },
			func() error { return o.DirectConvBackwardFilter(s, x, y, dw) },
		}
		type cand struct {
			name   string
			noTile bool
			force  tileCfg
			split  int
		}
		cands := []cand{{"tiled", false, tileCfg{}, 0}, {"untiled", true, tileCfg{}, 0}}
		for _, f := range []tileCfg{{64, 64}, {64, 32}, {32, 64}, {32, 32}} {
			cands = append(cands, cand{fmt.Sprintf("tiled-%dx%d", f.bm, f.bn), false, f, 0})
		}
		for _, n := range []int{1, 2, 4, 8} {
			cands = append(cands, cand{fmt.Sprintf("tiled-split%d", n), false, tileCfg{}, n})
		}
		for dir := dirForward; dir <= dirFilter; dir++ {
			if dev.HasDNN() {
				g := s.Geom
				dc, err := dev.NewDNNConv(4, cudnn.Shape{N: s.N, C: s.C, H: s.H, W: s.W, K: s.K, Groups: 1,
					KH: g.KH, KW: g.KW, SH: g.SH, SW: g.SW, PH: g.PH, PW: g.PW, DH: g.DH, DW: g.DW, OH: s.OH, OW: s.OW})
				if err != nil {
					b.Fatal(err)
				}
				fn := [3]func() error{
					func() error { return dc.Forward(x, w, y) },
					func() error { return dc.BackwardData(y, w, dx) },
					func() error { return dc.BackwardFilter(x, y, dw) },
				}[dir]
				b.Run(c.name+"/"+dir.String()+"/cudnn", func(b *testing.B) { timePass(b, fn) })
			}
			for _, cd := range cands {
				if cd.noTile && !untiledTakes(s, 4, dir) || !cd.noTile && !tiledTakes(s, 4, dir) ||
					cd.split > 0 && dir == dirFilter {
					continue
				}
				b.Run(c.name+"/"+dir.String()+"/"+cd.name, func(b *testing.B) {
					dev.noTile, dev.tileForce, dev.tileSplitForce = cd.noTile, cd.force, cd.split
					defer reset()
					timePass(b, passes[dir])
				})
			}
		}
	}
}

// timePass reports fn's µs a call in a replayed graph.
func timePass(b *testing.B, fn func() error) {
	for range b.N {
		ms, err := dev.timeGraphs(20, fn)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(ms[0]*1e3, "µs/pass")
	}
}
