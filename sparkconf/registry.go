// Package sparkconf declares every spark.gocaffe.* configuration key once,
// with its type, default, documentation and check; validates a Spark
// configuration against them, reporting every problem together; and
// renders the documentation table (the README's Configuration section) from the same
// declarations.
package sparkconf

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Prefix is the namespace of GoCaffe's keys.
const Prefix = "spark.gocaffe."

// Type is a key's value type.
type Type int

const (
	// String is free text.
	String Type = iota
	// Int is a decimal integer within the key's Min and Max.
	Int
	// Bool is true or false.
	Bool
	// Enum is one of the key's Values (case-insensitive).
	Enum
	// Duration is a number with a unit: ms, s, min, h (as in Spark: 30s, 5min).
	Duration
	// Bytes is a size with a unit: b, k, m, g, t (binary multiples; as in Spark: 512m, 4g).
	Bytes
	// Path is a file system path or URI.
	Path
	// Host is an IP address or host name to listen on.
	Host
	// Secret is a value that is never printed.
	Secret
)

func (t Type) String() string {
	switch t {
	case String:
		return "string"
	case Int:
		return "int"
	case Bool:
		return "boolean"
	case Enum:
		return "enum"
	case Duration:
		return "duration"
	case Bytes:
		return "bytes"
	case Path:
		return "path"
	case Host:
		return "address"
	case Secret:
		return "secret"
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// Key declares one configuration key.
type Key struct {
	// Name is the full key, starting with Prefix.
	Name string
	// Type is the value's type.
	Type Type
	// Default is the value when the key is not set, written as a user
	// would write it; empty means unset, with DefaultDoc saying what
	// happens then.
	Default string
	// DefaultDoc describes an empty Default in the docs table.
	DefaultDoc string
	// Doc is the documentation: what the key does, in a sentence or two.
	Doc string
	// Values lists an Enum's allowed values.
	Values []string
	// Min and Max bound an Int (inclusive) when Max > Min.
	Min, Max int64
	// Check is an extra check run on a parsed value.
	Check func(v any) error
}

// Registry holds the declared keys. It is immutable once built.
type Registry struct {
	keys   []Key
	byName map[string]int
}

// NewRegistry builds a registry from keys, checking each declaration
// (prefix, duplicate names, enum values, a default that passes its own
// check).
func NewRegistry(keys ...Key) (*Registry, error) {
	r := &Registry{byName: map[string]int{}}
	var errs []error
	for _, k := range keys {
		if !strings.HasPrefix(k.Name, Prefix) || len(k.Name) == len(Prefix) {
			errs = append(errs, fmt.Errorf("key %q: name must start with %q", k.Name, Prefix))
			continue
		}
		if _, dup := r.byName[k.Name]; dup {
			errs = append(errs, fmt.Errorf("key %q declared twice", k.Name))
			continue
		}
		if k.Doc == "" {
			errs = append(errs, fmt.Errorf("key %q: no documentation", k.Name))
		}
		if (k.Type == Enum) != (len(k.Values) > 0) {
			errs = append(errs, fmt.Errorf("key %q: enum values must be given exactly for enum keys", k.Name))
		}
		if k.Default != "" {
			if _, err := k.Parse(k.Default); err != nil {
				errs = append(errs, fmt.Errorf("key %q: default: %w", k.Name, err))
			}
		} else if k.DefaultDoc == "" {
			errs = append(errs, fmt.Errorf("key %q: empty default needs DefaultDoc", k.Name))
		}
		r.byName[k.Name] = len(r.keys)
		r.keys = append(r.keys, k)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// Keys returns the declared keys sorted by name.
func (r *Registry) Keys() []Key {
	out := append([]Key(nil), r.keys...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the declaration of name.
func (r *Registry) Lookup(name string) (Key, bool) {
	i, ok := r.byName[name]
	if !ok {
		return Key{}, false
	}
	return r.keys[i], true
}

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Key is the key as the configuration spells it.
	Key string
	// Value is the value as given, or "(secret)" for a Secret key.
	Value string
	// Message says what is wrong, without repeating the value.
	Message string
}

// ValidationError lists every problem found in a configuration.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	n := len(e.Problems)
	fmt.Fprintf(&b, "%d problem", n)
	if n != 1 {
		b.WriteString("s")
	}
	b.WriteString(" in GoCaffe's Spark settings:")
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  %s=%s: %s", p.Key, p.Value, p.Message)
	}
	return b.String()
}

// Validate checks every spark.gocaffe.* entry of conf: unknown keys, with a
// did-you-mean, and values that do not parse or pass their check. Of
// Spark's own keys it checks only those GoCaffe cannot run with
// (spark.dynamicAllocation.enabled=true). It returns a *ValidationError listing
// all problems, or nil.
func (r *Registry) Validate(conf map[string]string) error {
	_, err := r.Resolve(conf)
	return err
}

// Values are a configuration's parsed values, with defaults filled in.
type Values struct {
	v map[string]any
}

// Get returns the parsed value of name (nil for an unset key without a
// default). The type follows the key's: string, int64, bool,
// time.Duration or int64 bytes.
func (v Values) Get(name string) any { return v.v[name] }

// Resolve validates conf like Validate and returns every key's value.
func (r *Registry) Resolve(conf map[string]string) (Values, error) {
	vals := Values{v: map[string]any{}}
	for _, k := range r.keys {
		if k.Default != "" {
			vals.v[k.Name], _ = k.Parse(k.Default)
		}
	}
	var probs []Problem
	names := make([]string, 0, len(conf))
	for name := range conf {
		if strings.HasPrefix(strings.ToLower(name), Prefix) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		k, ok := r.Lookup(name)
		if !ok {
			msg, shown := "unknown key", strconv.Quote(conf[name])
			s := r.suggest(name)
			if s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			// A misspelt secret is still a secret.
			if sk, _ := r.Lookup(s); sk.Type == Secret || strings.Contains(strings.ToLower(name), "secret") {
				shown = "(secret)"
			}
			probs = append(probs, Problem{name, shown, msg})
			continue
		}
		if (k.Type == String || k.Type == Secret) && k.Default == "" && strings.TrimSpace(conf[name]) == "" {
			continue // set to nothing: as if unset
		}
		v, err := k.Parse(conf[name])
		if err != nil {
			shown := strconv.Quote(conf[name])
			if k.Type == Secret {
				shown = "(secret)"
			}
			probs = append(probs, Problem{name, shown, err.Error()})
			continue
		}
		vals.v[name] = v
	}
	probs = append(probs, sparkProblems(conf)...)
	if len(probs) > 0 {
		return Values{}, &ValidationError{Problems: probs}
	}
	return vals, nil
}

// sparkProblems checks Spark's own settings that GoCaffe cannot work with.
func sparkProblems(conf map[string]string) []Problem {
	var probs []Problem
	if v, ok := conf["spark.dynamicAllocation.enabled"]; ok && strings.EqualFold(strings.TrimSpace(v), "true") {
		probs = append(probs, Problem{"spark.dynamicAllocation.enabled", strconv.Quote(v),
			"GoCaffe trains in barrier stages, which Spark refuses under dynamic allocation: set " +
				"--conf spark.dynamicAllocation.enabled=false and give the executor count (--num-executors N / spark.executor.instances)"})
	}
	return probs
}

// suggest returns the declared key closest to name, or "" when none is
// close enough to be a likely typo.
func (r *Registry) suggest(name string) string {
	best, bestD := "", -1
	lower := strings.ToLower(name)
	for _, k := range r.keys {
		d := editDistance(lower, strings.ToLower(k.Name))
		if bestD < 0 || d < bestD {
			best, bestD = k.Name, d
		}
	}
	tail := len(name) - len(Prefix)
	if bestD < 0 || bestD > max(2, tail/3) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
