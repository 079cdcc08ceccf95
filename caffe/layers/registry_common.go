package layers

import "github.com/gocaffe/gocaffe/caffe/layer"

// registerCommon adds the activations, losses, data and utility layers: one r.Register line each.
func registerCommon(r *layer.Registry) error {
	for _, err := range []error{
		// r.Register("ReLU", newReLU[float32], newReLU[float64]),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}
