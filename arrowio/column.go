package arrowio

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// numericReader reads row i of an integer, float or numeric-string column
// as a float64; text is the value as written, for messages.
type numericReader func(i int) (v float64, text string, err error)

// ErrNull is returned (wrapped) for a null where a value is required.
var ErrNull = errors.New("null value")

// RowError is a problem with one row of a partition. Rows count from the
// start of the partition (across its record batches); ID is the row's `id`
// column (CaffeOnSpark's sample id) when the batch has a string one, so the
// row can be found in the source after Spark has repartitioned it.
type RowError struct {
	Column string
	Row    int
	ID     string
	Err    error
}

func (e *RowError) Error() string {
	id := ""
	if e.ID != "" {
		id = fmt.Sprintf(" (id %q)", e.ID)
	}
	return fmt.Sprintf("column %q row %d%s: %v", e.Column, e.Row, id, e.Err)
}

func (e *RowError) Unwrap() error { return e.Err }

// IDColumn is the column RowError takes a row's id from.
const IDColumn = "id"

// rowID returns row i's id from rec's string id column, or "".
func rowID(rec arrow.RecordBatch, i int) string {
	arr, ok := column(rec, IDColumn)
	if !ok || i < 0 || i >= arr.Len() || arr.IsNull(i) {
		return ""
	}
	switch a := arr.(type) {
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	case *array.StringView:
		return a.Value(i)
	}
	return ""
}

// values gives generic access to arrow-go's numeric arrays.
type values[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64 | float32 | float64] interface {
	arrow.Array
	Values() []T
}

func numericOf[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64 | float32 | float64](a values[T]) numericReader {
	vs := a.Values()
	return func(i int) (float64, string, error) {
		if a.IsNull(i) {
			return 0, "null", ErrNull
		}
		v := vs[i]
		return float64(v), fmt.Sprint(v), nil
	}
}

// newNumericReader returns a reader for a scalar column, or an error naming
// the column's type when it is not numeric or string.
func newNumericReader(arr arrow.Array) (numericReader, error) {
	switch a := arr.(type) {
	case *array.Int8:
		return numericOf[int8](a), nil
	case *array.Int16:
		return numericOf[int16](a), nil
	case *array.Int32:
		return numericOf[int32](a), nil
	case *array.Int64:
		return numericOf[int64](a), nil
	case *array.Uint8:
		return numericOf[uint8](a), nil
	case *array.Uint16:
		return numericOf[uint16](a), nil
	case *array.Uint32:
		return numericOf[uint32](a), nil
	case *array.Uint64:
		return numericOf[uint64](a), nil
	case *array.Float32:
		return numericOf[float32](a), nil
	case *array.Float64:
		return numericOf[float64](a), nil
	case *array.String:
		return stringNumbers(a.IsNull, a.Value), nil
	case *array.LargeString:
		return stringNumbers(a.IsNull, a.Value), nil
	case *array.StringView:
		return stringNumbers(a.IsNull, a.Value), nil
	}
	return nil, fmt.Errorf("type %s is not an integer, float or string column", arr.DataType())
}

func stringNumbers(isNull func(int) bool, value func(int) string) numericReader {
	return func(i int) (float64, string, error) {
		if isNull(i) {
			return 0, "null", ErrNull
		}
		s := value(i)
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return 0, strconv.Quote(s), fmt.Errorf("not a number")
		}
		return v, strconv.Quote(s), nil
	}
}

// toFloat32 converts a label or value to float32, refusing NaN, infinities
// and integers that float32 cannot hold exactly.
func toFloat32(v float64) (float32, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("not a finite number")
	}
	f := float32(v)
	if math.IsInf(float64(f), 0) {
		return 0, fmt.Errorf("out of float32 range")
	}
	if v == math.Trunc(v) && float64(f) != v {
		return 0, fmt.Errorf("integer not exactly representable as float32")
	}
	return f, nil
}

// listColumn gives a list-like column's values and each row's [start, end)
// range in them.
type listColumn struct {
	arr    array.ListLike
	values arrow.Array
}

func asList(arr arrow.Array) (listColumn, bool) {
	switch a := arr.(type) {
	case *array.List, *array.LargeList, *array.FixedSizeList:
		l := a.(array.ListLike)
		return listColumn{arr: l, values: l.ListValues()}, true
	}
	return listColumn{}, false
}

// rangeOf returns row i's range, checked against the values' length.
func (l listColumn) rangeOf(i int) (int, int, error) {
	s, e := l.arr.ValueOffsets(i)
	if s < 0 || e < s || e > int64(l.values.Len()) {
		return 0, 0, fmt.Errorf("list offsets [%d, %d) outside values of length %d", s, e, l.values.Len())
	}
	return int(s), int(e), nil
}

// byteColumn reads row i's bytes from binary, string, fixed-size binary or
// list<uint8> columns.
type byteColumn struct {
	isNull func(int) bool
	get    func(i int) ([]byte, error)
}

func newByteColumn(arr arrow.Array) (byteColumn, error) {
	switch a := arr.(type) {
	case *array.Binary:
		return byteColumn{a.IsNull, func(i int) ([]byte, error) { return a.Value(i), nil }}, nil
	case *array.LargeBinary:
		return byteColumn{a.IsNull, func(i int) ([]byte, error) { return a.Value(i), nil }}, nil
	case *array.FixedSizeBinary:
		return byteColumn{a.IsNull, func(i int) ([]byte, error) { return a.Value(i), nil }}, nil
	case *array.String:
		return byteColumn{a.IsNull, func(i int) ([]byte, error) { return []byte(a.Value(i)), nil }}, nil
	case *array.LargeString:
		return byteColumn{a.IsNull, func(i int) ([]byte, error) { return []byte(a.Value(i)), nil }}, nil
	}
	if l, ok := asList(arr); ok {
		// list<uint8>, or list<int8> as Spark writes array<byte> (Java's
		// signed bytes: the same bits).
		var vs []byte
		switch v := l.values.(type) {
		case *array.Uint8:
			vs = v.Uint8Values()
		case *array.Int8:
			bufs := v.Data().Buffers()
			if len(bufs) < 2 || bufs[1] == nil {
				return byteColumn{}, fmt.Errorf("type %s: no value buffer", arr.DataType())
			}
			raw, off := bufs[1].Bytes(), v.Data().Offset()
			if off < 0 || off+v.Len() > len(raw) {
				return byteColumn{}, fmt.Errorf("type %s: value buffer too short", arr.DataType())
			}
			vs = raw[off : off+v.Len()]
		default:
			return byteColumn{}, fmt.Errorf("type %s: list elements are not uint8 or int8", arr.DataType())
		}
		vals := l.values
		return byteColumn{arr.IsNull, func(i int) ([]byte, error) {
			s, e, err := l.rangeOf(i)
			if err != nil {
				return nil, err
			}
			if vals.NullN() > 0 {
				for j := s; j < e; j++ {
					if vals.IsNull(j) {
						return nil, fmt.Errorf("null element %d", j-s)
					}
				}
			}
			return vs[s:e], nil
		}}, nil
	}
	return byteColumn{}, fmt.Errorf("type %s is not binary, string or a list of bytes", arr.DataType())
}

// contiguous reports whether rows [0, n) all hold size elements laid end to
// end, and if so returns the view over all of them: the zero-copy case.
func contiguous[E any](rows int, size int, row func(i int) ([]E, error)) ([]E, bool) {
	if rows == 0 || size == 0 {
		return nil, false
	}
	first, err := row(0)
	if err != nil || len(first) != size || cap(first) < rows*size {
		return nil, false
	}
	all := first[: rows*size : rows*size]
	for i := 1; i < rows; i++ {
		r, err := row(i)
		if err != nil || len(r) != size || &r[0] != &all[i*size] {
			return nil, false
		}
	}
	return all, true
}

// validate runs arrow-go's full validation where the array type has one,
// so that offsets are known to be in bounds before rows are sliced.
func validate(arr arrow.Array) error {
	if v, ok := arr.(interface{ ValidateFull() error }); ok {
		if err := v.ValidateFull(); err != nil {
			return err
		}
	}
	if l, ok := asList(arr); ok {
		return validate(l.values)
	}
	if s, ok := arr.(*array.Struct); ok {
		for i := 0; i < s.NumField(); i++ {
			if s.Field(i).Len() < s.Len() {
				return fmt.Errorf("struct field %d has %d rows, want %d", i, s.Field(i).Len(), s.Len())
			}
			if err := validate(s.Field(i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// column finds a column by name in a record batch.
func column(rec arrow.RecordBatch, name string) (arrow.Array, bool) {
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return nil, false
	}
	return rec.Column(idx[0]), true
}

// columnNames lists a record batch's columns, for messages.
func columnNames(rec arrow.RecordBatch) string {
	names := make([]string, rec.Schema().NumFields())
	for i, f := range rec.Schema().Fields() {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}
