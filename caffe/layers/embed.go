package layers

import (
	"fmt"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/filler"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// embed looks up rows of a learned (input_dim, num_output) table for
// integer indices in its bottom, adding an optional bias; the top has the
// bottom's shape plus a num_output axis. Indices take no gradient.
type embed[T blob.Float] struct {
	counts
	paramProp
	ctx      layer.Context
	numOut   int
	inputDim int
	w, b     *blob.Blob[T]
}

func newEmbed[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetEmbedParam()
	l := &embed[T]{counts: counts{1, 1, 1, 1}, ctx: ctx, numOut: int(p.GetNumOutput()), inputDim: int(p.GetInputDim())}
	if l.numOut <= 0 {
		return nil, fmt.Errorf("embed_param num_output must be positive, got %d", l.numOut)
	}
	if l.inputDim <= 0 {
		return nil, fmt.Errorf("embed_param input_dim must be positive, got %d", l.inputDim)
	}
	return l, nil
}

// AllowForceBackward refuses gradients to the indices.
func (l *embed[T]) AllowForceBackward(int) bool { return false }

func (l *embed[T]) Setup(bottom, top []*blob.Blob[T]) error {
	if err := l.check(len(bottom), len(top)); err != nil {
		return err
	}
	p := l.ctx.Param.GetEmbedParam()
	l.w = blob.New[T](l.inputDim, l.numOut)
	if err := filler.Fill(p.GetWeightFiller(), l.ctx.Rand, l.w); err != nil {
		return fmt.Errorf("weight filler: %w", err)
	}
	if p.GetBiasTerm() {
		l.b = blob.New[T](l.numOut)
		if err := filler.Fill(p.GetBiasFiller(), l.ctx.Rand, l.b); err != nil {
			return fmt.Errorf("bias filler: %w", err)
		}
	}
	return nil
}

func (l *embed[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	shape := append(append([]int{}, bottom[0].Shape()...), l.numOut)
	top[0].Reshape(shape...)
	return nil
}

func (l *embed[T]) Blobs() []*blob.Blob[T] {
	if l.b == nil {
		return []*blob.Blob[T]{l.w}
	}
	return []*blob.Blob[T]{l.w, l.b}
}

func (l *embed[T]) index(v T, pos int) (int, error) {
	i := int(v)
	if T(i) != v || i < 0 || i >= l.inputDim {
		return 0, fmt.Errorf("embed index %v at position %d is not an integer in [0, %d)", float64(v), pos, l.inputDim)
	}
	return i, nil
}

func (l *embed[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y, w := bottom[0].HostData(), top[0].Data(), l.w.Data()
	k := l.numOut
	for n, v := range x {
		i, err := l.index(v, n)
		if err != nil {
			return err
		}
		row := y[n*k : (n+1)*k]
		copy(row, w[i*k:(i+1)*k])
		if l.b != nil {
			for j, b := range l.b.Data() {
				row[j] += b
			}
		}
	}
	return nil
}

func (l *embed[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if propagateDown[0] {
		return fmt.Errorf("Embed cannot backpropagate to its input indices")
	}
	x, dy, dw := bottom[0].HostData(), top[0].HostDiff(), l.w.Diff()
	k := l.numOut
	for n, v := range x {
		if !l.wants(0) {
			break
		}
		i, err := l.index(v, n)
		if err != nil {
			return err
		}
		row := dw[i*k : (i+1)*k]
		for j, g := range dy[n*k : (n+1)*k] {
			row[j] += g
		}
	}
	if l.b != nil && l.wants(1) {
		db := l.b.Diff()
		for n := range x {
			for j, g := range dy[n*k : (n+1)*k] {
				db[j] += g
			}
		}
	}
	return nil
}
