package network

import (
	"path/filepath"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
)

// BenchmarkNew measures building a net (shape inference only) for the
// large test nets: filtering, splits, wiring, layer setup, sharing and the
// backward plan. B/op shows that no activation memory is allocated.
func BenchmarkNew(b *testing.B) {
	for _, file := range []string{"googlenet_deploy.prototxt", "resnet50_deploy.prototxt"} {
		p, err := prototxt.ParseNetFile(filepath.Join(netsDir, file))
		if err != nil {
			b.Fatal(err)
		}
		reg := standard(b)
		state := &caffepb.NetState{Phase: caffepb.Phase_TEST.Enum()}
		b.Run(file, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := New[float32](p, state, reg, WithoutFillers()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
