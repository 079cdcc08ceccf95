package modelio

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// DecodeError is malformed binary protobuf input.
type DecodeError struct {
	// File names the input (a path or a label).
	File string
	// Offset is the byte offset of the bad field's tag in the file; -1 when
	// unknown.
	Offset int64
	// Field is the path of the bad field, e.g. "layer[3].blobs[0].data";
	// empty when unknown.
	Field string
	// Msg describes the problem.
	Msg string
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Offset >= 0 {
		fmt.Fprintf(&b, ": byte %d", e.Offset)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": field %s", e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// locateError explains why data failed to decode as m by walking the wire
// format against m's schema, finding the offset and field path of the
// first problem.
func locateError(name string, data []byte, m proto.Message, cause error) error {
	md := m.ProtoReflect().Descriptor()
	if e := walk(data, md, string(md.Name()), 0, 0); e != nil {
		e.File = name
		return e
	}
	msg := strings.TrimLeft(strings.TrimPrefix(cause.Error(), "proto:"), " \u00a0")
	return &DecodeError{File: name, Offset: -1, Msg: msg}
}

// maxDepth bounds the walk like protobuf-go's own recursion limit.
const maxDepth = 10000

// walk checks the fields of one message encoded in b (which starts at
// offset base of the file) and returns the first problem found.
func walk(b []byte, md protoreflect.MessageDescriptor, path string, base int64, depth int) *DecodeError {
	if depth > maxDepth {
		return &DecodeError{Offset: base, Field: path, Msg: "messages nested too deeply"}
	}
	counts := map[protowire.Number]int{}
	seen := map[protowire.Number]bool{}
	off := 0
	for off < len(b) {
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 {
			return &DecodeError{Offset: base + int64(off), Field: path, Msg: "bad field tag: " + protowire.ParseError(n).Error()}
		}
		fd := md.Fields().ByNumber(num)
		fpath := fmt.Sprintf("%s.<unknown field %d>", path, num)
		if fd != nil {
			fpath = path + "." + string(fd.Name())
			if fd.IsList() && fd.Message() != nil {
				fpath = fmt.Sprintf("%s[%d]", fpath, counts[num])
			}
			counts[num]++
			seen[num] = true
		}
		m := protowire.ConsumeFieldValue(num, typ, b[off+n:])
		if m < 0 && typ == protowire.BytesType && fd != nil && fd.Message() != nil {
			// A cut-off message: look inside what is there for a more
			// precise location.
			if _, pl := protowire.ConsumeVarint(b[off+n:]); pl > 0 {
				if e := walk(b[off+n+pl:], fd.Message(), fpath, base+int64(off+n+pl), depth+1); e != nil {
					return e
				}
			}
		}
		if m < 0 {
			return &DecodeError{Offset: base + int64(off), Field: fpath,
				Msg: fmt.Sprintf("bad value (wire type %d): %v", typ, protowire.ParseError(m))}
		}
		val := b[off+n : off+n+m]
		if fd != nil && typ == protowire.BytesType {
			payload, _ := protowire.ConsumeBytes(val) // valid: ConsumeFieldValue checked it
			switch {
			case fd.Message() != nil && fd.Kind() != protoreflect.GroupKind:
				if e := walk(payload, fd.Message(), fpath, base+int64(off+n+lenPrefix(val)), depth+1); e != nil {
					return e
				}
			case fd.IsList() && isPackable(fd.Kind()):
				if msg := checkPacked(payload, fd.Kind()); msg != "" {
					return &DecodeError{Offset: base + int64(off), Field: fpath, Msg: msg}
				}
			}
		}
		off += n + m
	}
	for i := 0; i < md.Fields().Len(); i++ {
		fd := md.Fields().Get(i)
		if fd.Cardinality() == protoreflect.Required && !seen[fd.Number()] {
			return &DecodeError{Offset: base, Field: path + "." + string(fd.Name()), Msg: "required field not set"}
		}
	}
	return nil
}

// lenPrefix returns the size of the length varint at the start of val.
func lenPrefix(val []byte) int {
	_, n := protowire.ConsumeVarint(val)
	return n
}

func isPackable(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind, protoreflect.GroupKind:
		return false
	}
	return true
}

// checkPacked validates a packed run of scalars of kind k.
func checkPacked(b []byte, k protoreflect.Kind) string {
	switch k {
	case protoreflect.FloatKind, protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
		if len(b)%4 != 0 {
			return fmt.Sprintf("packed 4-byte values: length %d is not a multiple of 4", len(b))
		}
	case protoreflect.DoubleKind, protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
		if len(b)%8 != 0 {
			return fmt.Sprintf("packed 8-byte values: length %d is not a multiple of 8", len(b))
		}
	default:
		for off := 0; off < len(b); {
			_, n := protowire.ConsumeVarint(b[off:])
			if n < 0 {
				return fmt.Sprintf("packed varint at +%d: %v", off, protowire.ParseError(n))
			}
			off += n
		}
	}
	return ""
}
