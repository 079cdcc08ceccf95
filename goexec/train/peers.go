package train

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"

	"github.com/rs/zerolog"

	"github.com/gocaffe/gocaffe/goexec/ring"
)

// Peers are found once per application: a round with ring_generation > 0
// leaves its ring (the connections and the peer port) open, and the next
// round naming the same generation, rank, peers, secret and encryption
// reuses it without OpenPeerPort or a new handshake. Generation 0 keeps
// nothing: every round opens a port and builds its ring.

// roundRing is the ring a round trains on: a kept one, or the peer port and
// settings to build one from.
type roundRing struct {
	gen  int64
	cfg  ring.Config
	lis  net.Listener
	rg   *ring.Ring // set for a kept ring, or once joined
	kept bool       // rg was kept from an earlier round
}

func (k *roundRing) close() {
	if k.rg != nil {
		k.rg.Close()
	}
	if k.lis != nil {
		k.lis.Close()
	}
}

// same reports whether a kept ring serves the plan as it is.
func (k *roundRing) same(p *roundPlan) bool {
	return k.gen == p.ringGen && k.cfg.Rank == p.ringCfg.Rank && slices.Equal(k.cfg.Peers, p.ringCfg.Peers) &&
		bytes.Equal(k.cfg.Secret, p.ringCfg.Secret) && k.cfg.Encrypt == p.ringCfg.Encrypt
}

// ringFor returns the ring a round of allreduce on several ranks uses: the
// kept ring when the plan names it, else a ring to build on this goexec's
// peer port (the one OpenPeerPort opened last, or the kept ring's). A peer
// port whose address is not peers[rank] is RING_STALE.
func (s *Service) ringFor(p *roundPlan) (*roundRing, error) {
	old := s.ring
	s.ring = nil
	if old != nil && p.ringGen > 0 && old.same(p) {
		// The round's ring_timeout_ms may differ from the last round's.
		old.cfg.Timeout, old.cfg.ConnectTimeout = p.ringCfg.Timeout, p.ringCfg.ConnectTimeout
		old.rg.SetTimeouts(p.ringCfg.Timeout, p.ringCfg.ConnectTimeout)
		return old, nil
	}
	lis := s.takeListener()
	if old != nil {
		old.rg.Close()
		if lis == nil && p.ringGen > 0 {
			lis = old.lis // the address the driver found last; checked below
		} else {
			old.lis.Close()
		}
	}
	if lis == nil {
		return nil, ringStale("peers", "no peer port is open (call OpenPeerPort before TrainRound: every round with ring_generation 0, once per generation otherwise)")
	}
	if got, want := p.ringCfg.Peers[p.rank], lis.Addr().String(); got != want {
		lis.Close()
		return nil, ringStale(got, "peers[%d]: %q, but this goexec's peer port is %s (find the peers again)", p.rank, got, want)
	}
	return &roundRing{gen: p.ringGen, cfg: p.ringCfg, lis: lis}, nil
}

// joinRing connects a new ring, or checks that every peer of a kept one is
// still there (a barrier with the join timeout: ranks start rounds at
// different times) so that a peer lost between rounds fails the round now.
func (s *Service) joinRing(ctx context.Context, k *roundRing, log zerolog.Logger) (*ring.Ring, error) {
	if k.kept {
		if err := k.rg.Barrier(ctx, k.cfg.ConnectTimeout); err != nil {
			if ctx.Err() != nil {
				return nil, ctxStatus(ctx.Err(), "ring")
			}
			return nil, peerLost(noIter, fmt.Errorf("rank %d: kept ring of generation %d: %w", k.cfg.Rank, k.gen, err))
		}
		log.Info().Int64("generation", k.gen).Msg("ring kept")
		return k.rg, nil
	}
	rg, err := ring.Connect(ctx, k.lis, k.cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxStatus(ctx.Err(), "ring")
		}
		return nil, peerLost(noIter, fmt.Errorf("rank %d: %w", k.cfg.Rank, err))
	}
	k.rg = rg
	log.Info().Int64("generation", k.gen).Bool("encrypted", k.cfg.Encrypt).Msg("ring joined")
	return rg, nil
}

// endRing keeps a round's ring for the next round of its generation after
// a success, or closes it.
func (s *Service) endRing(k *roundRing, ok bool) {
	if ok && k.gen > 0 && k.rg != nil {
		k.kept = true
		s.ring = k
		return
	}
	k.close()
}
