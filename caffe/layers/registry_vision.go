package layers

import "github.com/gocaffe/gocaffe/caffe/layer"

// registerVision adds the heavy spatial layers: one r.Register line each.
func registerVision(r *layer.Registry) error {
	for _, err := range []error{
		r.Register("Convolution", newConvolution[float32], newConvolution[float64]),
		r.Register("Deconvolution", newDeconvolution[float32], newDeconvolution[float64]),
		r.Register("Pooling", newPooling[float32], newPooling[float64]),
		r.Register("InnerProduct", newInnerProduct[float32], newInnerProduct[float64]),
		r.Register("LRN", newLRN[float32], newLRN[float64]),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}
