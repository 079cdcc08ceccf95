package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var secret = []byte("0123456789abcdef-test-secret")

// listeners opens n loopback listeners and returns them with their addresses.
func listeners(t testing.TB, n int) ([]net.Listener, []string) {
	t.Helper()
	var ls []net.Listener
	var addrs []string
	for i := 0; i < n; i++ {
		l, err := Listen("127.0.0.1", 0, false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	return ls, addrs
}

// connectAll forms a ring of n ranks, with cfg adjusted per rank by tweak.
func connectAll(t testing.TB, ctx context.Context, n int, tweak func(rank int, c *Config)) ([]*Ring, []error) {
	t.Helper()
	ls, addrs := listeners(t, n)
	return connectAllOn(t, ctx, ls, addrs, tweak)
}

// connectAllOn forms a ring on the given listeners.
func connectAllOn(t testing.TB, ctx context.Context, ls []net.Listener, addrs []string, tweak func(rank int, c *Config)) ([]*Ring, []error) {
	t.Helper()
	n := len(ls)
	rings := make([]*Ring, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := Config{Rank: i, Peers: addrs, Secret: secret, Session: "round-1", Timeout: 5 * time.Second, Chunk: 1000}
			if tweak != nil {
				tweak(i, &cfg)
			}
			rings[i], errs[i] = Connect(ctx, ls[i], cfg)
		}()
	}
	wg.Wait()
	for _, r := range rings {
		if r != nil {
			t.Cleanup(func() { r.Close() })
		}
	}
	return rings, errs
}

func TestAllReduceSums(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4} {
		for _, length := range []int{0, 1, 3, 7, 2500, 10007} {
			t.Run(fmt.Sprintf("ranks=%d/len=%d", n, length), func(t *testing.T) {
				ctx := context.Background()
				rings, errs := connectAll(t, ctx, n, nil)
				for i, err := range errs {
					if err != nil {
						t.Fatalf("rank %d: %v", i, err)
					}
				}
				rng := rand.New(rand.NewPCG(uint64(n), uint64(length)))
				bufs := make([][]float32, n)
				want := make([]float64, length)
				for i := range bufs {
					bufs[i] = make([]float32, length)
					for j := range bufs[i] {
						v := float32(rng.NormFloat64())
						bufs[i][j] = v
						want[j] += float64(v)
					}
				}
				// Two calls in a row: the ring is reusable.
				for call := 0; call < 2; call++ {
					if call == 1 {
						for i := range bufs {
							for j := range bufs[i] {
								bufs[i][j] = float32(i + 1)
							}
						}
					}
					var wg sync.WaitGroup
					for i := 0; i < n; i++ {
						wg.Add(1)
						go func() {
							defer wg.Done()
							errs[i] = rings[i].AllReduce(ctx, bufs[i])
						}()
					}
					wg.Wait()
					for i, err := range errs {
						if err != nil {
							t.Fatalf("call %d rank %d: %v", call, i, err)
						}
					}
					for j := 0; j < length; j++ {
						w := want[j]
						if call == 1 {
							w = float64(n * (n + 1) / 2)
						}
						if math.Abs(float64(bufs[0][j])-w) > 1e-5*(1+math.Abs(w)) {
							t.Fatalf("call %d: element %d = %g, want %g", call, j, bufs[0][j], w)
						}
						for i := 1; i < n; i++ {
							// Every rank must hold bit-identical sums, or replicas drift apart.
							if math.Float32bits(bufs[i][j]) != math.Float32bits(bufs[0][j]) {
								t.Fatalf("call %d: rank %d element %d = %g, rank 0 has %g", call, i, j, bufs[i][j], bufs[0][j])
							}
						}
					}
				}
			})
		}
	}
}

func TestBadSecretRejected(t *testing.T) {
	start := time.Now()
	_, errs := connectAll(t, context.Background(), 3, func(rank int, c *Config) {
		if rank == 2 {
			c.Secret = []byte("a-different-secret-of-rank-two")
		}
	})
	auth := 0
	for i, err := range errs {
		var pe *PeerError
		if !errors.As(err, &pe) {
			t.Fatalf("rank %d: got %v, want a PeerError (rank 2 has the wrong secret)", i, err)
		}
		if errors.Is(err, ErrAuth) {
			auth++
		}
	}
	if auth == 0 {
		t.Errorf("no rank reports an authentication failure: %v", errs)
	}
	// Rank 0 accepts from rank 2 and rank 2 dials rank 0: rank 0's error
	// names rank 2 and its address. It may name rank 1 too, first: rank 1
	// gives up on rank 2 as well, and when rank 0 sees both neighbours hang
	// up it cannot tell which of them failed first.
	named := false
	for _, pe := range peerErrorsOf(errs[0]) {
		named = named || pe.Rank == 2 && strings.Contains(errs[0].Error(), pe.Addr)
	}
	if !named {
		t.Errorf("rank 0's error does not name rank 2 and its address: %v", errs[0])
	}
	var pe *PeerError
	// From rank 2's side its neighbours are the ones with the wrong proof.
	if !errors.As(errs[2], &pe) || (pe.Rank != 0 && pe.Rank != 1) {
		t.Errorf("rank 2's error does not name a neighbour: %v", errs[2])
	}
	t.Logf("authentication failure noticed after %v", time.Since(start)) // informational: timing never decides a test
}

func TestWrongSessionRejected(t *testing.T) {
	_, errs := connectAll(t, context.Background(), 2, func(rank int, c *Config) {
		if rank == 1 {
			c.Session = "round-0"
		}
	})
	for i, err := range errs {
		if !errors.Is(err, ErrAuth) {
			t.Errorf("rank %d: want ErrAuth for a stale round, got %v", i, err)
		}
	}
}

func TestStrangerIgnoredThenPeerAccepted(t *testing.T) {
	ls, addrs := listeners(t, 2)
	// A stranger connects to rank 1 first and sends garbage (claiming no
	// rank of this ring).
	c, err := net.Dial("tcp", addrs[1])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	junk := make([]byte, 200)
	for i := range junk {
		junk[i] = 0xee
	}
	go c.Write(junk)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	rings := make([]*Ring, 2)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rings[i], errs[i] = Connect(context.Background(), ls[i], Config{Rank: i, Peers: addrs, Secret: secret, Timeout: 3 * time.Second})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", i, err)
		}
		defer rings[i].Close()
	}
}

func TestDeadPeerNamed(t *testing.T) {
	ctx := context.Background()
	rings, errs := connectAll(t, ctx, 3, func(rank int, c *Config) { c.Timeout = 2 * time.Second })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", i, err)
		}
	}
	// Rank 2 dies: its connections close.
	rings[2].Close()
	start := time.Now()
	buf := make([]float32, 5000)
	err := rings[0].AllReduce(ctx, buf)
	var pe *PeerError
	if !errors.As(err, &pe) || pe.Rank != 2 || pe.Addr != rings[0].cfg.Peers[2] {
		t.Fatalf("rank 0 got %v, want an error naming rank 2", err)
	}
	if !strings.Contains(err.Error(), rings[0].cfg.Peers[2]) {
		t.Errorf("error does not name the address: %v", err)
	}
	t.Logf("dead peer took %v to notice", time.Since(start)) // informational: timing never decides a test
	// The ring stays failed.
	if err2 := rings[0].AllReduce(ctx, buf); err2 == nil {
		t.Error("AllReduce after a failure succeeded")
	}
}

func TestHungPeerTimesOut(t *testing.T) {
	ctx := context.Background()
	rings, errs := connectAll(t, ctx, 2, func(rank int, c *Config) { c.Timeout = 300 * time.Millisecond })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", i, err)
		}
	}
	// Rank 1 is alive but never calls AllReduce.
	start := time.Now()
	err := rings[0].AllReduce(ctx, make([]float32, 10))
	var pe *PeerError
	if !errors.As(err, &pe) || pe.Rank != 1 || pe.Op != "receive" {
		t.Fatalf("got %v, want a receive timeout naming rank 1", err)
	}
	t.Logf("timeout took %v", time.Since(start)) // informational: timing never decides a test
}

// TestSetTimeoutsApplies: a ring connected with a long timeout and given
// a short one by SetTimeouts (a kept ring taking a new round's
// ring_timeout_ms) times out a hung peer by the new one, and says so.
func TestSetTimeoutsApplies(t *testing.T) {
	ctx := context.Background()
	rings, errs := connectAll(t, ctx, 2, func(rank int, c *Config) { c.Timeout = time.Minute })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", i, err)
		}
	}
	rings[0].SetTimeouts(200*time.Millisecond, 0)
	err := rings[0].AllReduce(ctx, make([]float32, 10))
	var pe *PeerError
	if !errors.As(err, &pe) || pe.Rank != 1 || !strings.Contains(err.Error(), "within 200ms") {
		t.Fatalf("got %v, want a receive timeout of 200ms naming rank 1", err)
	}
}

func TestCancelStopsAllReduce(t *testing.T) {
	rings, errs := connectAll(t, context.Background(), 2, nil) // 5 s timeout
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err := rings[0].AllReduce(ctx, make([]float32, 10))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	t.Logf("cancel took %v", time.Since(start)) // informational: timing never decides a test
}

func TestConnectToMissingPeer(t *testing.T) {
	ls, addrs := listeners(t, 2)
	dead := addrs[1]
	ls[1].Close() // rank 1 never started
	start := time.Now()
	_, err := Connect(context.Background(), ls[0], Config{Rank: 0, Peers: addrs, Secret: secret, Timeout: 5 * time.Second})
	var pe *PeerError
	if !errors.As(err, &pe) || pe.Rank != 1 || pe.Addr != dead {
		t.Fatalf("got %v, want an error naming rank 1 at %s", err, dead)
	}
	t.Logf("took %v", time.Since(start)) // informational: timing never decides a test
}

func TestConfigAndListenChecks(t *testing.T) {
	if _, err := Listen("0.0.0.0", 0, false); err == nil {
		t.Error("Listen on 0.0.0.0 without allowAny succeeded")
	}
	if _, err := Listen("localhost", 0, false); err == nil {
		t.Error("Listen on a host name succeeded")
	}
	l, err := Listen("0.0.0.0", 0, true)
	if err != nil {
		t.Errorf("Listen on 0.0.0.0 with allowAny: %v", err)
	} else {
		l.Close()
	}
	bad := []Config{
		{Rank: 0},
		{Rank: 2, Peers: []string{"127.0.0.1:1", "127.0.0.1:2"}, Secret: secret},
		{Rank: 0, Peers: []string{"127.0.0.1:1", "127.0.0.1:2"}, Secret: []byte("short")},
		{Rank: 0, Peers: []string{"127.0.0.1:1", "host:2"}, Secret: secret},
	}
	for i, c := range bad {
		if _, err := Connect(context.Background(), nil, c); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
	r, err := Connect(context.Background(), nil, Config{Rank: 0, Peers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatalf("one rank: %v", err)
	}
	buf := []float32{1, 2}
	if err := r.AllReduce(context.Background(), buf); err != nil || buf[0] != 1 || buf[1] != 2 {
		t.Errorf("one-rank AllReduce changed %v or failed: %v", buf, err)
	}
}

// checkSums all-reduces rank-dependent buffers (several chunks long) on
// every ring concurrently and checks the sums.
func checkSums(t *testing.T, rings []*Ring) {
	t.Helper()
	n, length := len(rings), 5003
	bufs := make([][]float32, n)
	errs := make([]error, n)
	for i := range bufs {
		bufs[i] = make([]float32, length)
		for j := range bufs[i] {
			bufs[i][j] = float32(i+1) + float32(j%5)
		}
	}
	var wg sync.WaitGroup
	for i, r := range rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.AllReduce(context.Background(), bufs[i])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", i, err)
		}
	}
	for i := range bufs {
		for j, v := range bufs[i] {
			if w := float32(n*(n+1)/2 + n*(j%5)); v != w {
				t.Fatalf("rank %d element %d = %g, want %g", i, j, v, w)
			}
		}
	}
}

// reduceAll runs one all-reduce on every ring concurrently and fails the
// test on any error.
func reduceAll(t *testing.T, rings []*Ring, bufs [][]float32) {
	t.Helper()
	errs := make([]error, len(rings))
	var wg sync.WaitGroup
	for i, r := range rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.AllReduce(context.Background(), bufs[i])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", i, err)
		}
	}
}

// TestDirectMatchesRing: the direct all-reduce (every rank linked to every
// other) gives bit for bit the ring's sums, on 2 to 5 ranks and buffers of
// odd lengths (segments of unequal and zero length, frames of several
// chunks), and buffers over DirectMaxFloats go round the ring.
func TestDirectMatchesRing(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{2, 3, 4, 5} {
		t.Run(fmt.Sprintf("ranks=%d", n), func(t *testing.T) {
			const limit = 5000 // the direct path's largest buffer here
			direct, errs := connectAll(t, ctx, n, func(_ int, c *Config) { c.DirectMaxFloats = limit })
			for i, err := range errs {
				if err != nil {
					t.Fatalf("direct rank %d: %v", i, err)
				}
			}
			ring, errs := connectAll(t, ctx, n, func(_ int, c *Config) { c.DirectMaxFloats = -1 })
			for i, err := range errs {
				if err != nil {
					t.Fatalf("ring rank %d: %v", i, err)
				}
			}
			if got, want := direct[0].Direct(), n > 2; got != want {
				t.Fatalf("Direct() = %v with %d ranks, want %v", got, n, want)
			}
			if ring[0].Direct() {
				t.Fatal("Direct() with DirectMaxFloats < 0")
			}
			directCalls := 0
			for _, length := range []int{0, 1, 2, 3, 5, 7, 1001, 4999, 5000, 5001, 10007} {
				rng := rand.New(rand.NewPCG(uint64(n), uint64(length)))
				a := make([][]float32, n)
				b := make([][]float32, n)
				for i := range a {
					a[i] = make([]float32, length)
					for j := range a[i] {
						// Magnitudes over several decades, so the order
						// of the additions shows in the bits.
						a[i][j] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(7)-3)))
					}
					b[i] = slices.Clone(a[i])
				}
				reduceAll(t, direct, a)
				reduceAll(t, ring, b)
				for i := range a {
					for j := range a[i] {
						if math.Float32bits(a[i][j]) != math.Float32bits(b[i][j]) {
							t.Fatalf("len %d: rank %d element %d: direct %g, ring %g", length, i, j, a[i][j], b[i][j])
						}
					}
				}
				if n > 2 && length <= limit {
					directCalls++
				}
				for i, r := range direct {
					if got := r.Stats().Direct; got != directCalls {
						t.Fatalf("len %d: rank %d made %d direct all-reduces, want %d", length, i, got, directCalls)
					}
				}
			}
			if st := ring[0].Stats(); st.Direct != 0 || st.Calls != 11 {
				t.Errorf("ring-only stats %+v: want 11 calls, none direct", st)
			}
		})
	}
}

// TestDirectPeerLostMidReduce: a rank that sends its first step's pieces
// and dies leaves every other rank of a direct all-reduce with an error
// naming it (the PeerError that goexec reports as PEER_LOST), and their
// rings failed.
func TestDirectPeerLostMidReduce(t *testing.T) {
	ctx := context.Background()
	const n, length = 4, 10007
	rings, errs := connectAll(t, ctx, n, func(_ int, c *Config) { c.Timeout = 5 * time.Second })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", i, err)
		}
	}
	bufs := make([][]float32, n)
	for i := range bufs {
		bufs[i] = make([]float32, length)
	}
	// Rank 3 sends its copies of the other ranks' segments, then closes
	// its connections before the second step.
	dead := rings[3]
	var sends []xfer
	for d := 1; d < n; d++ {
		peer := (dead.rank + d) % n
		lo, hi := length*((peer+1)%n)/n, length*((peer+1)%n+1)/n
		sends = append(sends, xfer{peer, bufs[3][lo:hi]})
	}
	if err := dead.step(ctx, 0, sends, nil, false); err != nil {
		t.Fatal(err)
	}
	dead.Close()
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = rings[i].AllReduce(ctx, bufs[i])
		}()
	}
	wg.Wait()
	for i := 0; i < 3; i++ {
		var pe *PeerError
		if !errors.As(errs[i], &pe) || pe.Rank != 3 || pe.Addr != rings[i].cfg.Peers[3] {
			t.Errorf("rank %d got %v, want an error naming rank 3 at %s", i, errs[i], rings[i].cfg.Peers[3])
			continue
		}
		if rings[i].Stats().Direct != 1 {
			t.Errorf("rank %d: stats %+v, want one direct all-reduce", i, rings[i].Stats())
		}
		if err := rings[i].AllReduce(ctx, bufs[i]); err == nil {
			t.Errorf("rank %d: AllReduce after a failure succeeded", i)
		}
	}
}

// TestMeshMissingPeerNamed: in a mesh, a rank that never started is named
// by every other rank (they dial it), and ranks wait for all their peers.
func TestMeshMissingPeerNamed(t *testing.T) {
	ls, addrs := listeners(t, 3)
	ls[2].Close() // rank 2 never started
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Connect(context.Background(), ls[i], Config{Rank: i, Peers: addrs, Secret: secret, Timeout: 3 * time.Second})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		var pe *PeerError
		if !errors.As(err, &pe) || pe.Rank != 2 || pe.Addr != addrs[2] {
			t.Errorf("rank %d got %v, want an error naming rank 2 at %s", i, err, addrs[2])
		}
	}
}

// TestCancelDuringFirstFrame: a call cancelled while it reads a frame's
// chunks (its conversion buffer allocated on the way) aborts without a data
// race between the abort, which walks the ring's connections from the
// context's goroutine, and the receive that allocates the buffer (run with
// -race: `make unit` does), and the call returns the cancellation.
func TestCancelDuringFirstFrame(t *testing.T) {
	const length, chunk = 10000, 1000
	rings, errs := connectAll(t, context.Background(), 2, func(_ int, c *Config) {
		c.DirectMaxFloats = -1 // the ring's reduce-scatter adds through the buffer
		c.Chunk = chunk
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", i, err)
		}
	}
	// Rank 1 sends the header of rank 0's first frame and one chunk of it,
	// then nothing: rank 0 reads the chunk and waits for the next.
	out := rings[1].links[0].out
	var frame [12 + 4*chunk]byte
	binary.LittleEndian.PutUint32(frame[0:], frameMagic)
	binary.LittleEndian.PutUint32(frame[4:], 0)
	binary.LittleEndian.PutUint32(frame[8:], length/2)
	if _, err := out.Write(frame[:]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- rings[0].AllReduce(ctx, make([]float32, length)) }()
	// Rank 0's own first frame reaching rank 1 shows it is in the step;
	// the pause lets it read the chunk (allocating its buffer) before the
	// cancel. Were the cancel earlier, the call would still have to return
	// the cancellation.
	in := rings[1].links[0].in
	in.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(in, make([]byte, 12+4*length/2)); err != nil {
		t.Fatalf("rank 0's first frame: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// peerErrorsOf returns the PeerErrors in err's tree, through wrapping and
// errors.Join, in order.
func peerErrorsOf(err error) []*PeerError {
	var out []*PeerError
	var walk func(error)
	walk = func(e error) {
		if pe, ok := e.(*PeerError); ok {
			out = append(out, pe)
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			if x := u.Unwrap(); x != nil {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}
