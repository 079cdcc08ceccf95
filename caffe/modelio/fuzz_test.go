package modelio

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// FuzzReadCaffemodel feeds arbitrary bytes to the .caffemodel decoder. Bad
// input must give an error, never a panic; input that decodes must encode
// to bytes that decode to the same net, and every stored blob must either
// convert to a blob.Blob or give an error.
//
// Seeds: the corpus in testdata/fuzz/FuzzReadCaffemodel (small current,
// V1 and V0 models, a truncated one) and one model built here.
func FuzzReadCaffemodel(f *testing.F) {
	small, err := proto.Marshal(tinyNet())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(small)
	f.Fuzz(func(t *testing.T, data []byte) {
		net, err := DecodeCaffemodel("fuzz.caffemodel", data)
		if err != nil {
			// Either a wire-format error with its location, or a message
			// naming the input (empty file, failed legacy upgrade).
			var de *DecodeError
			if !errors.As(err, &de) && !strings.HasPrefix(err.Error(), "caffemodel fuzz.caffemodel: ") {
				t.Fatalf("unexpected error form: %v", err)
			}
			return
		}
		enc, err := proto.Marshal(net)
		if err != nil {
			t.Fatalf("decoded net does not encode: %v", err)
		}
		back, err := DecodeCaffemodel("again", enc)
		if err != nil && len(enc) > 0 {
			t.Fatalf("encoded net does not decode: %v", err)
		}
		if err == nil {
			enc2, _ := proto.Marshal(back)
			if !bytes.Equal(enc, enc2) {
				t.Fatalf("decode → encode → decode changed the net")
			}
		}
		for _, blobs := range LayerBlobs(net) {
			for _, p := range blobs {
				if b, err := BlobFromProto[float32](p, true); err == nil && b.Count() != valueCount(p) {
					t.Fatalf("blob of %d values from a proto with %d", b.Count(), valueCount(p))
				}
			}
		}
	})
}
