// Package modelio reads and writes Caffe's binary model files:
// .caffemodel (a NetParameter with the layers' blobs), .solverstate (a
// SolverState) and .binaryproto (a BlobProto, e.g. a mean image), byte-
// compatible with BVLC Caffe.
//
// Reading maps the file into memory (read-only mmap on Unix; one read into a
// single buffer elsewhere) and decodes straight from the mapping, so a model
// costs its decoded size in heap, not the file size on top. Legacy
// .caffemodel files (V0/V1 `layers`) are upgraded as Caffe does when it loads
// them. Decoding errors are *DecodeError values naming the byte offset and
// the field path.
//
// Every write is atomic: the bytes go to a temporary file in the target's
// directory, which is fsynced, renamed over the target, and the directory
// fsynced, so a crash leaves either the old file or the new one.
//
// For loading weights into a running net, LayerBlobs indexes a model's
// blobs by layer name and CopyBlobs copies one layer's blobs into the net's
// blob.Blob values with Caffe's shape check (ShapeMismatchError,
// BlobCountError).
package modelio

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
)

// ReadCaffemodel reads a .caffemodel file and upgrades legacy layer forms
// (see prototxt.UpgradeNet), as Caffe's ReadNetParamsFromBinaryFile does.
func ReadCaffemodel(path string) (*caffepb.NetParameter, error) {
	net := &caffepb.NetParameter{}
	err := withFile(path, func(data []byte) error {
		return decodeNet(path, data, net)
	})
	if err != nil {
		return nil, err
	}
	return net, nil
}

// DecodeCaffemodel decodes .caffemodel bytes (see ReadCaffemodel); name
// labels errors. net does not alias data.
func DecodeCaffemodel(name string, data []byte) (*caffepb.NetParameter, error) {
	net := &caffepb.NetParameter{}
	if err := decodeNet(name, data, net); err != nil {
		return nil, err
	}
	return net, nil
}

func decodeNet(name string, data []byte, net *caffepb.NetParameter) error {
	if len(data) == 0 {
		return fmt.Errorf("caffemodel %s: file is empty", name)
	}
	if err := decode(name, data, net); err != nil {
		if looksLikeText(data) {
			return fmt.Errorf("%w (the file looks like a text prototxt, not a binary .caffemodel)", err)
		}
		return err
	}
	if _, err := prototxt.UpgradeNet(net); err != nil {
		return fmt.Errorf("caffemodel %s: %w", name, err)
	}
	return nil
}

// WriteCaffemodel writes net to path atomically in Caffe's binary format.
func WriteCaffemodel(path string, net *caffepb.NetParameter) error {
	return WriteProto(path, net)
}

// ReadSolverState reads a .solverstate file.
func ReadSolverState(path string) (*caffepb.SolverState, error) {
	st := &caffepb.SolverState{}
	if err := ReadProto(path, st); err != nil {
		return nil, err
	}
	return st, nil
}

// WriteSolverState writes st to path atomically in Caffe's binary format.
func WriteSolverState(path string, st *caffepb.SolverState) error {
	return WriteProto(path, st)
}

// ReadBlobProto reads a .binaryproto file holding one BlobProto (Caffe's
// mean images).
func ReadBlobProto(path string) (*caffepb.BlobProto, error) {
	b := &caffepb.BlobProto{}
	if err := ReadProto(path, b); err != nil {
		return nil, err
	}
	return b, nil
}

// ReadProto reads any binary protobuf file into m (decoded from a read-only
// mapping of the file).
func ReadProto(path string, m proto.Message) error {
	return withFile(path, func(data []byte) error { return decode(path, data, m) })
}

// WriteProto marshals m and writes it to path atomically. The bytes equal
// what Caffe's C++ SerializeToOstream writes for the same message (fields
// in field-number order, repeated numbers packed where the schema says so).
func WriteProto(path string, m proto.Message) error {
	data, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return WriteFileAtomic(path, data, 0o644)
}

func decode(name string, data []byte, m proto.Message) error {
	if err := proto.Unmarshal(data, m); err != nil {
		return locateError(name, data, m, err)
	}
	return nil
}

// looksLikeText reports whether data starts like a prototxt file.
func looksLikeText(data []byte) bool {
	head := data[:min(len(data), 256)]
	for _, c := range head {
		if c != '\n' && c != '\r' && c != '\t' && (c < 0x20 || c > 0x7e) {
			return false
		}
	}
	t := bytes.TrimSpace(head)
	return len(t) > 0 && (t[0] == '#' || bytes.HasPrefix(t, []byte("name")) || bytes.HasPrefix(t, []byte("layer")) || bytes.HasPrefix(t, []byte("input")))
}
