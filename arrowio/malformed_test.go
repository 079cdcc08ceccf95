package arrowio

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// validStream returns a small stream in the ImageDataFrame schema, with a
// PNG row, a raw row and a float list, for corruption tests.
func validStream(t testing.TB, mem memory.Allocator) []byte {
	rec := makeRecord(t, mem, 3,
		stringCol("label", func(r int) string { return "1" }),
		testCol{"encoded", arrow.FixedWidthTypes.Boolean, func(b array.Builder, r int) { b.(*array.BooleanBuilder).Append(r == 1) }},
		binaryCol("data", func(r int) []byte {
			if r == 1 {
				return encodePNG(t, testImage(r, 2, 2, true))
			}
			return rawImage(r, 4)
		}),
		float32ListCol("x", func(r int) []float32 { return []float32{1, 2} }))
	return stream(t, mem, rec)
}

func malformedSpecs() []Spec {
	withX := ImageDataFrameSpec(1, 2, 2, false, false)
	withX.Fields = append(withX.Fields, Field{Name: "x", Column: "x", Kind: Array})
	return []Spec{withX, FloatArraySpec("x", "", "label", nil)}
}

// arrowInternal marks errors that arrow-go's reader recovered from a
// panic of its own while building arrays from inconsistent buffers; on
// that path it may keep references to buffers it had retained (a
// bookkeeping leak: the Go allocator's memory is still garbage collected).
const arrowInternal = "arrow/ipc: unknown error while reading"

// readAny decodes data with each spec on a fresh checked allocator. It
// fails the test on a panic, and on unreleased memory unless arrow-go's
// own recovered panic explains it; it returns how many decodes hit that.
func readAny(t testing.TB, data []byte) (arrowLeaks int) {
	for _, spec := range malformedSpecs() {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("ReadStream panicked on %d bytes: %v", len(data), p)
				}
			}()
			ds, err := ReadStream(context.Background(), bytes.NewReader(data), mem, spec)
			if err == nil {
				ds.Release()
			}
			if mem.CurrentAlloc() != 0 {
				if err != nil && strings.Contains(err.Error(), arrowInternal) {
					arrowLeaks++
					return
				}
				t.Fatalf("%d bytes left allocated after decoding a corrupted stream (err %v)", mem.CurrentAlloc(), err)
			}
		}()
	}
	return arrowLeaks
}

func TestMalformedStreams(t *testing.T) {
	mem := checkedMem(t)
	data := validStream(t, mem)
	// The intact stream decodes.
	for _, spec := range malformedSpecs() {
		ds := read(t, mem, data, spec)
		ds.Release()
	}
	// Every truncation is an error (or, at a message boundary, a shorter
	// valid stream), never a panic.
	leaks, runs := 0, 0
	for n := 0; n < len(data); n++ {
		leaks += readAny(t, data[:n])
		runs += 2
	}
	for _, bad := range [][]byte{data[:len(data)/2], []byte("definitely not arrow"), {0xff, 0xff, 0xff, 0xff, 0xf0, 0xff, 0xff, 0x7f}} {
		if _, err := ReadStream(context.Background(), bytes.NewReader(bad), mem, malformedSpecs()[0]); err == nil {
			t.Errorf("%d malformed bytes decoded without error", len(bad))
		}
	}
	// Random corruption of a few bytes.
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 600; trial++ {
		bad := bytes.Clone(data)
		for k := 0; k <= trial%4; k++ {
			bad[rng.IntN(len(bad))] = byte(rng.IntN(256))
		}
		leaks += readAny(t, bad)
		runs += 2
	}
	t.Logf("%d of %d corrupted decodes left buffers referenced inside arrow-go's recovered panic path", leaks, runs)
}

func FuzzReadStream(f *testing.F) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	f.Add(validStream(f, mem))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x10, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		readAny(t, data)
	})
}

// TestHugeVectorLengths corrupts the schema's vector lengths so that
// arrow-go, unprotected, would try to allocate billions of fields (a fatal
// out-of-memory, not a panic); the verifier must refuse them first.
func TestHugeVectorLengths(t *testing.T) {
	mem := checkedMem(t)
	data := validStream(t, mem)
	metaLen := int(binary.LittleEndian.Uint32(data[4:8]))
	meta := data[8 : 8+metaLen]
	f := &fb{b: meta}
	root, _ := f.u32(0)
	msg, err := f.table(int(root))
	if err != nil {
		t.Fatal(err)
	}
	schemaPos, err := f.deref(msg(2))
	if err != nil || schemaPos == 0 {
		t.Fatalf("schema table: %v", err)
	}
	schema, err := f.table(schemaPos)
	if err != nil {
		t.Fatal(err)
	}
	fieldsVec, err := f.deref(schema(1))
	if err != nil || fieldsVec == 0 {
		t.Fatalf("fields vector: %v", err)
	}
	firstField, err := f.deref(fieldsVec + 4)
	if err != nil {
		t.Fatal(err)
	}
	field, err := f.table(firstField)
	if err != nil {
		t.Fatal(err)
	}
	nameVec, err := f.deref(field(0))
	if err != nil || nameVec == 0 {
		t.Fatalf("field name: %v", err)
	}
	for name, pos := range map[string]int{"schema fields": fieldsVec, "field name": nameVec} {
		bad := bytes.Clone(data)
		binary.LittleEndian.PutUint32(bad[8+pos:], 1<<30)
		_, err := ReadStream(context.Background(), bytes.NewReader(bad), mem, malformedSpecs()[0])
		if !errors.Is(err, errMalformed) {
			t.Errorf("%s vector of 2^30: err = %v, want the verifier's refusal", name, err)
		}
	}
}
