package arrowio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// arrow-go trusts the lengths of flatbuffer vectors in IPC message metadata
// and allocates slices of that many elements before reading them, so a few
// corrupted bytes can request terabytes and end the process with a fatal
// out-of-memory error that no recover catches. verifyingReader sits between
// the stream and arrow-go's reader and checks each message's metadata
// first: every table, vector and string it walks must lie inside the
// metadata buffer. It passes the stream's bytes through unchanged.

const (
	maxMetadataSize = 64 << 20 // arrow-go's default limit
	maxFieldDepth   = 64
	maxTables       = 1 << 20
)

// errMalformed wraps every problem the verifier finds.
var errMalformed = errors.New("malformed IPC message metadata")

type verifyingReader struct {
	r       io.Reader
	pending []byte // verified bytes not yet returned
	body    int64  // body bytes to pass through after pending
	done    bool   // end-of-stream marker seen
	msgs    int
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	for len(v.pending) == 0 && v.body == 0 {
		if v.done {
			return 0, io.EOF
		}
		if err := v.nextMessage(); err != nil {
			return 0, err
		}
	}
	if len(v.pending) > 0 {
		n := copy(p, v.pending)
		v.pending = v.pending[n:]
		return n, nil
	}
	if int64(len(p)) > v.body {
		p = p[:v.body]
	}
	n, err := v.r.Read(p)
	v.body -= int64(n)
	if err == io.EOF && v.body > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// nextMessage reads and checks one message's prefix and metadata.
func (v *verifyingReader) nextMessage() error {
	var hdr [8]byte
	if _, err := io.ReadFull(v.r, hdr[:4]); err != nil {
		if err == io.EOF {
			v.done = true // arrow-go reports a stream without EOS marker itself
			return nil
		}
		return err
	}
	prefix := hdr[:4]
	length := binary.LittleEndian.Uint32(hdr[:4])
	if length == 0xFFFFFFFF { // continuation token, then the length
		if _, err := io.ReadFull(v.r, hdr[4:8]); err != nil {
			return fmt.Errorf("message %d: %w", v.msgs, noEOF(err))
		}
		prefix = hdr[:8]
		length = binary.LittleEndian.Uint32(hdr[4:8])
	}
	if length == 0 {
		v.pending = append([]byte(nil), prefix...)
		v.done = true
		return nil
	}
	if length > maxMetadataSize {
		return fmt.Errorf("message %d: %w: metadata length %d over %d", v.msgs, errMalformed, length, maxMetadataSize)
	}
	meta := make([]byte, len(prefix)+int(length))
	copy(meta, prefix)
	if _, err := io.ReadFull(v.r, meta[len(prefix):]); err != nil {
		return fmt.Errorf("message %d: %w", v.msgs, noEOF(err))
	}
	body, err := verifyMessage(meta[len(prefix):])
	if err != nil {
		return fmt.Errorf("message %d: %w: %v", v.msgs, errMalformed, err)
	}
	v.pending, v.body = meta, body
	v.msgs++
	return nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// fb reads a flatbuffer with bounds checks.
type fb struct {
	b      []byte
	tables int
}

var errBounds = errors.New("offset out of bounds")

func (f *fb) u32(pos int) (uint32, error) {
	if pos < 0 || pos+4 > len(f.b) {
		return 0, errBounds
	}
	return binary.LittleEndian.Uint32(f.b[pos:]), nil
}

func (f *fb) u16(pos int) (uint16, error) {
	if pos < 0 || pos+2 > len(f.b) {
		return 0, errBounds
	}
	return binary.LittleEndian.Uint16(f.b[pos:]), nil
}

// table checks the table at pos and its vtable; it returns a function
// giving the absolute position of field i (0 when absent).
func (f *fb) table(pos int) (func(i int) int, error) {
	f.tables++
	if f.tables > maxTables {
		return nil, errors.New("too many tables")
	}
	so, err := f.u32(pos)
	if err != nil {
		return nil, err
	}
	vt := pos - int(int32(so))
	vlen, err := f.u16(vt)
	if err != nil {
		return nil, err
	}
	if vlen < 4 || vlen%2 != 0 || vt+int(vlen) > len(f.b) {
		return nil, errBounds
	}
	tlen, err := f.u16(vt + 2)
	if err != nil || pos+int(tlen) > len(f.b) {
		return nil, errBounds
	}
	return func(i int) int {
		if 4+2*i+2 > int(vlen) {
			return 0
		}
		off, _ := f.u16(vt + 4 + 2*i)
		if off == 0 {
			return 0
		}
		return pos + int(off)
	}, nil
}

// deref follows the offset stored at pos (0: absent) to its target.
func (f *fb) deref(pos int) (int, error) {
	if pos == 0 {
		return 0, nil
	}
	off, err := f.u32(pos)
	if err != nil {
		return 0, err
	}
	t := pos + int(off)
	if off == 0 || t >= len(f.b) || t < pos {
		return 0, errBounds
	}
	return t, nil
}

// vector checks the vector whose offset is at pos and returns the position
// of its first element and its length (0, 0 when absent).
func (f *fb) vector(pos, elemSize int) (int, int, error) {
	v, err := f.deref(pos)
	if err != nil || v == 0 {
		return 0, 0, err
	}
	n, err := f.u32(v)
	if err != nil {
		return 0, 0, err
	}
	if uint64(n)*uint64(elemSize) > uint64(len(f.b)-v-4) {
		return 0, 0, fmt.Errorf("vector of %d elements overruns %d-byte metadata", n, len(f.b))
	}
	return v + 4, int(n), nil
}

// tables checks a vector of tables with check applied to each.
func (f *fb) tableVector(pos int, check func(int) error) error {
	start, n, err := f.vector(pos, 4)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		t, err := f.deref(start + 4*i)
		if err != nil {
			return err
		}
		if err := check(t); err != nil {
			return err
		}
	}
	return nil
}

func (f *fb) keyValue(t int) error {
	field, err := f.table(t)
	if err != nil {
		return err
	}
	for i := 0; i < 2; i++ {
		if _, _, err := f.vector(field(i), 1); err != nil {
			return err
		}
	}
	return nil
}

// Field of Arrow's Schema.fbs: name, nullable, type_type, type, dictionary,
// children, custom_metadata.
func (f *fb) field(t, depth int) error {
	if depth > maxFieldDepth {
		return errors.New("fields nested too deep")
	}
	field, err := f.table(t)
	if err != nil {
		return err
	}
	if _, _, err := f.vector(field(0), 1); err != nil {
		return err
	}
	typ, err := f.deref(field(3))
	if err != nil {
		return err
	}
	if typ != 0 {
		tf, err := f.table(typ)
		if err != nil {
			return err
		}
		if tt := field(2); tt != 0 && tt < len(f.b) && f.b[tt] == 14 { // Type.Union: typeIds [int]
			if _, _, err := f.vector(tf(1), 4); err != nil {
				return err
			}
		}
	}
	if dict, err := f.deref(field(4)); err != nil {
		return err
	} else if dict != 0 {
		if _, err := f.table(dict); err != nil {
			return err
		}
	}
	if err := f.tableVector(field(5), func(c int) error { return f.field(c, depth+1) }); err != nil {
		return err
	}
	return f.tableVector(field(6), f.keyValue)
}

// recordBatch: length, nodes [FieldNode: length, null_count], buffers
// [Buffer: offset, length], compression, variadicBufferCounts [long].
// Buffers must lie inside the body and counts must not be negative.
func (f *fb) recordBatch(t int, bodyLen int64) error {
	rb, err := f.table(t)
	if err != nil {
		return err
	}
	if p := rb(0); p != 0 {
		if p+8 > len(f.b) {
			return errBounds
		}
		if n := int64(binary.LittleEndian.Uint64(f.b[p:])); n < 0 {
			return fmt.Errorf("record batch length %d", n)
		}
	}
	nodes, nn, err := f.vector(rb(1), 16)
	if err != nil {
		return err
	}
	for i := 0; i < nn; i++ {
		length := int64(binary.LittleEndian.Uint64(f.b[nodes+16*i:]))
		nulls := int64(binary.LittleEndian.Uint64(f.b[nodes+16*i+8:]))
		if length < 0 || nulls < 0 || nulls > length {
			return fmt.Errorf("field node %d: length %d, null count %d", i, length, nulls)
		}
	}
	bufs, nb, err := f.vector(rb(2), 16)
	if err != nil {
		return err
	}
	for i := 0; i < nb; i++ {
		off := int64(binary.LittleEndian.Uint64(f.b[bufs+16*i:]))
		n := int64(binary.LittleEndian.Uint64(f.b[bufs+16*i+8:]))
		if off < 0 || n < 0 || off > bodyLen || n > bodyLen-off {
			return fmt.Errorf("buffer %d [%d, +%d) outside the %d-byte body", i, off, n, bodyLen)
		}
	}
	if _, _, err := f.vector(rb(4), 8); err != nil {
		return err
	}
	if c, err := f.deref(rb(3)); err != nil {
		return err
	} else if c != 0 {
		_, err = f.table(c)
		return err
	}
	return nil
}

// verifyMessage checks a Message flatbuffer and returns its body length.
func verifyMessage(b []byte) (int64, error) {
	f := &fb{b: b}
	root, err := f.u32(0)
	if err != nil || root < 4 || int(root) >= len(b) {
		return 0, fmt.Errorf("root: %v", errBounds)
	}
	msg, err := f.table(int(root))
	if err != nil {
		return 0, err
	}
	var bodyLen int64
	if p := msg(3); p != 0 {
		if p+8 > len(b) {
			return 0, errBounds
		}
		bodyLen = int64(binary.LittleEndian.Uint64(b[p:]))
		if bodyLen < 0 || bodyLen > math.MaxInt32*int64(8) {
			return 0, fmt.Errorf("body length %d", bodyLen)
		}
	}
	if err := f.tableVector(msg(4), f.keyValue); err != nil {
		return 0, err
	}
	headerType := byte(0)
	if p := msg(1); p != 0 && p < len(b) {
		headerType = b[p]
	}
	hdr, err := f.deref(msg(2))
	if err != nil {
		return 0, err
	}
	if hdr == 0 {
		return bodyLen, nil
	}
	switch headerType {
	case 1: // Schema: endianness, fields, custom_metadata, features [long]
		s, err := f.table(hdr)
		if err != nil {
			return 0, err
		}
		if err := f.tableVector(s(1), func(t int) error { return f.field(t, 0) }); err != nil {
			return 0, err
		}
		if err := f.tableVector(s(2), f.keyValue); err != nil {
			return 0, err
		}
		if _, _, err := f.vector(s(3), 8); err != nil {
			return 0, err
		}
	case 2: // DictionaryBatch: id, data (RecordBatch), isDelta
		d, err := f.table(hdr)
		if err != nil {
			return 0, err
		}
		data, err := f.deref(d(1))
		if err != nil {
			return 0, err
		}
		if data != 0 {
			if err := f.recordBatch(data, bodyLen); err != nil {
				return 0, err
			}
		}
	case 3: // RecordBatch
		if err := f.recordBatch(hdr, bodyLen); err != nil {
			return 0, err
		}
	default:
		if _, err := f.table(hdr); err != nil {
			return 0, err
		}
	}
	return bodyLen, nil
}
