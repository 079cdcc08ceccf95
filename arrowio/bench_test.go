package arrowio

import (
	"bytes"
	"context"
	"image"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// mnistLike returns a 28×28 image that looks like a digit: black with a
// bright random stroke, so PNG compresses it as it does MNIST.
func mnistLike(rng *rand.Rand) []byte {
	pix := make([]byte, 784)
	x, y := 8+rng.IntN(12), 4+rng.IntN(6)
	for s := 0; s < 60; s++ {
		x = min(26, max(1, x+rng.IntN(3)-1))
		y = min(26, max(1, y+rng.IntN(3)-1))
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				pix[(y+dy)*28+x+dx] = byte(160 + rng.IntN(96))
			}
		}
	}
	return pix
}

// benchStream builds an IPC stream of rows images in batches of 10,000
// rows (Spark's default spark.sql.execution.arrow.maxRecordsPerBatch).
func benchStream(b *testing.B, rows int, encode bool) []byte {
	mem := memory.NewGoAllocator()
	rng := rand.New(rand.NewPCG(1, 1))
	imgs := make([][]byte, rows)
	for i := range imgs {
		imgs[i] = mnistLike(rng)
		if encode {
			imgs[i] = encodePNG(b, &image.Gray{Pix: imgs[i], Stride: 28, Rect: image.Rect(0, 0, 28, 28)})
		}
	}
	var recs []arrow.RecordBatch
	for lo := 0; lo < rows; lo += 10000 {
		n := min(10000, rows-lo)
		recs = append(recs, makeRecord(b, mem, n,
			stringCol("label", func(r int) string { return strconv.Itoa((lo + r) % 10) }),
			binaryCol("data", func(r int) []byte { return imgs[lo+r] })))
	}
	return stream(b, mem, recs...)
}

func benchRead(b *testing.B, data []byte, spec Spec, rows int, opts ...Option) {
	mem := memory.NewGoAllocator()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ds, err := ReadStream(context.Background(), bytes.NewReader(data), mem, spec, opts...)
		if err != nil {
			b.Fatal(err)
		}
		if ds.Len() != rows {
			b.Fatalf("%d rows", ds.Len())
		}
		ds.Release()
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkReadRawMNIST decodes a 60,000-image MNIST-sized partition of raw
// pixels (used in place) with string labels.
func BenchmarkReadRawMNIST(b *testing.B) {
	benchRead(b, benchStream(b, 60000, false), ImageDataFrameSpec(1, 28, 28, false, false), 60000)
}

// BenchmarkReadPNG decodes 10,000 PNG images on all cores and on one.
func BenchmarkReadPNG(b *testing.B) {
	data := benchStream(b, 10000, true)
	b.Run("workers=all", func(b *testing.B) { benchRead(b, data, ImageDataFrameSpec(1, 28, 28, true, false), 10000) })
	b.Run("workers=1", func(b *testing.B) {
		benchRead(b, data, ImageDataFrameSpec(1, 28, 28, true, false), 10000, WithWorkers(1))
	})
}

// BenchmarkSamplerNext fills one LeNet batch (64 × 1×28×28, scale 1/256).
func BenchmarkSamplerNext(b *testing.B) {
	spec := ImageDataFrameSpec(1, 28, 28, false, false)
	spec.Fields[0].Transform = &Transform{Scale: 0.00390625}
	ds, err := ReadStream(context.Background(), bytes.NewReader(benchStream(b, 10000, false)), memory.NewGoAllocator(), spec)
	if err != nil {
		b.Fatal(err)
	}
	defer ds.Release()
	s, err := NewSampler[float32](ds, spec, SamplerOptions{BatchSize: 64, Shuffle: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	tops := newTops(s, 2)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Next(tops); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(64*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}
