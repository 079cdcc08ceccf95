// Package npy reads and writes float32 arrays in NumPy's .npy format
// (version 1.0, little-endian '<f4', C order), for exchanging inputs and
// outputs with Python tools (onnxruntime, OpenCV) in tests and scripts.
package npy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
)

var magic = []byte("\x93NUMPY")

// Write writes data with shape to path.
func Write(path string, shape []int, data []float32) error {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if n != len(data) {
		return fmt.Errorf("npy %s: shape %v holds %d values, have %d", path, shape, n, len(data))
	}
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", tuple)
	// Pad so that magic(6)+version(2)+len(2)+header+'\n' is a multiple of 64.
	total := 10 + len(header) + 1
	header += strings.Repeat(" ", (64-total%64)%64) + "\n"
	var b bytes.Buffer
	b.Write(magic)
	b.Write([]byte{1, 0})
	binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	b.WriteString(header)
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	b.Write(raw)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	return nil
}

var (
	descrRe = regexp.MustCompile(`'descr':\s*'([^']*)'`)
	orderRe = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	shapeRe = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

// Read reads a float32 .npy file (little-endian, C order).
func Read(path string) (shape []int, data []float32, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("npy: %w", err)
	}
	fail := func(format string, a ...any) ([]int, []float32, error) {
		return nil, nil, fmt.Errorf("npy %s: %s", path, fmt.Sprintf(format, a...))
	}
	if len(raw) < 10 || !bytes.Equal(raw[:6], magic) {
		return fail("not a .npy file")
	}
	var hlen, off int
	switch raw[6] {
	case 1:
		hlen, off = int(binary.LittleEndian.Uint16(raw[8:10])), 10
	case 2, 3:
		if len(raw) < 12 {
			return fail("truncated header")
		}
		hlen, off = int(binary.LittleEndian.Uint32(raw[8:12])), 12
	default:
		return fail("format version %d.%d", raw[6], raw[7])
	}
	if off+hlen > len(raw) {
		return fail("truncated header")
	}
	h := string(raw[off : off+hlen])
	if m := descrRe.FindStringSubmatch(h); m == nil || m[1] != "<f4" {
		return fail("dtype %v: want float32 ('<f4'; use arr.astype(numpy.float32))", m)
	}
	if m := orderRe.FindStringSubmatch(h); m == nil || m[1] != "False" {
		return fail("Fortran order: want C order (numpy.ascontiguousarray)")
	}
	m := shapeRe.FindStringSubmatch(h)
	if m == nil {
		return fail("header has no shape: %q", h)
	}
	n := 1
	for _, f := range strings.Split(m[1], ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		d, err := strconv.Atoi(f)
		if err != nil || d < 0 {
			return fail("bad dimension %q", f)
		}
		shape = append(shape, d)
		n *= d
	}
	body := raw[off+hlen:]
	if len(body) != 4*n {
		return fail("shape %v needs %d bytes of data, have %d", shape, 4*n, len(body))
	}
	data = make([]float32, n)
	for i := range data {
		data[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:]))
	}
	return shape, data, nil
}
