package layers

import (
	"math"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer/layertest"
)

// lstmRef is a plain per-element LSTM for one sequence batch, the
// reference for Forward: gates in order input, forget, output, cell.
func lstmRef(x, cont []float64, steps, num, xd, hd int, wx, b, wh, h0, c0 []float64) (hs, cs []float64) {
	hs, cs = make([]float64, steps*num*hd), make([]float64, steps*num*hd)
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	for t := 0; t < steps; t++ {
		for n := 0; n < num; n++ {
			c := cont[t*num+n]
			for d := 0; d < hd; d++ {
				var pre [4]float64
				for g := 0; g < 4; g++ {
					row := g*hd + d
					v := b[row]
					for k := 0; k < xd; k++ {
						v += wx[row*xd+k] * x[(t*num+n)*xd+k]
					}
					for k := 0; k < hd; k++ {
						hp := h0[n*hd+k]
						if t > 0 {
							hp = hs[((t-1)*num+n)*hd+k]
						}
						v += wh[row*hd+k] * c * hp
					}
					pre[g] = v
				}
				cp := c0[n*hd+d]
				if t > 0 {
					cp = cs[((t-1)*num+n)*hd+d]
				}
				cell := c*sig(pre[1])*cp + sig(pre[0])*math.Tanh(pre[3])
				cs[(t*num+n)*hd+d] = cell
				hs[(t*num+n)*hd+d] = sig(pre[2]) * math.Tanh(cell)
			}
		}
	}
	return hs, cs
}

const lstmText = `type: "LSTM" recurrent_param { num_output: 3
  weight_filler { type: "uniform" min: -0.5 max: 0.5 } bias_filler { type: "uniform" min: -0.5 max: 0.5 } }`

func lstmInputs(seed uint64, steps, num int, firstCont float64) []*blob.Blob[float64] {
	x := gauss(seed, steps, num, 2)
	cont := blob.New[float64](steps, num)
	for i := range cont.Data() {
		cont.Data()[i] = 1
	}
	for n := 0; n < num; n++ {
		cont.Data()[n] = firstCont
	}
	if num > 1 {
		cont.Data()[(steps-1)*num+1] = 0 // a sequence restarting mid-batch
	}
	return bl(x, cont)
}

func TestLSTMForward(t *testing.T) {
	in := lstmInputs(1, 4, 2, 0)
	l, top := forward(t, lstmText, in, 1)
	bs := l.Blobs()
	if len(bs) != 3 || !blob.ShapeEquals(bs[0].Shape(), []int{12, 2}) || !blob.ShapeEquals(bs[1].Shape(), []int{12}) || !blob.ShapeEquals(bs[2].Shape(), []int{12, 3}) {
		t.Fatalf("LSTM blobs: want W_xc (12 2), b_c (12), W_hc (12 3)")
	}
	zero := make([]float64, 2*3)
	want, _ := lstmRef(in[0].Data(), in[1].Data(), 4, 2, 2, 3, bs[0].Data(), bs[1].Data(), bs[2].Data(), zero, zero)
	layertest.Near(t, "lstm h", top[0].Data(), want, 1e-12)

	// The final state carries into the next Forward when cont is 1 at t=0.
	hT := append([]float64(nil), top[0].Data()[3*2*3:]...)
	_, cs := lstmRef(in[0].Data(), in[1].Data(), 4, 2, 2, 3, bs[0].Data(), bs[1].Data(), bs[2].Data(), zero, zero)
	cT := cs[3*2*3:]
	in2 := lstmInputs(2, 4, 2, 1)
	if err := l.Forward(in2, top); err != nil {
		t.Fatal(err)
	}
	want2, _ := lstmRef(in2[0].Data(), in2[1].Data(), 4, 2, 2, 3, bs[0].Data(), bs[1].Data(), bs[2].Data(), hT, cT)
	layertest.Near(t, "lstm carried state", top[0].Data(), want2, 1e-12)
}

func TestLSTMGradient(t *testing.T) {
	gradCheck(t, layertest.Checker{Bottoms: []int{0}}, lstmText, lstmInputs(3, 3, 2, 0), 1)
	precision(t, layertest.Precision{PropagateDown: []bool{true, false}}, lstmText, lstmInputs(4, 3, 2, 0), 1)

	// expose_hidden with a static input: every bottom but cont is checked.
	text := `type: "LSTM" recurrent_param { num_output: 2 expose_hidden: true
	  weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "gaussian" std: 0.5 } }`
	mk := func(s uint64) []*blob.Blob[float64] {
		b := lstmInputs(s, 3, 2, 1)
		return append(b, gauss(s+1, 2, 3), gauss(s+2, 1, 2, 2), gauss(s+3, 1, 2, 2))
	}
	gradCheck(t, layertest.Checker{Bottoms: []int{0, 2, 3, 4}}, text, mk(5), 3)
	precision(t, layertest.Precision{PropagateDown: []bool{true, false, true, true, true}}, text, mk(6), 3)
	l, top := forward(t, text, mk(7), 3)
	if len(l.Blobs()) != 4 || !blob.ShapeEquals(l.Blobs()[2].Shape(), []int{8, 3}) {
		t.Errorf("static LSTM blobs: want W_xc, b_c, W_xc_static (8 3), W_hc")
	}
	layertest.Near(t, "h_T", top[1].Data(), top[0].Data()[2*2*2:], 0)
	wantErr(t, "lstm cont grad", l.Backward(top, []bool{true, true, false, false, false}, mk(7)), "continuation")
	wantErr(t, "lstm cont shape", setupErr(t, lstmText, bl(gauss(1, 3, 2, 2), gauss(2, 3, 3)), 1), "cont")
	wantErr(t, "lstm expose counts", setupErr(t, text, lstmInputs(1, 3, 2, 0), 1), "h_0, c_0")
	_, err := tryBuild[float32](t, `type: "LSTM"`)
	wantErr(t, "lstm num_output", err, "num_output")
}
