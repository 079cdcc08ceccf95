package ring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// Encrypted traffic. After the handshake, each direction of a connection
// has its own AES-256-GCM key and 4-byte nonce prefix, derived with
// HKDF-SHA256 from the shared secret (input key), both handshake nonces
// (salt: fresh per connection, so keys never repeat across connections or
// rounds) and the direction and session (info). Each record is
//
//	length u32 (big-endian, of what follows) | AES-GCM(key, prefix ‖ counter u64, plaintext, aad = length)
//
// with the counter starting at 0 and rising by one per record, so a
// record dropped, replayed, reordered or altered fails to open.

const (
	keyLen       = 32 // AES-256
	prefixLen    = 4
	maxRecord    = 1 << 20 // plaintext bytes per record
	recordHeader = 4
)

// ErrTampered marks a record that failed authentication.
var ErrTampered = errors.New("encrypted ring record failed authentication (altered, replayed, or a different key)")

// sessionKeys holds the key material of one connection, per direction.
type sessionKeys struct {
	clientToServer, serverToClient []byte // key ‖ nonce prefix
}

// deriveKeys derives both directions' keys from the secret, the session and
// the handshake's nonces.
func deriveKeys(secret []byte, session string, nonceS, nonceC []byte) (*sessionKeys, error) {
	salt := append(append([]byte{}, nonceS...), nonceC...)
	k := &sessionKeys{}
	for _, d := range []struct {
		dst  *[]byte
		info string
	}{{&k.clientToServer, "gocaffe ring v1 client->server\x00"}, {&k.serverToClient, "gocaffe ring v1 server->client\x00"}} {
		b, err := hkdf.Key(sha256.New, secret, salt, d.info+session, keyLen+prefixLen)
		if err != nil {
			return nil, fmt.Errorf("deriving ring keys: %w", err)
		}
		*d.dst = b
	}
	return k, nil
}

func newAEAD(material []byte) (cipher.AEAD, [prefixLen]byte, error) {
	var prefix [prefixLen]byte
	block, err := aes.NewCipher(material[:keyLen])
	if err != nil {
		return nil, prefix, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, prefix, err
	}
	copy(prefix[:], material[keyLen:])
	return aead, prefix, nil
}

// secureConn encrypts what is written to a connection and decrypts what is
// read from it. Like the ring's plain connections, it has one writer and
// one reader at a time.
type secureConn struct {
	net.Conn
	seal, open             cipher.AEAD
	sealPrefix, openPrefix [prefixLen]byte
	sealCount, openCount   uint64
	wbuf                   []byte // header and sealed record
	rbuf                   []byte // the last record, opened in place
	plain                  []byte // rbuf's plaintext not yet read
}

// newSecureConn wraps c; client says which side of the handshake this is.
func newSecureConn(c net.Conn, k *sessionKeys, client bool) (net.Conn, error) {
	out, in := k.serverToClient, k.clientToServer
	if client {
		out, in = k.clientToServer, k.serverToClient
	}
	sc := &secureConn{Conn: c}
	var err error
	if sc.seal, sc.sealPrefix, err = newAEAD(out); err != nil {
		return nil, err
	}
	if sc.open, sc.openPrefix, err = newAEAD(in); err != nil {
		return nil, err
	}
	return sc, nil
}

func nonce(prefix [prefixLen]byte, count uint64) []byte {
	var n [prefixLen + 8]byte
	copy(n[:], prefix[:])
	binary.BigEndian.PutUint64(n[prefixLen:], count)
	return n[:]
}

// Write seals p into records of at most maxRecord bytes and sends them.
func (c *secureConn) Write(p []byte) (int, error) {
	done := 0
	for len(p) > 0 {
		k := min(len(p), maxRecord)
		need := recordHeader + k + c.seal.Overhead()
		if cap(c.wbuf) < need {
			c.wbuf = make([]byte, need)
		}
		rec := c.wbuf[:need]
		binary.BigEndian.PutUint32(rec, uint32(need-recordHeader))
		c.seal.Seal(rec[recordHeader:recordHeader], nonce(c.sealPrefix, c.sealCount), p[:k], rec[:recordHeader])
		c.sealCount++
		if _, err := c.Conn.Write(rec); err != nil {
			return done, err
		}
		done += k
		p = p[k:]
	}
	return done, nil
}

// Read returns plaintext, reading and opening the next record when the last
// one is used up.
func (c *secureConn) Read(p []byte) (int, error) {
	if len(c.plain) == 0 {
		var hdr [recordHeader]byte
		if _, err := io.ReadFull(c.Conn, hdr[:]); err != nil {
			return 0, err
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if n < c.open.Overhead() || n > maxRecord+c.open.Overhead() {
			return 0, fmt.Errorf("%w: record of %d bytes", ErrTampered, n)
		}
		if cap(c.rbuf) < n {
			c.rbuf = make([]byte, n)
		}
		rec := c.rbuf[:n]
		if _, err := io.ReadFull(c.Conn, rec); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		plain, err := c.open.Open(rec[:0], nonce(c.openPrefix, c.openCount), rec, hdr[:])
		if err != nil {
			return 0, ErrTampered
		}
		c.openCount++
		c.plain = plain
	}
	k := copy(p, c.plain)
	c.plain = c.plain[k:]
	return k, nil
}
