package layers

import (
	"testing"

	"github.com/gocaffe/gocaffe/caffe/layer/layertest"
)

// BenchmarkElementwise times Forward+Backward of the elementwise layers on
// a CIFAR-10-quick conv1 output (batch 100, 32×32×32), in float32.
func BenchmarkElementwise(b *testing.B) {
	for _, text := range []string{`type: "ReLU"`, `type: "Sigmoid"`, `type: "TanH"`, `type: "ELU"`, `type: "Dropout"`,
		`type: "BatchNorm"`, `type: "Scale" scale_param { bias_term: true }`} {
		b.Run(text[7:len(text)-1], func(b *testing.B) {
			l := build[float32](b, text)
			x := layertest.Gaussian[float32](rnd(1), 0, 1, 100, 32, 32, 32)
			bottom := bl32(x)
			top := layertest.Tops[float32](1)
			if err := layertest.SetupReshape(l, bottom, top); err != nil {
				b.Fatal(err)
			}
			layertest.FillGaussian(top[0], rnd(2), 0, 1)
			copy(top[0].Diff(), top[0].Data())
			prop := []bool{true}
			b.SetBytes(int64(4 * x.Count()))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := l.Forward(bottom, top); err != nil {
					b.Fatal(err)
				}
				if err := l.Backward(top, prop, bottom); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
