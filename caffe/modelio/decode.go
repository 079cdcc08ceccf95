package modelio

import "github.com/gocaffe/gocaffe/caffe/caffepb"

// DecodeSolverState decodes a .solverstate's bytes; name is used in errors,
// which give the byte offset and field where the data breaks off.
func DecodeSolverState(name string, data []byte) (*caffepb.SolverState, error) {
	st := &caffepb.SolverState{}
	if err := decode(name, data, st); err != nil {
		return nil, err
	}
	return st, nil
}
