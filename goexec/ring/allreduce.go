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
	"time"
	"unsafe"
)

const frameMagic = 0x47435246 // "GCRF"

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
	stop := context.AfterFunc(ctx, func() {
		r.out.SetDeadline(time.Unix(1, 0))
		r.in.SetDeadline(time.Unix(1, 0))
	})
	defer stop()
	seg := func(i int) []float32 {
		lo := len(buf) * i / n
		hi := len(buf) * (i + 1) / n
		return buf[lo:hi]
	}
	step := uint32(0)
	// Reduce-scatter: after n-1 steps rank r holds the full sum of segment r+1.
	for s := 0; s < n-1; s++ {
		send := seg((r.rank - s + 2*n) % n)
		recv := seg((r.rank - s - 1 + 2*n) % n)
		if err := r.exchange(ctx, step, send, recv, true); err != nil {
			return err
		}
		step++
	}
	// All-gather: pass the reduced segments around the ring.
	for s := 0; s < n-1; s++ {
		send := seg((r.rank + 1 - s + 2*n) % n)
		recv := seg((r.rank - s + 2*n) % n)
		if err := r.exchange(ctx, step, send, recv, false); err != nil {
			return err
		}
		step++
	}
	return nil
}

// exchange sends send to the next rank while receiving recv's counterpart
// from the previous one, adding it into recv (add) or overwriting recv.
func (r *Ring) exchange(ctx context.Context, step uint32, send, recv []float32, add bool) error {
	errc := make(chan error, 1)
	go func() { errc <- r.send(step, send) }()
	rerr := r.receive(step, recv, add)
	if rerr != nil {
		// Unblock the sender so it does not outlive the call.
		r.out.SetDeadline(time.Unix(1, 0))
	}
	serr := <-errc
	if rerr == nil && serr == nil {
		return nil
	}
	if ctx.Err() != nil {
		r.err = fmt.Errorf("ring all-reduce: %w", ctx.Err())
		return r.err
	}
	switch {
	case rerr != nil:
		r.err = rerr
	default:
		r.err = serr
	}
	return r.err
}

func (r *Ring) send(step uint32, data []float32) error {
	c := r.out
	fail := func(err error) error {
		return &PeerError{Rank: r.next, Addr: r.cfg.Peers[r.next], Op: "send", Err: r.describe(err)}
	}
	var hdr [12]byte
	binary.LittleEndian.PutUint32(hdr[0:], frameMagic)
	binary.LittleEndian.PutUint32(hdr[4:], step)
	binary.LittleEndian.PutUint32(hdr[8:], uint32(len(data)))
	c.SetWriteDeadline(time.Now().Add(r.cfg.Timeout))
	if _, err := c.Write(hdr[:]); err != nil {
		return fail(err)
	}
	for len(data) > 0 {
		k := min(len(data), r.cfg.Chunk)
		var b []byte
		if littleEndian {
			b = floatBytes(data[:k]) // the wire format is the memory layout
		} else {
			b = r.sendBuf[:4*k]
			for i, v := range data[:k] {
				binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
			}
		}
		c.SetWriteDeadline(time.Now().Add(r.cfg.Timeout))
		if _, err := c.Write(b); err != nil {
			return fail(err)
		}
		data = data[k:]
	}
	return nil
}

func (r *Ring) receive(step uint32, dst []float32, add bool) error {
	c := r.in
	fail := func(err error) error {
		return &PeerError{Rank: r.prev, Addr: r.cfg.Peers[r.prev], Op: "receive", Err: r.describe(err)}
	}
	var hdr [12]byte
	c.SetReadDeadline(time.Now().Add(r.cfg.Timeout))
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return fail(err)
	}
	if m, s, k := binary.LittleEndian.Uint32(hdr[0:]), binary.LittleEndian.Uint32(hdr[4:]), binary.LittleEndian.Uint32(hdr[8:]); m != frameMagic || s != step || int(k) != len(dst) {
		return fail(fmt.Errorf("%w: got frame (magic %#x, step %d, %d floats), want step %d with %d floats (ranks disagree on the buffer)",
			errShort, m, s, k, step, len(dst)))
	}
	for len(dst) > 0 {
		k := min(len(dst), r.cfg.Chunk)
		d := dst[:k]
		b := r.recvBuf[:4*k]
		if littleEndian && !add {
			b = floatBytes(d) // all-gather: read straight into place
		}
		c.SetReadDeadline(time.Now().Add(r.cfg.Timeout))
		if _, err := io.ReadFull(c, b); err != nil {
			return fail(err)
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
	return nil
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
