package ring

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestIdleAndSlowStrangersDoNotBlock: a stranger that connects and says
// nothing, and one that answers the hello a byte at a time, hold their
// connections open while the ring forms; the real peers still join (with
// handshakes allowed a minute each, a one-at-a-time accept would wait for
// the strangers first and run out of its join time).
func TestIdleAndSlowStrangersDoNotBlock(t *testing.T) {
	ls, addrs := listeners(t, 2)
	var strangers []net.Conn
	for _, a := range addrs {
		idle, err := net.Dial("tcp", a)
		if err != nil {
			t.Fatal(err)
		}
		slow, err := net.Dial("tcp", a)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			var hello [8 + nonceLen]byte
			if _, err := io.ReadFull(slow, hello[:]); err != nil {
				return
			}
			for i := 0; i < 60; i++ {
				if _, err := slow.Write([]byte{byte(i)}); err != nil {
					return
				}
				time.Sleep(time.Second)
			}
		}()
		strangers = append(strangers, idle, slow)
	}
	defer func() {
		for _, c := range strangers {
			c.Close()
		}
	}()
	rings, errs := connectAllOn(t, context.Background(), ls, addrs, func(_ int, c *Config) {
		c.HandshakeTimeout = time.Minute
		c.ConnectTimeout = 20 * time.Second
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", i, err)
		}
	}
	checkSums(t, rings)
}

// TestStalledStrangerDropped: a connection that stalls its handshake is
// dropped after HandshakeTimeout while the rank goes on waiting for its
// peer (which joins only after the stranger saw its connection closed).
func TestStalledStrangerDropped(t *testing.T) {
	ls, addrs := listeners(t, 2)
	idle, err := net.Dial("tcp", addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	cfg := func(rank int) Config {
		return Config{Rank: rank, Peers: addrs, Secret: secret, HandshakeTimeout: 100 * time.Millisecond, ConnectTimeout: time.Minute}
	}
	type joined struct {
		r   *Ring
		err error
	}
	first := make(chan joined, 1)
	go func() {
		r, err := Connect(context.Background(), ls[0], cfg(0))
		first <- joined{r, err}
	}()
	// The stranger is dropped long before rank 0's minute of waiting ends.
	idle.SetReadDeadline(time.Now().Add(30 * time.Second))
	b := make([]byte, 64)
	for {
		_, err := idle.Read(b)
		if err == nil {
			continue // the hello
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("the stalled stranger is still connected after 30 s")
		}
		break // closed by rank 0
	}
	r1, err := Connect(context.Background(), ls[1], cfg(1))
	if err != nil {
		t.Fatalf("rank 1: %v", err)
	}
	defer r1.Close()
	j := <-first
	if j.err != nil {
		t.Fatalf("rank 0: %v", j.err)
	}
	defer j.r.Close()
	checkSums(t, []*Ring{j.r, r1})
}

func TestEncryptedAllReduce(t *testing.T) {
	rings, errs := connectAll(t, context.Background(), 3, func(_ int, c *Config) { c.Encrypt = true })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", i, err)
		}
	}
	checkSums(t, rings)
}

func TestEncryptionMismatchRejected(t *testing.T) {
	_, errs := connectAll(t, context.Background(), 2, func(rank int, c *Config) {
		c.Encrypt = rank == 0
		c.ConnectTimeout = 3 * time.Second
	})
	for i, err := range errs {
		if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "encryption") {
			t.Errorf("rank %d: %v, want an authentication error naming the encryption setting", i, err)
		}
	}
}

func testKeys(t *testing.T) *sessionKeys {
	t.Helper()
	keys, err := deriveKeys(secret, "s", bytes.Repeat([]byte{1}, nonceLen), bytes.Repeat([]byte{2}, nonceLen))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// sealed returns the wire bytes an encrypting client writes for msg.
func sealed(t *testing.T, keys *sessionKeys, msg []byte) []byte {
	t.Helper()
	var wire bytes.Buffer
	c, err := newSecureConn(&captureConn{w: &wire}, keys, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	return wire.Bytes()
}

// opener returns the decrypting server end of a pipe and the raw end to
// write wire bytes into.
func opener(t *testing.T, keys *sessionKeys) (net.Conn, net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	srv, err := newSecureConn(b, keys, false)
	if err != nil {
		t.Fatal(err)
	}
	return srv, a
}

// TestSecureConnHidesAndAuthenticates: what crosses the wire is not the
// plaintext (in two records); the other end reads the plaintext back; the
// same record replayed fails.
func TestSecureConnHidesAndAuthenticates(t *testing.T) {
	keys := testKeys(t)
	msg := bytes.Repeat([]byte("gradient"), maxRecord/8+100) // two records
	raw := sealed(t, keys, msg)
	if bytes.Contains(raw, []byte("gradient")) {
		t.Fatal("plaintext on the wire")
	}
	if want := len(msg) + 2*(recordHeader+16); len(raw) != want {
		t.Errorf("%d bytes on the wire for %d of plaintext, want %d (two records)", len(raw), len(msg), want)
	}
	srv, wire := opener(t, keys)
	go wire.Write(raw)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(srv, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("read back: err %v, equal %v", err, bytes.Equal(got, msg))
	}
	go wire.Write(raw) // a replay: the counters have moved on
	if _, err := srv.Read(got); !errors.Is(err, ErrTampered) {
		t.Fatalf("replayed record: %v, want ErrTampered", err)
	}
}

func TestSecureConnTampered(t *testing.T) {
	keys := testKeys(t)
	raw := sealed(t, keys, []byte("weights"))
	raw[len(raw)-1] ^= 1
	srv, wire := opener(t, keys)
	go wire.Write(raw)
	if _, err := srv.Read(make([]byte, 16)); !errors.Is(err, ErrTampered) {
		t.Fatalf("altered record: %v, want ErrTampered", err)
	}
	// The other direction's key does not open a client's record.
	raw = sealed(t, keys, []byte("weights"))
	cl, wire2 := func() (net.Conn, net.Conn) {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		c, err := newSecureConn(b, keys, true) // reads with the server→client key
		if err != nil {
			t.Fatal(err)
		}
		return c, a
	}()
	go wire2.Write(raw)
	if _, err := cl.Read(make([]byte, 16)); !errors.Is(err, ErrTampered) {
		t.Fatalf("record opened with the wrong direction's key: %v, want ErrTampered", err)
	}
}

// captureConn records writes instead of sending them.
type captureConn struct {
	net.Conn
	w *bytes.Buffer
}

func (c *captureConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// TestBarrierFindsDeadPeer: a ring kept idle whose peer then dies fails its
// next barrier with an error naming the peer, without waiting for the
// timeout.
func TestBarrierFindsDeadPeer(t *testing.T) {
	rings, errs := connectAll(t, context.Background(), 2, nil)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", i, err)
		}
	}
	done := make(chan error, 2)
	for _, r := range rings {
		go func() { done <- r.Barrier(context.Background(), time.Minute) }()
	}
	for range rings {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	rings[1].Close()
	var pe *PeerError
	if err := rings[0].Barrier(context.Background(), time.Minute); !errors.As(err, &pe) || pe.Rank != 1 {
		t.Fatalf("got %v, want an error naming rank 1", err)
	}
}
