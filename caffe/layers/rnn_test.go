package layers

import (
	"math"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer/layertest"
)

// rnnRef is a plain per-element RNN, the reference for Forward.
func rnnRef(x, cont []float64, steps, num, xd, hd int, wx, bh, whh, who, bo, h0 []float64) (os, hs []float64) {
	hs, os = make([]float64, steps*num*hd), make([]float64, steps*num*hd)
	for t := 0; t < steps; t++ {
		for n := 0; n < num; n++ {
			for d := 0; d < hd; d++ {
				v := bh[d]
				for k := 0; k < xd; k++ {
					v += wx[d*xd+k] * x[(t*num+n)*xd+k]
				}
				for k := 0; k < hd; k++ {
					hp := h0[n*hd+k]
					if t > 0 {
						hp = hs[((t-1)*num+n)*hd+k]
					}
					v += whh[d*hd+k] * cont[t*num+n] * hp
				}
				hs[(t*num+n)*hd+d] = math.Tanh(v)
			}
			for d := 0; d < hd; d++ {
				v := bo[d]
				for k := 0; k < hd; k++ {
					v += who[d*hd+k] * hs[(t*num+n)*hd+k]
				}
				os[(t*num+n)*hd+d] = math.Tanh(v)
			}
		}
	}
	return os, hs
}

const rnnText = `type: "RNN" recurrent_param { num_output: 3
  weight_filler { type: "uniform" min: -0.5 max: 0.5 } bias_filler { type: "uniform" min: -0.5 max: 0.5 } }`

func TestRNNForward(t *testing.T) {
	in := lstmInputs(1, 4, 2, 0)
	l, top := forward(t, rnnText, in, 1)
	b := l.Blobs()
	if len(b) != 5 || !blob.ShapeEquals(b[0].Shape(), []int{3, 2}) || !blob.ShapeEquals(b[2].Shape(), []int{3, 3}) {
		t.Fatalf("RNN blobs: want W_xh (3 2), b_h, W_hh (3 3), W_ho, b_o")
	}
	zero := make([]float64, 2*3)
	want, hs := rnnRef(in[0].Data(), in[1].Data(), 4, 2, 2, 3, b[0].Data(), b[1].Data(), b[2].Data(), b[3].Data(), b[4].Data(), zero)
	layertest.Near(t, "rnn o", top[0].Data(), want, 1e-12)
	in2 := lstmInputs(2, 4, 2, 1)
	if err := l.Forward(in2, top); err != nil {
		t.Fatal(err)
	}
	want2, _ := rnnRef(in2[0].Data(), in2[1].Data(), 4, 2, 2, 3, b[0].Data(), b[1].Data(), b[2].Data(), b[3].Data(), b[4].Data(), hs[3*2*3:])
	layertest.Near(t, "rnn carried state", top[0].Data(), want2, 1e-12)
}

func TestRNNGradient(t *testing.T) {
	gradCheck(t, layertest.Checker{Bottoms: []int{0}}, rnnText, lstmInputs(3, 3, 2, 0), 1)
	precision(t, layertest.Precision{PropagateDown: []bool{true, false}}, rnnText, lstmInputs(4, 3, 2, 0), 1)
	text := `type: "RNN" recurrent_param { num_output: 2 expose_hidden: true
	  weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "gaussian" std: 0.5 } }`
	mk := func(s uint64) []*blob.Blob[float64] {
		return append(lstmInputs(s, 3, 2, 1), gauss(s+1, 2, 3), gauss(s+2, 1, 2, 2))
	}
	gradCheck(t, layertest.Checker{Bottoms: []int{0, 2, 3}}, text, mk(5), 2)
	precision(t, layertest.Precision{PropagateDown: []bool{true, false, true, true}}, text, mk(6), 2)
	l, top := forward(t, text, mk(7), 2)
	if len(l.Blobs()) != 6 || !blob.ShapeEquals(l.Blobs()[2].Shape(), []int{2, 3}) {
		t.Errorf("static RNN blobs: want W_xh, b_h, W_xh_static (2 3), W_hh, W_ho, b_o")
	}
	wantErr(t, "rnn cont grad", l.Backward(top, []bool{true, true, false, false}, mk(7)), "continuation")
	wantErr(t, "rnn h_0 shape", setupErr(t, text, append(lstmInputs(1, 3, 2, 0), gauss(1, 1, 3, 2)), 2), "h_0")
}
