package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/gocaffe/gocaffe/caffe/hdf5io"
)

// The Spark shim reads Caffe's HDF5Data layers through these two commands,
// as it reads databases through db-split and db-rows: h5-split on the driver
// checks the list and every file's headers and counts their rows, h5-rows
// on an executor streams one row range of one file.

func runH5Split(args []string) error { return h5Split(args, os.Stdout, os.Stderr) }

// h5Split checks an hdf5_data_param.source list before anything is read:
// every file exists and holds a numeric dataset per top, a file's datasets
// have the same first axis, and every file's rows of a top have the same
// shape (of at most 3 axes: a Spark-fed top's shape is C, C×H or C×H×W).
// Only headers are read. It prints, one line each: every top's row shape
// (the top's name, a tab, its dimensions space-separated, none for one
// value per row), then every file's row count, a tab and its absolute path
// (a relative path in the list is taken from the working directory, as
// Caffe does).
func h5Split(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("h5-split", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tops := fs.String("tops", "", "comma-separated dataset names (the layer's tops)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("want one list file, got %q", pos)
	}
	names := splitTops(*tops)
	if len(names) == 0 {
		return fmt.Errorf("-tops: no dataset named")
	}
	files, err := hdf5io.ReadList(pos[0])
	if err != nil {
		return err
	}
	var first [][]int
	type file struct {
		rows int
		path string
	}
	var out []file
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return fmt.Errorf("HDF5 file %s (listed in %s): %w", f, pos[0], err)
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("HDF5 file %s (listed in %s): %w", f, pos[0], err)
		}
		shapes, err := hdf5io.Shapes(abs, names)
		if err != nil {
			return err
		}
		for k, s := range shapes {
			if s[0] == 0 {
				return fmt.Errorf("HDF5 file %s: dataset %q has no rows", abs, names[k])
			}
			if s[0] != shapes[0][0] {
				return fmt.Errorf("HDF5 file %s: dataset %q has %d rows, dataset %q %d (all tops share the first axis)",
					abs, names[k], s[0], names[0], shapes[0][0])
			}
			if len(s) > 4 {
				return fmt.Errorf("HDF5 file %s: dataset %q has rows of shape %v: on Spark a top's rows have at most 3 axes",
					abs, names[k], s[1:])
			}
			if first != nil && fmt.Sprint(s[1:]) != fmt.Sprint(first[k][1:]) {
				return fmt.Errorf("HDF5 file %s: dataset %q has rows of shape %v, the first file's (%s) %v",
					abs, names[k], s[1:], out[0].path, first[k][1:])
			}
		}
		if first == nil {
			first = shapes
		}
		out = append(out, file{shapes[0][0], abs})
	}
	w := bufio.NewWriter(stdout)
	for k, name := range names {
		dims := make([]string, 0, 3)
		for _, d := range first[k][1:] {
			dims = append(dims, fmt.Sprint(d))
		}
		fmt.Fprintf(w, "%s\t%s\n", name, strings.Join(dims, " "))
	}
	for _, f := range out {
		fmt.Fprintf(w, "%d\t%s\n", f.rows, f.path)
	}
	return w.Flush()
}

func splitTops(s string) []string {
	var names []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}

func runH5Rows(args []string) error { return h5Rows(args, os.Stdout, os.Stderr) }

// h5Rows streams rows [-start, -start + -count) of one HDF5 file's
// datasets named by -tops: row after row, each top's values in turn as
// big-endian float32 (any integer or float type, read as float).
func h5Rows(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("h5-rows", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tops := fs.String("tops", "", "comma-separated dataset names (the layer's tops)")
	start := fs.Int("start", 0, "first row")
	count := fs.Int("count", -1, "rows to stream (-1: to the end)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("want one HDF5 file, got %q", pos)
	}
	names := splitTops(*tops)
	if len(names) == 0 {
		return fmt.Errorf("-tops: no dataset named")
	}
	sets, err := hdf5io.Read(pos[0], names)
	if err != nil {
		return err
	}
	rows := sets[0].Rows()
	for k, s := range sets {
		if s.Rows() != rows {
			return fmt.Errorf("HDF5 file %s: dataset %q has %d rows, dataset %q %d (all tops share the first axis)",
				pos[0], names[k], s.Rows(), names[0], rows)
		}
	}
	n := *count
	if n < 0 {
		n = rows - *start
	}
	if *start < 0 || n < 0 || *start+n > rows {
		return fmt.Errorf("HDF5 file %s: rows [%d, %d) asked for, it has %d", pos[0], *start, *start+n, rows)
	}
	w := bufio.NewWriterSize(stdout, 1<<20)
	var b [4]byte
	for r := *start; r < *start+n; r++ {
		for _, s := range sets {
			per := len(s.Data) / rows
			for _, v := range s.Data[r*per : (r+1)*per] {
				binary.BigEndian.PutUint32(b[:], math.Float32bits(v))
				if _, err := w.Write(b[:]); err != nil {
					return err
				}
			}
		}
	}
	return w.Flush()
}
