package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"time"
	"unsafe"
)

const frameMagic = 0x47435246 // "GCRF"

// Stats is where a ring's all-reduces spent their time, summed over calls.
// Wait is the time until every expected frame's header had arrived (the
// peers reaching the step: mostly the slowest rank's compute), Transfer
// the rest of each step (the data crossing, and the ring's adds as they
// come), Reduce the direct all-reduce's sums.
type Stats struct {
	Calls, Direct          int
	Wait, Transfer, Reduce time.Duration
}

// Stats returns the time spent in all-reduces since the ring was formed.
func (r *Ring) Stats() Stats { return r.stats }

// AllReduce replaces buf, on every rank, with the element-wise sum of all
// ranks' bufs. All ranks must call it with buffers of the same length, in
// the same order of calls. A failure names the peer; it leaves the ring
// unusable (later calls return the same error) and buf partly reduced.
// A cancelled ctx stops a blocked exchange at once.
func (r *Ring) AllReduce(ctx context.Context, buf []float32) error {
	if r.err != nil {
		return r.err
	}
	n := r.size
	if n == 1 {
		return ctx.Err()
	}
	aborted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(aborted)
		r.abort()
	})
	defer func() {
		if !stop() {
			// Cancelled during the call: once the abort is done, a call
			// that succeeded all the same leaves the ring usable.
			<-aborted
			if r.err == nil {
				r.aborted.Store(false)
			}
		}
	}()
	r.stats.Calls++
	if r.mesh && len(buf) <= r.cfg.DirectMaxFloats {
		r.stats.Direct++
		return r.direct(ctx, buf)
	}
	seg := func(i int) []float32 {
		lo := len(buf) * i / n
		hi := len(buf) * (i + 1) / n
		return buf[lo:hi]
	}
	step := uint32(0)
	// Reduce-scatter: after n-1 steps rank r holds the full sum of segment
	// r+1, its copies added in rank order from rank r+1's (cyclically, rank
	// r's last).
	for s := 0; s < n-1; s++ {
		send := seg((r.rank - s + 2*n) % n)
		recv := seg((r.rank - s - 1 + 2*n) % n)
		if err := r.step(ctx, step, []xfer{{r.next, send}}, []xfer{{r.prev, recv}}, true); err != nil {
			return err
		}
		step++
	}
	// All-gather: pass the reduced segments around the ring.
	for s := 0; s < n-1; s++ {
		send := seg((r.rank + 1 - s + 2*n) % n)
		recv := seg((r.rank - s + 2*n) % n)
		if err := r.step(ctx, step, []xfer{{r.next, send}}, []xfer{{r.prev, recv}}, false); err != nil {
			return err
		}
		step++
	}
	return nil
}

// direct is the all-reduce over a mesh, in two steps. Rank r sums segment
// r+1, the one the ring leaves summed on rank r: every rank sends each rank
// its copy of the segment that rank sums, each rank adds the copies in the
// ring's order (rank r+1's copy first, its own last), so the sums are bit
// for bit the ring's, then sends its sum to every rank.
func (r *Ring) direct(ctx context.Context, buf []float32) error {
	n := r.size
	seg := func(i int) []float32 {
		i %= n
		lo := len(buf) * i / n
		hi := len(buf) * (i + 1) / n
		return buf[lo:hi]
	}
	mine := seg(r.rank + 1)
	// Rank r+d's copy of mine goes to scratch piece d (1 <= d < n).
	need := (n - 1) * len(mine)
	if cap(r.scratch) < need {
		r.scratch = make([]float32, need)
	}
	piece := func(d int) []float32 { return r.scratch[(d-1)*len(mine) : d*len(mine)] }
	sends := make([]xfer, 0, n-1)
	recvs := make([]xfer, 0, n-1)
	for d := 1; d < n; d++ {
		peer := (r.rank + d) % n
		sends = append(sends, xfer{peer, seg(peer + 1)})
		recvs = append(recvs, xfer{peer, piece(d)})
	}
	if err := r.step(ctx, 0, sends, recvs, false); err != nil {
		return err
	}
	t0 := time.Now()
	acc := piece(1)
	for d := 2; d < n; d++ {
		for i, v := range piece(d)[:len(acc)] {
			acc[i] += v
		}
	}
	for i, v := range acc[:len(mine)] {
		mine[i] += v // a + b == b + a in IEEE arithmetic: only the chain's order matters
	}
	r.stats.Reduce += time.Since(t0)
	for d := 1; d < n; d++ {
		peer := (r.rank + d) % n
		sends[d-1] = xfer{peer, mine}
		recvs[d-1] = xfer{peer, seg(peer + 1)}
	}
	return r.step(ctx, 1, sends, recvs, false)
}

// abort makes every blocked or later read and write of the ring's
// connections fail at once.
func (r *Ring) abort() {
	r.aborted.Store(true)
	for _, c := range r.conns() {
		c.SetDeadline(time.Unix(1, 0))
	}
}

// errAborted is what a transfer returns after an abort; the caller reports
// the abort's cause instead.
var errAborted = errors.New("all-reduce aborted")

// deadline sets a read or write deadline Timeout from now, unless the ring
// was aborted: an abort sets the flag before it spoils the deadlines, so a
// deadline set after the spoiling still sees the flag.
func (r *Ring) deadline(set func(time.Time) error) error {
	set(time.Now().Add(r.cfg.Timeout))
	if r.aborted.Load() {
		return errAborted
	}
	return nil
}

// xfer is one frame of a step: the data sent to, or received from, a peer.
type xfer struct {
	peer int
	data []float32
}

// step sends every frame of sends while receiving every frame of recvs,
// all at once, adding each received frame into its data (add) or
// overwriting it. The first failure wins: it unblocks the other transfers
// and leaves the ring unusable.
func (r *Ring) step(ctx context.Context, step uint32, sends, recvs []xfer, add bool) error {
	t0 := time.Now()
	var (
		mu      sync.Mutex
		first   error
		lastHdr time.Time
		wg      sync.WaitGroup
	)
	done := func(err error, hdr time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if hdr.After(lastHdr) {
			lastHdr = hdr
		}
		if err == nil || first != nil {
			return
		}
		first = err
		r.abort() // unblock the others so none outlives the call
	}
	for _, x := range sends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done(r.send(x.peer, step, x.data), time.Time{})
		}()
	}
	// The last receive runs on this goroutine.
	for i, x := range recvs {
		if i == len(recvs)-1 {
			hdr, err := r.receive(x.peer, step, x.data, add)
			done(err, hdr)
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			hdr, err := r.receive(x.peer, step, x.data, add)
			done(err, hdr)
		}()
	}
	wg.Wait()
	if first == nil {
		if lastHdr.Before(t0) {
			lastHdr = t0
		}
		r.stats.Wait += lastHdr.Sub(t0)
		r.stats.Transfer += time.Since(lastHdr)
		return nil
	}
	if ctx.Err() != nil {
		r.err = fmt.Errorf("ring all-reduce: %w", ctx.Err())
	} else {
		r.err = first
	}
	return r.err
}

func (r *Ring) send(peer int, step uint32, data []float32) error {
	l := &r.links[peer]
	c := l.out
	fail := func(err error) error {
		return &PeerError{Rank: peer, Addr: r.cfg.Peers[peer], Op: "send", Err: r.describe(err)}
	}
	var hdr [12]byte
	binary.LittleEndian.PutUint32(hdr[0:], frameMagic)
	binary.LittleEndian.PutUint32(hdr[4:], step)
	binary.LittleEndian.PutUint32(hdr[8:], uint32(len(data)))
	if err := r.deadline(c.SetWriteDeadline); err != nil {
		return err
	}
	if _, err := c.Write(hdr[:]); err != nil {
		return fail(err)
	}
	for len(data) > 0 {
		k := min(len(data), r.cfg.Chunk)
		var b []byte
		if littleEndian {
			b = floatBytes(data[:k]) // the wire format is the memory layout
		} else {
			if l.sendBuf == nil {
				l.sendBuf = make([]byte, 4*r.cfg.Chunk)
			}
			b = l.sendBuf[:4*k]
			for i, v := range data[:k] {
				binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
			}
		}
		if err := r.deadline(c.SetWriteDeadline); err != nil {
			return err
		}
		if _, err := c.Write(b); err != nil {
			return fail(err)
		}
		data = data[k:]
	}
	return nil
}

// receive reads one frame from peer into dst and returns when its header
// arrived.
func (r *Ring) receive(peer int, step uint32, dst []float32, add bool) (time.Time, error) {
	l := &r.links[peer]
	c := l.in
	fail := func(err error) error {
		return &PeerError{Rank: peer, Addr: r.cfg.Peers[peer], Op: "receive", Err: r.describe(err)}
	}
	var hdr [12]byte
	if err := r.deadline(c.SetReadDeadline); err != nil {
		return time.Time{}, err
	}
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return time.Time{}, fail(err)
	}
	at := time.Now()
	if m, s, k := binary.LittleEndian.Uint32(hdr[0:]), binary.LittleEndian.Uint32(hdr[4:]), binary.LittleEndian.Uint32(hdr[8:]); m != frameMagic || s != step || int(k) != len(dst) {
		return at, fail(fmt.Errorf("%w: got frame (magic %#x, step %d, %d floats), want step %d with %d floats (ranks disagree on the buffer)",
			errShort, m, s, k, step, len(dst)))
	}
	for len(dst) > 0 {
		k := min(len(dst), r.cfg.Chunk)
		d := dst[:k]
		var b []byte
		if littleEndian && !add {
			b = floatBytes(d) // read straight into place
		} else {
			if l.recvBuf == nil {
				l.recvBuf = make([]byte, 4*r.cfg.Chunk)
			}
			b = l.recvBuf[:4*k]
		}
		if err := r.deadline(c.SetReadDeadline); err != nil {
			return at, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return at, fail(err)
		}
		switch {
		case littleEndian && !add:
		case littleEndian:
			for i, v := range bytesFloats(b) {
				d[i] += v
			}
		case add:
			for i := range d {
				d[i] += math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		default:
			for i := range d {
				d[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		}
		dst = dst[k:]
	}
	return at, nil
}

// describe turns low-level network errors into what they mean for a peer.
func (r *Ring) describe(err error) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("no progress within %v (peer hung, dead, or the call was cancelled): %w", r.cfg.Timeout, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("connection closed by the peer (process gone?): %w", err)
	case errors.Is(err, net.ErrClosed):
		return fmt.Errorf("connection closed locally: %w", err)
	}
	return err
}

// littleEndian reports whether float32s in memory already have the wire
// format (little-endian IEEE 754), so buffers go to and from the network
// without conversion.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// floatBytes views a float32 slice as its bytes.
func floatBytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
}

// bytesFloats views bytes (a multiple of 4 long, from a []float32-aligned
// allocation) as float32s.
func bytesFloats(b []byte) []float32 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

// SetTimeouts changes the ring's Timeout and ConnectTimeout (zero: the
// defaults, as in Config) for the operations that follow; call it between
// them, never during one. A ring kept for a new round takes the round's.
func (r *Ring) SetTimeouts(timeout, connect time.Duration) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if connect <= 0 {
		connect = timeout
	}
	r.cfg.Timeout, r.cfg.ConnectTimeout = timeout, connect
}

// Barrier returns once every rank has called it (an all-reduce of one
// value), waiting up to timeout for the slowest rank (zero: the ring's
// Timeout). A ring kept between rounds calls it first: a peer gone since
// the last all-reduce fails it at once with a PeerError.
func (r *Ring) Barrier(ctx context.Context, timeout time.Duration) error {
	saved := r.cfg.Timeout
	if timeout > 0 {
		r.cfg.Timeout = timeout
	}
	defer func() { r.cfg.Timeout = saved }()
	var one [1]float32
	return r.AllReduce(ctx, one[:])
}
