// Package ring is an all-reduce of float32 buffers between goexec
// processes over TCP: reduce-scatter then all-gather. Two algorithms share
// one wire format. The ring: each rank talks only to its two neighbours, in
// 2·(N−1) steps each waiting on the previous one. The direct all-reduce,
// for a few ranks (up to MeshMaxRanks) and buffers up to
// Config.DirectMaxFloats: every rank is linked to every other, sends each
// rank its piece of the buffer at once, sums the pieces it owns and sends
// the sum to everyone, in two steps. Either way every rank sends and
// receives about 2·(N−1)/N of the buffer per all-reduce, and both add each
// element's contributions in the same order, so they give the same bits.
//
// Every connection is authenticated with a shared secret by an HMAC-SHA256
// challenge-response over fresh nonces in both directions (the secret itself
// never crosses the wire); a peer that fails is rejected and named in the
// error. With Config.Encrypt the traffic after the handshake is encrypted
// with AES-256-GCM under keys derived (HKDF-SHA256) from the secret and both
// nonces, one key per direction. Incoming connections are handshaken
// concurrently, each within a short deadline, so a silent or slow stranger
// on the port never delays the real peer. Every read and write has a
// deadline and the context cancels any blocked exchange, so a dead or hung
// peer gives an error naming its rank and address within the configured
// timeout, never a hang.
package ring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultTimeout bounds each network operation when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// DefaultChunk is the number of floats sent per write when Config.Chunk is
// zero (1 MiB).
const DefaultChunk = 1 << 18

// DefaultHandshakeTimeout bounds one incoming connection's handshake when
// Config.HandshakeTimeout is zero: a peer that has dialled answers at once.
const DefaultHandshakeTimeout = 5 * time.Second

// MeshMaxRanks is the most ranks that link every rank to every other for
// the direct all-reduce; larger groups form only the ring.
const MeshMaxRanks = 8

// DefaultDirectMaxFloats is the largest buffer (in floats, 16 MiB) that
// the direct all-reduce takes when Config.DirectMaxFloats is zero; larger
// buffers go round the ring, which needs no scratch space. The direct
// all-reduce holds N−1 pieces of 1/N of the buffer each as scratch.
const DefaultDirectMaxFloats = 1 << 22

// hangUpGrace is how long joining goes on after a peer hung up during the
// handshake (it gave up on a failure of its own), so that the error names
// that failure (a missing or unauthenticated peer) when this rank sees it
// too.
const hangUpGrace = time.Second

// MinSecret is the shortest secret accepted for a ring of more than one rank.
const MinSecret = 16

// ErrAuth marks authentication failures (wrong secret, round or rank).
var ErrAuth = errors.New("authentication failed")

// PeerError is a failure talking to one peer of the ring.
type PeerError struct {
	Rank int    // the peer's rank
	Addr string // the peer's address as configured
	Op   string // what was being done: "connect", "accept", "send", "receive"
	Err  error
}

func (e *PeerError) Error() string {
	return fmt.Sprintf("ring peer rank %d (%s): %s: %v", e.Rank, e.Addr, e.Op, e.Err)
}

func (e *PeerError) Unwrap() error { return e.Err }

// Listen opens the TCP listener the ring's previous rank dials. ip must be
// a literal IP address (host names are refused: peers may resolve them
// differently); the unspecified addresses 0.0.0.0 and :: are refused unless
// allowAny is set. Port 0 picks a free port.
func Listen(ip string, port int, allowAny bool) (net.Listener, error) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return nil, fmt.Errorf("ring listen: ip %q is not an IP address: %w", ip, err)
	}
	if addr.IsUnspecified() && !allowAny {
		return nil, fmt.Errorf("ring listen: refusing to listen on all interfaces (%s) unless configured", ip)
	}
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("ring listen: port %d out of range", port)
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(addr.String(), strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("ring listen on %s:%d: %w", ip, port, err)
	}
	return lis, nil
}

// Config describes this rank's place in the ring.
type Config struct {
	// Rank is this process's rank, 0 <= Rank < len(Peers).
	Rank int
	// Peers holds every rank's "ip:port" (index = rank).
	Peers []string
	// Secret authenticates connections; at least MinSecret bytes when
	// there is more than one rank.
	Secret []byte
	// Session is mixed into the authentication (for example the training
	// round), so a connection from another round is rejected.
	Session string
	// Timeout bounds each read and write of an all-reduce (so it must
	// exceed the ranks' skew in reaching it); zero means DefaultTimeout.
	Timeout time.Duration
	// ConnectTimeout bounds joining the ring: waiting for the peers to
	// arrive and authenticate. Zero means Timeout.
	ConnectTimeout time.Duration
	// HandshakeTimeout bounds the handshake of each incoming connection
	// (a stranger that connects and stalls is dropped after it); zero means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// Chunk is the number of floats per network write; zero means
	// DefaultChunk.
	Chunk int
	// DirectMaxFloats is the largest buffer the direct all-reduce takes
	// with 3 to MeshMaxRanks ranks; zero means DefaultDirectMaxFloats and a
	// negative value always uses the ring (and links only the ring's
	// neighbours). Every rank must agree.
	DirectMaxFloats int
	// Encrypt encrypts the ring's traffic (AES-256-GCM, keys derived from
	// Secret). Every rank must agree: a mismatch fails the handshake.
	Encrypt bool
}

// Ring is an established group of authenticated connections: to the ring's
// neighbours, or to every other rank (a mesh, for the direct all-reduce).
// It is not safe for concurrent use: one AllReduce at a time.
type Ring struct {
	cfg        Config
	rank, size int
	next, prev int
	links      []link // by peer rank; only the ring neighbours' unless mesh
	mesh       bool   // every rank is linked to every other rank
	scratch    []float32
	stats      Stats
	aborted    atomic.Bool // set by abort: every transfer fails at once
	err        error       // sticky: a failed exchange leaves the ring unusable
}

// link is this rank's pair of connections with one peer: out to it, in from
// it (each dialled by its sender), and the conversion buffers of each
// direction, allocated on first use.
type link struct {
	out, in          net.Conn
	sendBuf, recvBuf []byte
}

// Rank returns this process's rank.
func (r *Ring) Rank() int { return r.rank }

// Size returns the number of ranks.
func (r *Ring) Size() int { return r.size }

// Direct reports whether all-reduces of up to the configured size take the
// direct path (every rank linked to every other) rather than the ring.
func (r *Ring) Direct() bool { return r.mesh && r.cfg.DirectMaxFloats > 0 }

// Close closes the ring's connections.
func (r *Ring) Close() error {
	var errs []error
	for i := range r.links {
		l := &r.links[i]
		for _, c := range []net.Conn{l.out, l.in} {
			if c != nil {
				if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
					errs = append(errs, err)
				}
			}
		}
		l.out, l.in = nil, nil
	}
	if r.err == nil {
		r.err = errors.New("ring closed")
	}
	return errors.Join(errs...)
}

// conns returns every open connection of the ring. An abort calls it
// while transfers run: it reads only the links' connections, never the
// conversion buffers that a transfer allocates.
func (r *Ring) conns() []net.Conn {
	var cs []net.Conn
	for i := range r.links {
		l := &r.links[i]
		for _, c := range []net.Conn{l.out, l.in} {
			if c != nil {
				cs = append(cs, c)
			}
		}
	}
	return cs
}

func (c *Config) validate() error {
	n := len(c.Peers)
	switch {
	case n == 0:
		return errors.New("ring: no peers")
	case c.Rank < 0 || c.Rank >= n:
		return fmt.Errorf("ring: rank %d not in [0, %d)", c.Rank, n)
	case n > 1 && len(c.Secret) < MinSecret:
		return fmt.Errorf("ring: secret of %d bytes is too short (at least %d)", len(c.Secret), MinSecret)
	case c.Timeout < 0 || c.ConnectTimeout < 0 || c.HandshakeTimeout < 0:
		return fmt.Errorf("ring: negative timeout %v / connect timeout %v / handshake timeout %v", c.Timeout, c.ConnectTimeout, c.HandshakeTimeout)
	case c.Chunk < 0:
		return fmt.Errorf("ring: negative chunk %d", c.Chunk)
	}
	if n > 1 {
		for i, p := range c.Peers {
			if _, err := netip.ParseAddrPort(p); err != nil {
				return fmt.Errorf("ring: peer %d address %q is not ip:port: %w", i, p, err)
			}
		}
	}
	return nil
}

// Connect joins the ring: it dials the ranks it sends to and accepts the
// ranks it receives from on lis (from Listen, already open before the
// peers' addresses were exchanged), authenticating every connection. Those
// are the next and the previous rank, or with 3 to MeshMaxRanks ranks and
// the direct all-reduce enabled (Config.DirectMaxFloats), every other rank.
// Connections on lis that fail authentication are rejected and logged in
// the error if the right peer never arrives. With one rank it returns a
// ring whose AllReduce does nothing; lis may then be nil. Connect does not
// close lis.
func Connect(ctx context.Context, lis net.Listener, cfg Config) (*Ring, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = cfg.Timeout
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.Chunk == 0 {
		cfg.Chunk = DefaultChunk
	}
	if cfg.DirectMaxFloats == 0 {
		cfg.DirectMaxFloats = DefaultDirectMaxFloats
	}
	n := len(cfg.Peers)
	r := &Ring{cfg: cfg, rank: cfg.Rank, size: n, next: (cfg.Rank + 1) % n, prev: (cfg.Rank + n - 1) % n}
	if n == 1 {
		return r, nil
	}
	if lis == nil {
		return nil, errors.New("ring: no listener")
	}
	// The peers this rank dials (and sends to) and accepts (and receives
	// from). With two ranks the ring already links each to the other.
	r.mesh = n > 2 && n <= MeshMaxRanks && cfg.DirectMaxFloats > 0
	dialTo, acceptFrom := []int{r.next}, []int{r.prev}
	if r.mesh {
		dialTo, acceptFrom = nil, nil
		for k := 1; k < n; k++ {
			dialTo = append(dialTo, (r.rank+k)%n)
			acceptFrom = append(acceptFrom, (r.rank+n-k)%n)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type result struct {
		peer int
		conn net.Conn
		err  error
	}
	dialc := make(chan result, len(dialTo))
	for _, peer := range dialTo {
		go func() {
			c, err := r.dial(ctx, peer)
			switch {
			case err == nil:
			case hungUp(err):
				// The peer gave up on a failure of its own: give the
				// other links a moment to show it before stopping.
				time.AfterFunc(hangUpGrace, cancel)
			default:
				cancel() // stop accepting and dialling: the ring cannot form
			}
			dialc <- result{peer, c, err}
		}()
	}
	ins, acceptErr := r.accept(ctx, lis, acceptFrom)
	if acceptErr != nil {
		cancel()
	}
	r.links = make([]link, n)
	var dialErrs []error
	for range dialTo {
		d := <-dialc
		if d.err != nil {
			dialErrs = append(dialErrs, d.err)
			continue
		}
		r.links[d.peer].out = d.conn
	}
	for peer, c := range ins {
		r.links[peer].in = c
	}
	if acceptErr != nil || len(dialErrs) > 0 {
		for _, c := range r.conns() {
			c.Close()
		}
		r.links = nil
		// The cause is an error other than our own cancelling, and a
		// dial error first: it is the cause when it made us stop accepting.
		var causes, cancelled []error
		for _, err := range append(dialErrs, acceptErr) {
			switch {
			case err == nil:
			case errors.Is(err, context.Canceled) && ctx.Err() != nil:
				cancelled = append(cancelled, err)
			default:
				causes = append(causes, err)
			}
		}
		if len(causes) == 0 {
			causes = cancelled
		}
		// A peer that hung up mid-handshake most likely gave up on a
		// failure of its own, which it reports: name the other causes first.
		slices.SortStableFunc(causes, func(a, b error) int { return cmpBool(hungUp(a), hungUp(b)) })
		if len(causes) == 1 {
			return nil, causes[0]
		}
		return nil, errors.Join(causes...)
	}
	return r, nil
}

func (r *Ring) dial(ctx context.Context, peer int) (net.Conn, error) {
	addr := r.cfg.Peers[peer]
	perr := func(op string, err error) error {
		return &PeerError{Rank: peer, Addr: addr, Op: op, Err: err}
	}
	d := net.Dialer{Timeout: r.cfg.ConnectTimeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, perr("connect", err)
	}
	c.SetDeadline(time.Now().Add(r.cfg.ConnectTimeout))
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	keys, err := clientHandshake(c, r.cfg, r.rank, peer)
	if err == nil && !stop() {
		err = ctx.Err() // cancelled just after the handshake: the deadline is spoiled
	}
	if err != nil {
		c.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("no answer within %v: %w", r.cfg.ConnectTimeout, err)
		}
		return nil, perr("handshake", err)
	}
	c.SetDeadline(time.Time{})
	if r.cfg.Encrypt {
		return newSecureConn(c, keys, true)
	}
	return c, nil
}

// accept waits for the ranks in from (the previous rank, or every other
// rank of a mesh) and returns their connections by rank. Every incoming
// connection is handshaken in its own goroutine within HandshakeTimeout,
// so connections that fail or stall are dropped without delaying the real
// peers; for each rank the first to authenticate as it wins, until
// ConnectTimeout.
func (r *Ring) accept(parent context.Context, lis net.Listener, from []int) (map[int]net.Conn, error) {
	deadline := time.Now().Add(r.cfg.ConnectTimeout)
	ctx, cancel := context.WithDeadline(parent, deadline)
	defer cancel()
	type deadliner interface{ SetDeadline(time.Time) error }
	dl, _ := lis.(deadliner)
	if dl != nil {
		dl.SetDeadline(deadline)
	}
	lisStopped := make(chan struct{})
	stopLis := context.AfterFunc(ctx, func() {
		defer close(lisStopped)
		if dl != nil {
			dl.SetDeadline(time.Unix(1, 0))
		}
	})

	type shake struct {
		c       net.Conn
		claimed int
		err     error
	}
	shakes := make(chan shake)
	acceptDone := make(chan error, 1)
	var handshakes sync.WaitGroup
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				acceptDone <- err
				return
			}
			handshakes.Add(1)
			go func() {
				defer handshakes.Done()
				c.SetDeadline(minTime(deadline, time.Now().Add(r.cfg.HandshakeTimeout)))
				stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
				keys, claimed, err := serverHandshake(c, r.cfg, r.rank, from)
				if !stop() && err == nil {
					err = ctx.Err() // every peer arrived, or time ran out: the deadline is spoiled
				}
				if err == nil {
					c.SetDeadline(time.Time{})
					if r.cfg.Encrypt {
						var sc net.Conn
						if sc, err = newSecureConn(c, keys, false); err == nil {
							c = sc
						}
					}
				}
				select {
				case shakes <- shake{c, claimed, err}:
				case <-ctx.Done():
					c.Close()
				}
			}()
		}
	}()

	won := make(map[int]net.Conn, len(from))
	var (
		rejected []error
		failure  error
	)
	// missing names the first rank of from that has not arrived, with the
	// others in the message.
	fail := func(err error) error {
		var absent []int
		for _, p := range from {
			if won[p] == nil {
				absent = append(absent, p)
			}
		}
		if len(absent) > 1 {
			err = fmt.Errorf("%w (ranks %v all missing)", err, absent)
		}
		return &PeerError{Rank: absent[0], Addr: r.cfg.Peers[absent[0]], Op: "accept", Err: errors.Join(append([]error{err}, rejected...)...)}
	}
	expected := func(rank int) bool { return slices.Contains(from, rank) }
	acceptOpen := true
wait:
	for len(won) < len(from) {
		select {
		case sh := <-shakes:
			if sh.err == nil {
				if won[sh.claimed] == nil {
					won[sh.claimed] = sh.c
					continue
				}
				sh.err = fmt.Errorf("rank %d is already connected", sh.claimed)
			}
			rej := fmt.Errorf("rejected connection from %s: %w", sh.c.RemoteAddr(), sh.err)
			sh.c.Close()
			var ce *claimError
			if errors.As(sh.err, &ce) && expected(ce.rank) && won[ce.rank] == nil && sameHost(sh.c.RemoteAddr(), r.cfg.Peers[ce.rank]) {
				// A peer we wait for (its rank, from its host) presented a
				// wrong secret or round: fail now rather than wait for a
				// connection that will never come.
				failure = &PeerError{Rank: ce.rank, Addr: r.cfg.Peers[ce.rank], Op: "accept", Err: rej}
				break wait
			}
			rejected = append(rejected, rej)
		case err := <-acceptDone:
			acceptOpen = false
			switch {
			case parent.Err() != nil:
				failure = fail(parent.Err())
			case errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil:
				failure = fail(fmt.Errorf("no authenticated connection within %v", r.cfg.ConnectTimeout))
			default:
				failure = fail(err)
			}
			break wait
		}
	}
	// Stop accepting and drop the handshakes still running; the listener
	// is left without a deadline for the next ring.
	cancel()
	if acceptOpen {
		<-acceptDone
	}
	handshakes.Wait()
	if !stopLis() {
		<-lisStopped // cancel() ran it: let it finish before the reset
	}
	if dl != nil {
		dl.SetDeadline(time.Time{})
	}
	if failure != nil {
		for _, c := range won {
			c.Close()
		}
		return nil, failure
	}
	return won, nil
}

// hungUp reports whether err is a peer closing or resetting its end.
func hungUp(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// sameHost reports whether a connection's remote address is on the host of
// the configured peer address.
func sameHost(remote net.Addr, peer string) bool {
	ta, ok := remote.(*net.TCPAddr)
	if !ok {
		return false
	}
	ap, err := netip.ParseAddrPort(peer)
	if err != nil {
		return false
	}
	ra, ok := netip.AddrFromSlice(ta.IP)
	return ok && ra.Unmap() == ap.Addr().Unmap()
}
