package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// tile repeats its bottom tile_param.tiles times along tile_param.axis.
type tile[T blob.Float] struct {
	counts
	noBlobs[T]
	axisP        int
	tiles        int
	outer, inner int // inner: count from the axis on
}

func newTile[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetTileParam()
	if p == nil || p.Tiles == nil {
		return nil, fmt.Errorf("tile_param tiles is required")
	}
	if p.GetTiles() < 1 {
		return nil, fmt.Errorf("tile_param tiles must be positive, got %d", p.GetTiles())
	}
	return &tile[T]{counts: counts{1, 1, 1, 1}, axisP: int(p.GetAxis()), tiles: int(p.GetTiles())}, nil
}

func (l *tile[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	if top[0] == bottom[0] {
		return errInPlace("Tile")
	}
	return nil
}

func (l *tile[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	axis, err := bottom[0].CanonicalAxis(l.axisP)
	if err != nil {
		return fmt.Errorf("tile axis: %w", err)
	}
	shape := append([]int{}, bottom[0].Shape()...)
	shape[axis] *= l.tiles
	top[0].Reshape(shape...)
	l.outer, l.inner = bottom[0].CountRange(0, axis), bottom[0].CountFrom(axis)
	return nil
}

func (l *tile[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y := bottom[0].HostData(), top[0].Data()
	n := l.inner
	d := 0
	for o := 0; o < l.outer; o++ {
		src := x[o*n : (o+1)*n]
		for t := 0; t < l.tiles; t++ {
			copy(y[d:d+n], src)
			d += n
		}
	}
	return nil
}

func (l *tile[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if !propagateDown[0] {
		return nil
	}
	dx, dy := bottom[0].Diff(), top[0].HostDiff()
	n := l.inner
	s := 0
	for o := 0; o < l.outer; o++ {
		dst := dx[o*n : (o+1)*n]
		copy(dst, dy[s:s+n])
		s += n
		for t := 1; t < l.tiles; t++ {
			for i, v := range dy[s : s+n] {
				dst[i] += v
			}
			s += n
		}
	}
	return nil
}
