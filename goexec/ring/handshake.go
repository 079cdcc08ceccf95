package ring

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
)

// The handshake, per connection (the dialer is the "client", the sender on
// the connection, and the listener the "server", its receiver: rank r and
// r+1 in the ring, any two ranks in a mesh):
//
//	server → client: magic[8] nonceS[32]
//	client → server: rank u32, size u32, nonceC[32], HMAC(secret, "client", session, nonceS, nonceC, rank, size)
//	server → client: status u8 (0 ok, 1 bad proof, 2 wrong rank or size), [HMAC(secret, "server", session, nonceC, nonceS, serverRank, size)]
//
// Both sides prove knowledge of the secret over nonces the other chose, so
// neither a replayed handshake nor a peer without the secret gets through.
// The session mixed into the proofs carries the encryption setting, so two
// ranks that disagree on it fail here. With encryption, both directions'
// keys are derived from the secret, the session and both nonces (see
// sessionKeys).

var magic = [8]byte{'G', 'C', 'R', 'I', 'N', 'G', 0, 1}

const (
	nonceLen = 32
	macLen   = sha256.Size

	statusOK       = 0
	statusBadProof = 1
	statusBadRank  = 2
)

// claimError is a server-side rejection of a client that claimed a rank.
type claimError struct {
	rank int
	err  error
}

func (e *claimError) Error() string { return fmt.Sprintf("claims rank %d: %v", e.rank, e.err) }
func (e *claimError) Unwrap() error { return e.err }

func proof(secret []byte, role, session string, a, b []byte, rank, size uint32) []byte {
	m := hmac.New(sha256.New, secret)
	var hdr [8]byte
	for _, s := range []string{role, session} {
		binary.BigEndian.PutUint32(hdr[:4], uint32(len(s)))
		m.Write(hdr[:4])
		m.Write([]byte(s))
	}
	m.Write(a)
	m.Write(b)
	binary.BigEndian.PutUint32(hdr[:4], rank)
	binary.BigEndian.PutUint32(hdr[4:], size)
	m.Write(hdr[:])
	return m.Sum(nil)
}

// proofSession is the session string the proofs cover.
func proofSession(cfg Config) string {
	if cfg.Encrypt {
		return cfg.Session + "\x00encrypted"
	}
	return cfg.Session
}

func clientHandshake(c net.Conn, cfg Config, rank, serverRank int) (*sessionKeys, error) {
	session := proofSession(cfg)
	var hello [8 + nonceLen]byte
	if _, err := io.ReadFull(c, hello[:]); err != nil {
		return nil, fmt.Errorf("reading hello: %w", err)
	}
	if [8]byte(hello[:8]) != magic {
		return nil, fmt.Errorf("not a GoCaffe ring endpoint (bad magic %x)", hello[:8])
	}
	nonceS := hello[8:]
	size := uint32(len(cfg.Peers))
	msg := make([]byte, 8+nonceLen, 8+nonceLen+macLen)
	binary.BigEndian.PutUint32(msg[0:], uint32(rank))
	binary.BigEndian.PutUint32(msg[4:], size)
	nonceC := msg[8 : 8+nonceLen]
	if _, err := rand.Read(nonceC); err != nil {
		return nil, err
	}
	msg = append(msg, proof(cfg.Secret, "client", session, nonceS, nonceC, uint32(rank), size)...)
	if _, err := c.Write(msg); err != nil {
		return nil, fmt.Errorf("sending proof: %w", err)
	}
	var reply [1 + macLen]byte
	if _, err := io.ReadFull(c, reply[:1]); err != nil {
		return nil, fmt.Errorf("reading verdict: %w", err)
	}
	switch reply[0] {
	case statusOK:
	case statusBadProof:
		return nil, fmt.Errorf("%w: the peer rejected our proof (different secret, round or encryption setting)", ErrAuth)
	case statusBadRank:
		return nil, fmt.Errorf("%w: the peer expected another rank or world size (we are rank %d of %d)", ErrAuth, rank, size)
	default:
		return nil, fmt.Errorf("%w: unknown verdict %d", ErrAuth, reply[0])
	}
	if _, err := io.ReadFull(c, reply[1:]); err != nil {
		return nil, fmt.Errorf("reading peer proof: %w", err)
	}
	want := proof(cfg.Secret, "server", session, nonceC, nonceS, uint32(serverRank), size)
	if !hmac.Equal(reply[1:], want) {
		return nil, fmt.Errorf("%w: the peer's proof is wrong (different secret, round or encryption setting)", ErrAuth)
	}
	return deriveKeys(cfg.Secret, session, nonceS, nonceC)
}

// serverHandshake authenticates a client that must claim one of the ranks
// in from, and returns the rank it claimed.
func serverHandshake(c net.Conn, cfg Config, rank int, from []int) (*sessionKeys, int, error) {
	session := proofSession(cfg)
	var hello [8 + nonceLen]byte
	copy(hello[:8], magic[:])
	nonceS := hello[8:]
	if _, err := rand.Read(nonceS); err != nil {
		return nil, 0, err
	}
	if _, err := c.Write(hello[:]); err != nil {
		return nil, 0, fmt.Errorf("sending hello: %w", err)
	}
	var msg [8 + nonceLen + macLen]byte
	if _, err := io.ReadFull(c, msg[:]); err != nil {
		return nil, 0, fmt.Errorf("reading proof: %w", err)
	}
	claimed := binary.BigEndian.Uint32(msg[0:])
	size := binary.BigEndian.Uint32(msg[4:])
	nonceC := msg[8 : 8+nonceLen]
	got := msg[8+nonceLen:]
	want := proof(cfg.Secret, "client", session, nonceS, nonceC, claimed, size)
	if !hmac.Equal(got, want) {
		c.Write([]byte{statusBadProof})
		return nil, 0, &claimError{rank: int(claimed), err: fmt.Errorf("%w: wrong proof (different secret, round or encryption setting)", ErrAuth)}
	}
	if !slices.Contains(from, int(claimed)) || int(size) != len(cfg.Peers) {
		c.Write([]byte{statusBadRank})
		want := fmt.Sprintf("rank %d", from[0])
		if len(from) > 1 {
			want = fmt.Sprintf("one of ranks %v", from)
		}
		return nil, 0, fmt.Errorf("%w: peer is rank %d of %d, expected %s of %d", ErrAuth, claimed, size, want, len(cfg.Peers))
	}
	reply := append([]byte{statusOK}, proof(cfg.Secret, "server", session, nonceC, nonceS, uint32(rank), size)...)
	if _, err := c.Write(reply); err != nil {
		return nil, 0, fmt.Errorf("sending proof: %w", err)
	}
	keys, err := deriveKeys(cfg.Secret, session, nonceS, nonceC)
	return keys, int(claimed), err
}

var errShort = errors.New("short frame")
