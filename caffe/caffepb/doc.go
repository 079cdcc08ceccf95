// Package caffepb holds Caffe's model schema (caffe.proto) and the Go code
// that protoc-gen-go generates from it.
//
// The messages, field names and field numbers are BVLC Caffe's, plus the
// extensions of Yahoo's Caffe fork used by CaffeOnSpark, so binary
// (.caffemodel, .solverstate, .binaryproto) and text (.prototxt) files are
// interchangeable with Caffe's. caffe.pb.go is generated: edit caffe.proto,
// then run scripts/genproto.sh and commit both files.
package caffepb
