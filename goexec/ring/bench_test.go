package ring

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// BenchmarkAllReduce times one all-reduce of LeNet's gradient (431,080
// floats) and of a 60M-parameter buffer over loopback TCP, all ranks in
// this process (so they share this machine's cores).
//
//	go test -run '^$' -bench AllReduce -benchtime 5x ./goexec/ring/
func BenchmarkAllReduce(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"lenet-431k", 431080}, {"60M", 60_000_000}} {
		for _, ranks := range []int{2, 4} {
			b.Run(fmt.Sprintf("%s/ranks=%d", size.name, ranks), func(b *testing.B) {
				rings, errs := connectAll(b, context.Background(), ranks, func(_ int, c *Config) { c.Chunk = 0; c.Timeout = 0 })
				for i, err := range errs {
					if err != nil {
						b.Fatalf("rank %d: %v", i, err)
					}
				}
				bufs := make([][]float32, ranks)
				for i := range bufs {
					bufs[i] = make([]float32, size.n)
					for j := range bufs[i] {
						bufs[i][j] = float32(j%7) * 0.25
					}
				}
				b.SetBytes(int64(4 * size.n))
				b.ResetTimer()
				for it := 0; it < b.N; it++ {
					var wg sync.WaitGroup
					for i := range rings {
						wg.Add(1)
						go func() {
							defer wg.Done()
							errs[i] = rings[i].AllReduce(context.Background(), bufs[i])
						}()
					}
					wg.Wait()
					for i, err := range errs {
						if err != nil {
							b.Fatalf("rank %d: %v", i, err)
						}
					}
				}
			})
		}
	}
}
