package modelio

import (
	"fmt"
	"math"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// CheckBlobFinite returns an error naming the first NaN or infinite value
// stored in p (data, double_data, diff or double_diff), or nil.
func CheckBlobFinite(p *caffepb.BlobProto) error {
	check := func(field string, n int, at func(int) float64) error {
		for i := 0; i < n; i++ {
			if v := at(i); math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("%s[%d] = %v: not a finite number", field, i, v)
			}
		}
		return nil
	}
	for _, c := range []struct {
		field string
		n     int
		at    func(int) float64
	}{
		{"data", len(p.Data), func(i int) float64 { return float64(p.Data[i]) }},
		{"double_data", len(p.DoubleData), func(i int) float64 { return p.DoubleData[i] }},
		{"diff", len(p.Diff), func(i int) float64 { return float64(p.Diff[i]) }},
		{"double_diff", len(p.DoubleDiff), func(i int) float64 { return p.DoubleDiff[i] }},
	} {
		if err := check(c.field, c.n, c.at); err != nil {
			return err
		}
	}
	return nil
}

// CheckNetFinite returns an error naming the first layer blob of a model
// that holds a NaN or infinite value ("layer \"conv1\" blob 0: data[17] = NaN ..."), or nil.
func CheckNetFinite(net *caffepb.NetParameter) error {
	for _, l := range net.GetLayer() {
		for i, b := range l.GetBlobs() {
			if err := CheckBlobFinite(b); err != nil {
				return fmt.Errorf("layer %q blob %d: %w", l.GetName(), i, err)
			}
		}
	}
	for _, l := range net.GetLayers() {
		for i, b := range l.GetBlobs() {
			if err := CheckBlobFinite(b); err != nil {
				return fmt.Errorf("layer %q blob %d: %w", l.GetName(), i, err)
			}
		}
	}
	return nil
}
