package prototxt

import (
	"bytes"
	"math"
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// Format prints m as prototxt in the layout of Caffe's (protobuf C++'s)
// text printer: fields in field-number order, one `name: value` per line,
// nested messages as `name {` ... `}`, two-space indent, enums by name,
// floats in the shortest of %.6g / %.9g that reads back exactly. Unknown
// fields are not printed.
func Format(m proto.Message) []byte {
	var b bytes.Buffer
	printMessage(&b, m.ProtoReflect(), 0)
	return b.Bytes()
}

// FormatNet prints a net as prototxt (see Format).
func FormatNet(net *caffepb.NetParameter) []byte { return Format(net) }

// FormatSolver prints a solver as prototxt (see Format).
func FormatSolver(sp *caffepb.SolverParameter) []byte { return Format(sp) }

func printMessage(b *bytes.Buffer, m protoreflect.Message, depth int) {
	type field struct {
		fd protoreflect.FieldDescriptor
		v  protoreflect.Value
	}
	var fields []field
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		fields = append(fields, field{fd, v})
		return true
	})
	slices.SortFunc(fields, func(a, b field) int { return int(a.fd.Number() - b.fd.Number()) })
	for _, f := range fields {
		if f.fd.IsList() {
			l := f.v.List()
			for i := 0; i < l.Len(); i++ {
				printField(b, f.fd, l.Get(i), depth)
			}
			continue
		}
		printField(b, f.fd, f.v, depth)
	}
}

func indent(b *bytes.Buffer, depth int) {
	for range depth {
		b.WriteString("  ")
	}
}

func printField(b *bytes.Buffer, fd protoreflect.FieldDescriptor, v protoreflect.Value, depth int) {
	indent(b, depth)
	name := string(fd.Name())
	if fd.Kind() == protoreflect.GroupKind {
		name = string(fd.Message().Name())
	}
	b.WriteString(name)
	if fd.Message() != nil {
		b.WriteString(" {\n")
		printMessage(b, v.Message(), depth+1)
		indent(b, depth)
		b.WriteString("}\n")
		return
	}
	b.WriteString(": ")
	b.WriteString(scalar(fd, v))
	b.WriteByte('\n')
}

func scalar(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return strconv.FormatBool(v.Bool())
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return strconv.FormatInt(int64(v.Enum()), 10)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return strconv.FormatInt(v.Int(), 10)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return strconv.FormatUint(v.Uint(), 10)
	case protoreflect.FloatKind:
		return formatFloat(v.Float(), 32)
	case protoreflect.DoubleKind:
		return formatFloat(v.Float(), 64)
	case protoreflect.StringKind:
		return quote([]byte(v.String()))
	case protoreflect.BytesKind:
		return quote(v.Bytes())
	}
	return v.String()
}

// formatFloat mimics protobuf C++'s SimpleFtoa/SimpleDtoa: the short form
// (6 or 15 significant digits) when it reads back exactly, else 9 or 17.
func formatFloat(f float64, bits int) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	short, long := 6, 9
	if bits == 64 {
		short, long = 15, 17
	}
	s := strconv.FormatFloat(f, 'g', short, bits)
	if back, err := strconv.ParseFloat(s, bits); err == nil && back == f {
		return s
	}
	return strconv.FormatFloat(f, 'g', long, bits)
}

// quote writes s as a double-quoted string with C escapes, as protobuf
// C++'s CEscape does (bytes outside printable ASCII as 3-digit octal).
func quote(s []byte) string {
	var b bytes.Buffer
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, c := range s {
		switch c {
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '"':
			b.WriteString(`\"`)
		case '\'':
			b.WriteString(`\'`)
		case '\\':
			b.WriteString(`\\`)
		default:
			if c < 0x20 || c >= 0x7f {
				b.WriteByte('\\')
				b.WriteByte('0' + c>>6)
				b.WriteByte('0' + (c>>3)&7)
				b.WriteByte('0' + c&7)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
