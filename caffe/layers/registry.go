// Package layers implements Caffe's standard layers, one file per type.
package layers

import "github.com/gocaffe/gocaffe/caffe/layer"

// Standard returns a registry with every layer type GoCaffe implements.
func Standard() (*layer.Registry, error) {
	r := layer.NewRegistry()
	for _, register := range []func(*layer.Registry) error{
		registerVision, // convolution, pooling, inner product, LRN (registry_vision.go)
		registerCommon, // activations, losses, data and utility layers (registry_common.go)
	} {
		if err := register(r); err != nil {
			return nil, err
		}
	}
	if err := r.SetPortable(portable...); err != nil {
		return nil, err
	}
	return r, nil
}
