package sparkconf

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// Resolved returns every key that has a value (set, or by default) in the
// canonical typed form other programs read: strings, int64, bool; durations
// as int64 milliseconds and sizes as int64 bytes. A key without a default
// that was not set is absent.
func (v Values) Resolved() map[string]any {
	out := make(map[string]any, len(v.v))
	for k, x := range v.v {
		if d, ok := x.(time.Duration); ok {
			x = d.Milliseconds()
		}
		out[k] = x
	}
	return out
}

// JSON renders Resolved as one JSON object.
func (v Values) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(v.Resolved(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("sparkconf: resolved values to JSON: %w", err)
	}
	return append(b, '\n'), nil
}

// WriteProperties writes Resolved in Java's properties format (what
// java.util.Properties.load reads), one key per line, sorted.
func (v Values) WriteProperties(w io.Writer) error {
	r := v.Resolved()
	names := make([]string, 0, len(r))
	for k := range r {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("# spark.gocaffe.* settings resolved by sparkconf: durations in milliseconds, sizes in bytes\n")
	for _, k := range names {
		var s string
		switch x := r[k].(type) {
		case string:
			s = x
		case int64:
			s = strconv.FormatInt(x, 10)
		case bool:
			s = strconv.FormatBool(x)
		default:
			return fmt.Errorf("sparkconf: %s: unexpected resolved type %T", k, x)
		}
		b.WriteString(escapeProperty(k, true))
		b.WriteByte('=')
		b.WriteString(escapeProperty(s, false))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// escapeProperty escapes s for a properties file: backslash escapes for the
// separators, comment marks and whitespace, \uXXXX for everything outside
// printable ASCII (so the file is read the same in any encoding).
func escapeProperty(s string, key bool) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == '=' || r == ':' || r == '#' || r == '!':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == ' ' && (key || i == 0):
			b.WriteString(`\ `)
		case r < 0x20 || r > 0x7e:
			for _, u := range utf16.Encode([]rune{r}) {
				fmt.Fprintf(&b, `\u%04x`, u)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
