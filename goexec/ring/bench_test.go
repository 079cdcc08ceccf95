package ring

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkAllReduce times one all-reduce of LeNet's gradient (431,080
// floats) and of a 60M-parameter buffer over loopback TCP, all ranks in
// this process (so they share this machine's cores); with two ranks also
// over an encrypted ring. With four ranks the LeNet buffer takes the
// direct path by default; "/ring" forces the ring (60M floats always go
// round the ring).
//
//	go test -run '^$' -bench AllReduce -benchtime 5x ./goexec/ring/
func BenchmarkAllReduce(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"lenet-431k", 431080}, {"60M", 60_000_000}} {
		for _, c := range []struct {
			ranks         int
			encrypt, ring bool
		}{{2, false, false}, {4, false, false}, {4, false, true}, {2, true, false}} {
			name := fmt.Sprintf("%s/ranks=%d", size.name, c.ranks)
			if c.encrypt {
				name += "/encrypted"
			}
			if c.ring {
				if size.n > DefaultDirectMaxFloats {
					continue // the same as without /ring
				}
				name += "/ring"
			}
			b.Run(name, func(b *testing.B) {
				rings := benchRing(b, c.ranks, c.encrypt, c.ring)
				bufs := make([][]float32, c.ranks)
				for i := range bufs {
					bufs[i] = make([]float32, size.n)
					for j := range bufs[i] {
						bufs[i][j] = float32(j%7) * 0.25
					}
				}
				b.SetBytes(int64(4 * size.n))
				b.ResetTimer()
				cpu0 := cpuTime()
				for it := 0; it < b.N; it++ {
					allReduceAll(b, rings, func(i int) []float32 { return bufs[i] })
				}
				// The CPU time of all ranks together (this process's user
				// and system time): what a busy host's load does not change.
				b.ReportMetric(float64(cpuTime()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// BenchmarkGradientSync is a training iteration's gradient sync on two
// ranks for LeNet's eight parameter blobs (431,080 floats) and the loss:
// "copy" gathers the blobs' gradients into one buffer, all-reduces it,
// scales it by 1/ranks and scatters it back (what a round did before the
// net laid its gradients out in one buffer); "in-place" all-reduces and
// scales the net's one gradient buffer where it lies.
//
//	go test -run '^$' -bench GradientSync -benchtime 200x ./goexec/ring/
func BenchmarkGradientSync(b *testing.B) {
	sizes := []int{500, 20, 25000, 50, 400000, 500, 5000, 10} // LeNet's conv1, conv2, ip1, ip2 weights and biases
	total := 0
	for _, n := range sizes {
		total += n
	}
	for _, inPlace := range []bool{false, true} {
		name := "copy"
		if inPlace {
			name = "in-place"
		}
		b.Run(name, func(b *testing.B) {
			const ranks = 2
			rings := benchRing(b, ranks, false, false)
			flat := make([][]float32, ranks)     // the all-reduce buffer (+1 for the loss)
			params := make([][][]float32, ranks) // each blob's gradient
			for i := range flat {
				flat[i] = make([]float32, total+1)
				o := 0
				for _, n := range sizes {
					if inPlace {
						params[i] = append(params[i], flat[i][o:o+n])
					} else {
						params[i] = append(params[i], make([]float32, n))
					}
					o += n
				}
			}
			b.SetBytes(int64(4 * total))
			b.ResetTimer()
			for it := 0; it < b.N; it++ {
				allReduceAll(b, rings, func(i int) []float32 {
					buf := flat[i]
					if !inPlace {
						o := 0
						for _, p := range params[i] {
							o += copy(buf[o:], p)
						}
					}
					return buf
				}, func(i int, buf []float32) {
					inv := float32(1) / ranks
					for j := range buf {
						buf[j] *= inv
					}
					if !inPlace {
						o := 0
						for _, p := range params[i] {
							o += copy(p, buf[o:o+len(p)])
						}
					}
				})
			}
		})
	}
}

// benchRing connects ranks in this process with the default chunk and
// timeout; ringOnly disables the direct all-reduce.
func benchRing(b *testing.B, ranks int, encrypt, ringOnly bool) []*Ring {
	b.Helper()
	rings, errs := connectAll(b, context.Background(), ranks, func(_ int, c *Config) {
		c.Chunk, c.Timeout, c.Encrypt = 0, 0, encrypt
		if ringOnly {
			c.DirectMaxFloats = -1
		}
	})
	for i, err := range errs {
		if err != nil {
			b.Fatalf("rank %d: %v", i, err)
		}
	}
	return rings
}

// allReduceAll runs one all-reduce on every rank concurrently, of the
// buffer before(i) returns, then calls each after.
func allReduceAll(b *testing.B, rings []*Ring, before func(i int) []float32, after ...func(i int, buf []float32)) {
	errs := make([]error, len(rings))
	var wg sync.WaitGroup
	for i := range rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := before(i)
			if errs[i] = rings[i].AllReduce(context.Background(), buf); errs[i] == nil {
				for _, f := range after {
					f(i, buf)
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			b.Fatalf("rank %d: %v", i, err)
		}
	}
}

// BenchmarkSealOpen is the CPU cost of ring encryption alone, without the
// network: sealing and opening one direction's records (1 MiB each) of a
// LeNet-sized buffer on one core.
//
//	go test -run '^$' -bench SealOpen ./goexec/ring/
func BenchmarkSealOpen(b *testing.B) {
	keys, err := deriveKeys(secret, "bench", make([]byte, nonceLen), make([]byte, nonceLen))
	if err != nil {
		b.Fatal(err)
	}
	var wire bytes.Buffer
	w, err := newSecureConn(&captureConn{w: &wire}, keys, true)
	if err != nil {
		b.Fatal(err)
	}
	r, err := newSecureConn(&replayConn{r: &wire}, keys, false)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 4*431080)
	got := make([]byte, len(msg))
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		wire.Reset()
		if _, err := w.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(r, got); err != nil {
			b.Fatal(err)
		}
	}
}

// replayConn reads what a captureConn recorded.
type replayConn struct {
	net.Conn
	r *bytes.Buffer
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// cpuTime is this process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
