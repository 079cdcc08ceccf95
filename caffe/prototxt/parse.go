// Package prototxt reads and writes Caffe's text formats: net and solver
// .prototxt files.
//
// Parsing accepts everything Caffe's text parser accepts in practice (#
// comments, enum names or numbers, repeated fields written one per line or as
// [a, b] lists, single- or double-quoted strings) and upgrades legacy nets
// (V0, V1, input fields) and solvers (solver_type) to the current form as
// Caffe does, so old Model Zoo files load. Errors are *ParseError values
// carrying the file name, line and column.
//
// Printing uses Caffe's own layout (fields in field-number order, two-space
// indent, `name {` for messages), so files written here read like files
// written by Caffe's tools.
package prototxt

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// ParseError is a syntax or schema error in a prototxt file.
type ParseError struct {
	// File is the name given to the parser (a path or a label).
	File string
	// Line and Column are 1-based; 0 when the error has no position (for
	// example a required field missing at the end of the input).
	Line, Column int
	// Msg describes the problem.
	Msg string
}

func (e *ParseError) Error() string {
	switch {
	case e.Line > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	default:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
}

// posRE finds the "(line L:C)" position that protobuf-go puts in its errors.
var posRE = regexp.MustCompile(`\(line (\d+):(\d+)\):?\s*`)

// newParseError turns a prototext error into a *ParseError.
func newParseError(file string, src []byte, err error) *ParseError {
	msg := err.Error()
	// protobuf-go separates its prefix with a space or, at random, a
	// non-breaking space (to stop callers from matching on the text).
	if rest, ok := strings.CutPrefix(msg, "proto:"); ok {
		msg = strings.TrimLeft(rest, " \u00a0")
	}
	pe := &ParseError{File: file}
	if m := posRE.FindStringSubmatchIndex(msg); m != nil {
		pe.Line, _ = strconv.Atoi(msg[m[2]:m[3]])
		pe.Column, _ = strconv.Atoi(msg[m[4]:m[5]])
		msg = strings.TrimSpace(msg[:m[0]] + msg[m[1]:])
	}
	if pe.Line == 0 && strings.Contains(msg, "unexpected EOF") {
		pe.Line, pe.Column = endPosition(src)
	}
	if name, ok := strings.CutPrefix(msg, "unknown field: "); ok {
		if near := nearFieldNames(name); len(near) > 0 {
			msg += " (did you mean " + strings.Join(near, " or ") + "?)"
		}
	}
	pe.Msg = msg
	return pe
}

// nearFieldNames returns the field names of Caffe's schema within edit
// distance 2 of name (at most three, closest first).
func nearFieldNames(name string) []string {
	if len(name) > 64 {
		return nil
	}
	type cand struct {
		name string
		d    int
	}
	var cands []cand
	seen := map[string]bool{}
	msgs := caffepb.File_caffe_caffepb_caffe_proto.Messages()
	var visit func(md protoreflect.MessageDescriptors)
	visit = func(md protoreflect.MessageDescriptors) {
		for i := 0; i < md.Len(); i++ {
			m := md.Get(i)
			for j := 0; j < m.Fields().Len(); j++ {
				f := string(m.Fields().Get(j).Name())
				if seen[f] || f == name || len(f) < len(name)-2 || len(f) > len(name)+2 {
					continue
				}
				seen[f] = true
				if d := editDistance(name, f); d <= 2 {
					cands = append(cands, cand{f, d})
				}
			}
			visit(m.Messages())
		}
	}
	visit(msgs)
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].d != cands[j].d {
			return cands[i].d < cands[j].d
		}
		return cands[i].name < cands[j].name
	})
	var out []string
	for i := 0; i < len(cands) && i < 3; i++ {
		out = append(out, strconv.Quote(cands[i].name))
	}
	return out
}

// editDistance is the optimal-string-alignment distance between a and b
// (insertions, deletions, substitutions and adjacent swaps cost 1).
func editDistance(a, b string) int {
	rows := make([][]int, len(a)+1)
	for i := range rows {
		rows[i] = make([]int, len(b)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d := min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d = min(d, rows[i-2][j-2]+1)
			}
			rows[i][j] = d
		}
	}
	return rows[len(a)][len(b)]
}

// endPosition returns the 1-based line and column just past the end of src.
func endPosition(src []byte) (line, col int) {
	line = 1 + bytes.Count(src, []byte("\n"))
	last := bytes.LastIndexByte(src, '\n')
	col = 1 + utf8.RuneCount(src[last+1:])
	return line, col
}

// Option adjusts parsing.
type Option func(*options)

type options struct {
	warn func(string)
}

// WithWarnings passes each non-fatal upgrade problem (a legacy setting that
// was dropped, as Caffe logs and ignores it) to f.
func WithWarnings(f func(msg string)) Option {
	return func(o *options) { o.warn = f }
}

func collect(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Unmarshal parses prototxt src into m with no upgrades; name labels errors.
func Unmarshal(name string, src []byte, m proto.Message) error {
	if err := (prototext.UnmarshalOptions{}).Unmarshal(src, m); err != nil {
		return newParseError(name, src, err)
	}
	return nil
}

// ParseNet parses a net prototxt and upgrades legacy forms (see UpgradeNet);
// name labels errors.
func ParseNet(name string, src []byte, opts ...Option) (*caffepb.NetParameter, error) {
	o := collect(opts)
	net := &caffepb.NetParameter{}
	if err := Unmarshal(name, src, net); err != nil {
		return nil, err
	}
	up, err := UpgradeNet(net)
	if err != nil {
		return nil, &ParseError{File: name, Msg: err.Error()}
	}
	if o.warn != nil {
		for _, w := range up.Warnings {
			o.warn(name + ": " + w)
		}
	}
	return net, nil
}

// ParseNetFile reads and parses a net prototxt file (see ParseNet).
func ParseNetFile(path string, opts ...Option) (*caffepb.NetParameter, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading net: %w", err)
	}
	return ParseNet(path, src, opts...)
}

// ParseSolver parses a solver prototxt and upgrades it (see UpgradeSolver);
// name labels errors. Paths inside stay as written: ParseSolverFile resolves
// them.
func ParseSolver(name string, src []byte) (*caffepb.SolverParameter, error) {
	sp := &caffepb.SolverParameter{}
	if err := Unmarshal(name, src, sp); err != nil {
		return nil, err
	}
	if err := UpgradeSolver(sp); err != nil {
		return nil, &ParseError{File: name, Msg: err.Error()}
	}
	return sp, nil
}

// ParseSolverFile reads and parses a solver prototxt file, then:
//
//   - resolves net, train_net and test_net relative to the solver file's
//     directory. Caffe itself resolves them against the working directory,
//     as in its examples (net: "examples/mnist/lenet_train_test.prototxt"
//     run from the Caffe root), so a relative path that does not exist
//     beside the solver but does exist from the working directory keeps
//     Caffe's meaning. Absolute paths and URIs (scheme://...) are kept.
//   - defaults snapshot_prefix as Caffe does: when unset, the solver path
//     without its extension; when it names an existing directory, that
//     directory joined with the solver file's base name without extension.
func ParseSolverFile(path string) (*caffepb.SolverParameter, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading solver: %w", err)
	}
	sp, err := ParseSolver(path, src)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if sp.Net != nil {
		sp.Net = proto.String(ResolvePath(dir, sp.GetNet()))
	}
	if sp.TrainNet != nil {
		sp.TrainNet = proto.String(ResolvePath(dir, sp.GetTrainNet()))
	}
	for i, p := range sp.TestNet {
		sp.TestNet[i] = ResolvePath(dir, p)
	}
	stem := strings.TrimSuffix(path, filepath.Ext(path))
	switch {
	case sp.SnapshotPrefix == nil:
		sp.SnapshotPrefix = proto.String(stem)
	case isDir(sp.GetSnapshotPrefix()):
		sp.SnapshotPrefix = proto.String(filepath.Join(sp.GetSnapshotPrefix(), filepath.Base(stem)))
	}
	return sp, nil
}

// ResolvePath resolves a path p found in a file in directory dir: absolute
// paths and URIs are returned unchanged; a relative path is joined to dir,
// unless it exists only relative to the working directory (Caffe's reading
// of it), in which case it is returned unchanged.
func ResolvePath(dir, p string) string {
	if p == "" || filepath.IsAbs(p) || strings.Contains(p, "://") {
		return p
	}
	joined := filepath.Join(dir, p)
	if !exists(joined) && exists(p) {
		return p
	}
	return joined
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// IsParseError reports whether err is (or wraps) a *ParseError and returns it.
func IsParseError(err error) (*ParseError, bool) {
	var pe *ParseError
	ok := errors.As(err, &pe)
	return pe, ok
}
