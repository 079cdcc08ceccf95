package layers

import (
	"fmt"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/layer/layertest"
)

func ipText(body string) string {
	return fmt.Sprintf(`type: "InnerProduct" inner_product_param { %s weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "gaussian" std: 0.5 } }`, body)
}

func TestInnerProductHandComputed(t *testing.T) {
	x := blobOf([]int{2, 3}, 1, 2, 3, 4, 5, 6)
	l, top := setup(t, `type: "InnerProduct" inner_product_param { num_output: 2 }`, bl(x), 1)
	copy(l.Blobs()[0].Data(), []float64{1, 0, -1, 0.5, 0.5, 0.5}) // W (2×3)
	copy(l.Blobs()[1].Data(), []float64{10, 20})
	if err := l.Forward(bl(x), top); err != nil {
		t.Fatal(err)
	}
	layertest.Near(t, "top", top[0].Data(), []float64{1 - 3 + 10, 3 + 20, 4 - 6 + 10, 7.5 + 20}, 1e-15)

	// transpose: W is (K×N) and top = x·W.
	l, top = setup(t, `type: "InnerProduct" inner_product_param { num_output: 2 transpose: true bias_term: false }`, bl(x), 1)
	if want := []int{3, 2}; !blob.ShapeEquals(l.Blobs()[0].Shape(), want) {
		t.Fatalf("transposed weight shape %v, want %v", l.Blobs()[0].Shape(), want)
	}
	copy(l.Blobs()[0].Data(), []float64{1, 0.5, 0, 0.5, -1, 0.5})
	if err := l.Forward(bl(x), top); err != nil {
		t.Fatal(err)
	}
	layertest.Near(t, "transposed top", top[0].Data(), []float64{-2, 3, -2, 7.5}, 1e-15)
}

func TestInnerProductShapes(t *testing.T) {
	x := gauss(1, 2, 3, 4, 5)
	_, top := setup(t, ipText("num_output: 7"), bl(x), 1)
	if want := []int{2, 7}; !blob.ShapeEquals(top[0].Shape(), want) {
		t.Errorf("axis 1: shape %v, want %v", top[0].Shape(), want)
	}
	_, top = setup(t, ipText("num_output: 7 axis: 2"), bl(x), 1)
	if want := []int{2, 3, 7}; !blob.ShapeEquals(top[0].Shape(), want) {
		t.Errorf("axis 2: shape %v, want %v", top[0].Shape(), want)
	}
	_, top = setup(t, ipText("num_output: 7 axis: -1"), bl(x), 1)
	if want := []int{2, 3, 4, 7}; !blob.ShapeEquals(top[0].Shape(), want) {
		t.Errorf("axis -1: shape %v, want %v", top[0].Shape(), want)
	}
	l, top := setup(t, ipText("num_output: 7"), bl(x), 1)
	wantErr(t, "changed K", l.Reshape(bl(gauss(2, 2, 3, 4, 4)), top), "weights expect 60")
	wantErr(t, "num_output 0", setupErr(t, `type: "InnerProduct" inner_product_param { num_output: 0 }`, bl(x), 1), "num_output")
	wantErr(t, "bad axis", setupErr(t, ipText("num_output: 2 axis: 4"), bl(x), 1), "axis")
}

var ipCases = []struct {
	body  string
	shape []int
}{
	{"num_output: 5", []int{3, 4}},
	{"num_output: 5 transpose: true", []int{3, 2, 2}},
	{"num_output: 3 bias_term: false", []int{2, 3, 2}},
	{"num_output: 4 axis: 2", []int{2, 3, 5}},
	{"num_output: 37 transpose: true axis: -1", []int{2, 3, 33}},
}

func TestInnerProductGradient(t *testing.T) {
	for i, c := range ipCases {
		gradCheck(t, layertest.Checker{Seed: uint64(i)}, ipText(c.body), bl(gauss(uint64(i), c.shape...)), 1)
	}
}

func TestInnerProductPrecision(t *testing.T) {
	for i, c := range ipCases {
		precision(t, layertest.Precision{Seed: uint64(i)}, ipText(c.body), bl(gauss(uint64(10+i), c.shape...)), 1)
	}
	// LeNet's ip1 at a small batch: the float32 GEMM runs full tiles.
	precision(t, layertest.Precision{Seed: 3}, `type: "InnerProduct" inner_product_param { num_output: 500
		weight_filler { type: "xavier" } bias_filler { type: "constant" value: 0.1 } }`, bl(gauss(7, 8, 50, 4, 4)), 1)
}
