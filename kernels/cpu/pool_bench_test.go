package cpu

import (
	"math/rand/v2"
	"testing"

	"github.com/gocaffe/gocaffe/kernels"
)

// BenchmarkPool times max and average pooling, forward and backward, at
// the shapes of CIFAR-10 quick's pooling layers (3×3 stride 2, batch 100)
// and LeNet's (2×2 stride 2, batch 64), on all cores.
func BenchmarkPool(b *testing.B) {
	for _, c := range []struct {
		name         string
		planes, h, o int
		k            int
	}{
		{"cifar-pool1", 100 * 32, 32, 16, 3},
		{"cifar-pool2", 100 * 32, 16, 8, 3},
		{"lenet-pool1", 64 * 20, 24, 12, 2},
		{"lenet-pool2", 64 * 50, 8, 4, 2},
	} {
		g := kernels.PoolGeom{H: c.h, W: c.h, OH: c.o, OW: c.o, KH: c.k, KW: c.k, SH: 2, SW: 2}
		r := rand.New(rand.NewPCG(1, 2))
		x := kernels.HostVec(randSlice(r, c.planes*c.h*c.h))
		dx := kernels.HostVec(make([]float32, c.planes*c.h*c.h))
		y := kernels.HostVec(randSlice(r, c.planes*c.o*c.o))
		mask := kernels.HostInts(make([]int32, c.planes*c.o*c.o))
		be := backend[float32]{}
		b.Run(c.name+"/max-fwd", func(b *testing.B) {
			for b.Loop() {
				be.MaxPoolForward(x, c.planes, g, y, mask)
			}
		})
		b.Run(c.name+"/max-bwd", func(b *testing.B) {
			be.MaxPoolForward(x, c.planes, g, y, mask) // the argmax indices
			for b.Loop() {
				be.MaxPoolBackward(y, mask, c.planes, g, dx)
			}
		})
		b.Run(c.name+"/ave-fwd", func(b *testing.B) {
			for b.Loop() {
				be.AvePoolForward(x, c.planes, g, y)
			}
		})
		b.Run(c.name+"/ave-bwd", func(b *testing.B) {
			for b.Loop() {
				be.AvePoolBackward(y, c.planes, g, dx)
			}
		})
	}
}
