package data

import (
	"context"
	"io"
	"sync"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// Prefetch wraps a source so that the next batch is read while the net
// computes on the current one, as Caffe's BasePrefetchingDataLayer does. On
// the first Next it reads synchronously and learns the top shapes; then a
// goroutine fills a second set of blobs, which Next copies into the tops.
// The goroutine stops when ctx is done. src must not be used elsewhere.
type Prefetch[T blob.Float] struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	src    layer.BatchSource[T]
	ready  chan prefetched[T]
	free   chan []*blob.Blob[T]
	direct bool // the tops were reshaped: read without prefetching
}

type prefetched[T blob.Float] struct {
	tops []*blob.Blob[T]
	err  error
}

// NewPrefetch returns src with one batch read ahead.
func NewPrefetch[T blob.Float](ctx context.Context, src layer.BatchSource[T]) *Prefetch[T] {
	ctx, cancel := context.WithCancel(ctx)
	return &Prefetch[T]{ctx: ctx, cancel: cancel, src: src}
}

// Close stops reading ahead, waits for the batch being read, and closes the
// source when it has a Close method.
func (p *Prefetch[T]) Close() error {
	p.cancel()
	p.wg.Wait()
	if c, ok := p.src.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Next fills top with the next batch.
func (p *Prefetch[T]) Next(top []*blob.Blob[T]) error {
	if p.direct {
		return p.src.Next(top)
	}
	if p.ready == nil {
		if err := p.src.Next(top); err != nil {
			return err
		}
		bufs := make([]*blob.Blob[T], len(top))
		for i, t := range top {
			bufs[i] = blob.New[T](t.Shape()...)
		}
		p.ready, p.free = make(chan prefetched[T], 1), make(chan []*blob.Blob[T], 1)
		p.free <- bufs
		p.wg.Add(1)
		go p.run()
		return nil
	}
	var b prefetched[T]
	select {
	case b = <-p.ready:
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
	if b.err != nil {
		p.ready = make(chan prefetched[T]) // never ready again: the error repeats below
		go func() { p.ready <- b }()
		return b.err
	}
	for i, t := range top {
		if t.Count() != b.tops[i].Count() {
			// Reshaped tops: the goroutine now waits for buffers forever
			// (until ctx is done); read directly from here on.
			p.direct = true
			return p.src.Next(top)
		}
		copy(t.Data(), b.tops[i].Data())
	}
	p.free <- b.tops
	return nil
}

func (p *Prefetch[T]) run() {
	defer p.wg.Done()
	for {
		var bufs []*blob.Blob[T]
		select {
		case bufs = <-p.free:
		case <-p.ctx.Done():
			return
		}
		err := p.src.Next(bufs)
		select {
		case p.ready <- prefetched[T]{bufs, err}:
		case <-p.ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}
