package data

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/db"
)

// jpegDB writes n encoded 256×256 colour JPEG Datums (smooth gradients with
// noise, quality 90, about the size of ImageNet's resized images) into a
// LevelDB and returns its path.
func jpegDB(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "jpeg_leveldb")
	w, err := db.Create(db.LevelDB, path)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; i++ {
		img := image.NewRGBA(image.Rect(0, 0, 256, 256))
		for y := 0; y < 256; y++ {
			for x := 0; x < 256; x++ {
				img.Set(x, y, color.RGBA{uint8(x + i), uint8(y * 2), uint8(x ^ y + r.IntN(32)), 255})
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
			b.Fatal(err)
		}
		v, _ := proto.Marshal(&caffepb.Datum{Data: buf.Bytes(), Encoded: proto.Bool(true), Label: proto.Int32(int32(i % 1000))})
		if err := w.Put([]byte(fmt.Sprintf("%08d", i)), v); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkJPEGBatch256 reads CaffeNet-sized batches (256 colour JPEGs of
// 256×256, crop 227, mirror, as CaffeNet's train net) from a database through
// the prefetching source, with the batch's images decoded on 1 goroutine and
// on GOMAXPROCS: ns/op is the time to decode and transform one batch.
func BenchmarkJPEGBatch256(b *testing.B) {
	path := jpegDB(b, 256)
	for _, workers := range []int{1, 0} {
		name := "workers=1"
		if workers == 0 {
			name = "workers=GOMAXPROCS"
		}
		b.Run(name, func(b *testing.B) {
			src, err := OpenDB[float32](DBOptions{Backend: db.LevelDB, Path: path, Color: ForceColor,
				Transform: Transform{CropSize: 227, Mirror: true, MeanValue: []float64{104, 117, 123}},
				Train:     true, Workers: workers})
			if err != nil {
				b.Fatal(err)
			}
			p := NewPrefetch[float32](context.Background(), src)
			defer p.Close()
			top := []*blob.Blob[float32]{blob.New[float32](256, 3, 227, 227), blob.New[float32](256)}
			if err := p.Next(top); err != nil { // the first batch, read synchronously
				b.Fatal(err)
			}
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := p.Next(top); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			// CPU time of the whole process (decoding goroutines included):
			// steadier than wall time on a loaded machine.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms/batch")
		})
	}
}

// cpuTime is the process's user+system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
