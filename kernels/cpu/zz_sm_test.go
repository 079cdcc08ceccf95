package cpu_test
import ("testing"; "github.com/gocaffe/gocaffe/kernels/cpu"; "math/rand"; "math")
var xs = func() []float64 { x := make([]float64, 640); for i := range x { x[i] = -math.Abs(rand.NormFloat64()*10) }; return x }()
var sink float64
func BenchmarkExpZZ(b *testing.B) { for b.Loop() { for _, v := range xs { sink += math.Exp(v) } } }
func BenchmarkSoftmaxZZ(b *testing.B) {
	x := make([]float32, 640); y := make([]float32, 640)
	for i := range x { x[i] = float32(rand.NormFloat64()*10) }
	for b.Loop() { cpu.SoftmaxForward(x, y, 64, 10, 1) }
}
