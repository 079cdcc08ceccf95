package sparkconf

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

// Parse converts a value written for k into its typed form (string, int64,
// bool, time.Duration, or int64 bytes) and runs the key's checks. Errors do
// not repeat the value (a Problem shows it, except a Secret's).
func (k Key) Parse(s string) (any, error) {
	s = strings.TrimSpace(s)
	var v any
	var err error
	switch k.Type {
	case String, Secret:
		v = s
	case Path:
		v, err = s, checkPath(s)
	case Int:
		var n int64
		n, err = strconv.ParseInt(s, 10, 64)
		if err != nil {
			err = fmt.Errorf("not an integer")
		} else if k.Max > k.Min && (n < k.Min || n > k.Max) {
			err = fmt.Errorf("outside %d..%d", k.Min, k.Max)
		}
		v = n
	case Bool:
		switch strings.ToLower(s) {
		case "true":
			v = true
		case "false":
			v = false
		default:
			err = fmt.Errorf("not true or false")
		}
	case Enum:
		err = fmt.Errorf("not one of %s", strings.Join(k.Values, ", "))
		for _, e := range k.Values {
			if strings.EqualFold(s, e) {
				v, err = e, nil
				break
			}
		}
	case Duration:
		v, err = parseDuration(s)
	case Bytes:
		v, err = parseBytes(s)
	case Host:
		err = checkHost(s)
		v = s
	default:
		err = fmt.Errorf("unknown type %v", k.Type)
	}
	if err == nil && k.Check != nil {
		err = k.Check(v)
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

// checkPath accepts a non-empty path without control characters (a path is
// handed on to processes and property files as one line).
func checkPath(s string) error {
	if s == "" {
		return fmt.Errorf("empty path")
	}
	if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return fmt.Errorf("control character in path")
	}
	return nil
}

var durationUnits = []struct {
	suffix string
	unit   time.Duration
}{
	// Longest suffixes first so "ms" and "min" are not read as "s"/"m".
	{"min", time.Minute}, {"ms", time.Millisecond}, {"us", time.Microsecond},
	{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"d", 24 * time.Hour},
}

// parseDuration reads Spark-style durations: a non-negative integer with a
// unit (ms, s, m or min, h, d, us); a bare number is seconds.
func parseDuration(s string) (time.Duration, error) {
	num, unit := strings.ToLower(s), time.Second
	for _, u := range durationUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, unit = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.unit
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a duration (write e.g. 30s, 500ms, 5min)")
	}
	if n > int64(math.MaxInt64/unit) {
		return 0, fmt.Errorf("duration too long")
	}
	return time.Duration(n) * unit, nil
}

// parseBytes reads Spark-style sizes: a non-negative integer with a binary
// unit (b, k/kb, m/mb, g/gb, t/tb); a bare number is bytes.
func parseBytes(s string) (int64, error) {
	num := strings.ToLower(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"tb", 1 << 40},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"b", 1}} {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a size (write e.g. 512m, 4g)")
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size too large")
	}
	return n * mult, nil
}

// checkHost accepts an IP address or a host name (no port).
func checkHost(s string) error {
	if s == "" {
		return fmt.Errorf("empty address")
	}
	if net.ParseIP(s) != nil {
		return nil
	}
	if strings.Contains(s, ":") {
		return fmt.Errorf("%q: give the address without a port", s)
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("not an IP address or host name")
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("not an IP address or host name")
			}
		}
	}
	return nil
}
