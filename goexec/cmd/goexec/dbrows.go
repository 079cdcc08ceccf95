package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/data"
	"github.com/gocaffe/gocaffe/caffe/db"
	"github.com/gocaffe/gocaffe/caffe/layers"
)

// The Spark shim reads LMDB and LevelDB databases through these two
// commands (the JVM has no LMDB reader of its own): db-split on the driver
// cuts a database into key ranges, db-rows on an executor streams one
// range's records.

func runDBSplit(args []string) error { return dbSplit(args, os.Stdout, os.Stderr) }

// dbSplit prints the record count, then one hex start key per range. With
// -shape it first prints the C H W a Caffe Data layer takes from the first
// usable record (encoded images decoded as -force-color/-force-gray say).
func dbSplit(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("db-split", flag.ContinueOnError)
	fs.SetOutput(stderr)
	backend := fs.String("backend", "lmdb", "lmdb or leveldb")
	parts := fs.Int("parts", 1, "number of key ranges")
	shape := fs.Bool("shape", false, "first print the sample shape C H W of the first usable record")
	forceColor := fs.Bool("force-color", false, "decode encoded images as colour (transform_param.force_color)")
	forceGray := fs.Bool("force-gray", false, "decode encoded images as gray (transform_param.force_gray)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("want one database path, got %q", pos)
	}
	b, err := db.ParseBackend(*backend)
	if err != nil {
		return err
	}
	if *shape {
		tp := &caffepb.TransformationParameter{ForceColor: forceColor, ForceGray: forceGray}
		c, h, w, err := layers.PeekDatumShape(b, pos[0], tp)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, c, h, w)
	}
	n, starts, err := data.SplitKeys(b, pos[0], *parts)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, n)
	for _, s := range starts {
		fmt.Fprintln(stdout, hex.EncodeToString(s))
	}
	return nil
}

func runDBRows(args []string) error { return dbRows(args, os.Stdout, os.Stderr) }

// dbRows streams the Datums of keys in [-start, -end) to stdout, each as
// big-endian: int32 key length, key, int32 label, int32 channels, height,
// width, byte encoded, int32 data length, data; then int32 -1. Records that
// are not usable Datums are named on stderr ("bad record KEY: why") and
// skipped; more than -max-bad of the range is an error naming the first.
func dbRows(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("db-rows", flag.ContinueOnError)
	fs.SetOutput(stderr)
	backend := fs.String("backend", "lmdb", "lmdb or leveldb")
	startHex := fs.String("start", "", "first key, hex (empty: the first record)")
	endHex := fs.String("end", "", "key past the range, hex (empty: to the end)")
	maxBad := fs.Float64("max-bad", data.DefaultMaxBadShare, "share of the range's records that may be unusable")
	files := fs.String("files", "", "LevelDB only: read only these comma-separated table and log files of the directory "+
		"(those ldb-plan chose for the range)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("want one database path, got %q", pos)
	}
	b, err := db.ParseBackend(*backend)
	if err != nil {
		return err
	}
	var r data.KeyRange
	if *startHex != "" {
		if r.Start, err = hex.DecodeString(*startHex); err != nil {
			return fmt.Errorf("-start %q: %w", *startHex, err)
		}
	}
	if *endHex != "" {
		if r.End, err = hex.DecodeString(*endHex); err != nil {
			return fmt.Errorf("-end %q: %w", *endHex, err)
		}
	}
	var d db.DB
	if *files != "" {
		if b != db.LevelDB {
			return fmt.Errorf("-files is for -backend leveldb")
		}
		d, err = db.OpenLevelDBFiles(pos[0], strings.Split(*files, ","))
	} else {
		d, err = db.Open(b, pos[0])
	}
	if err != nil {
		return err
	}
	defer d.Close()
	cur, err := d.NewCursor()
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	defer cur.Close()
	if err := cur.Seek(r.Start); err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	w := bufio.NewWriterSize(stdout, 1<<20)
	be := binary.BigEndian
	var bad []string
	n := 0
	for ; cur.Valid() && (r.End == nil || string(cur.Key()) < string(r.End)); err = cur.Next() {
		if err != nil {
			return fmt.Errorf("%s: %w", pos[0], err)
		}
		n++
		var dt caffepb.Datum
		why := ""
		switch err := proto.Unmarshal(cur.Value(), &dt); {
		case err != nil:
			why = "not a Datum: " + err.Error()
		case len(dt.GetData()) == 0:
			why = "no data bytes (float_data Datums are not read on Spark, as in CaffeOnSpark)"
		case !dt.GetEncoded() && int(dt.GetChannels())*int(dt.GetHeight())*int(dt.GetWidth()) != len(dt.GetData()):
			why = fmt.Sprintf("%d data bytes for %d×%d×%d", len(dt.GetData()), dt.GetChannels(), dt.GetHeight(), dt.GetWidth())
		}
		if why != "" {
			bad = append(bad, fmt.Sprintf("key %q: %s", cur.Key(), why))
			fmt.Fprintf(stderr, "bad record %s\n", bad[len(bad)-1])
			continue
		}
		k := cur.Key()
		var hdr [4]byte
		put := func(v int32) { be.PutUint32(hdr[:], uint32(v)); w.Write(hdr[:]) }
		put(int32(len(k)))
		w.Write(k)
		put(dt.GetLabel())
		put(dt.GetChannels())
		put(dt.GetHeight())
		put(dt.GetWidth())
		if dt.GetEncoded() {
			w.WriteByte(1)
		} else {
			w.WriteByte(0)
		}
		put(int32(len(dt.GetData())))
		if _, err := w.Write(dt.GetData()); err != nil {
			return err
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	if len(bad) > int(*maxBad*float64(n)) {
		return fmt.Errorf("%s %s: %d of %d records unusable, first: %s", db.Name(b), pos[0], len(bad), n,
			strings.Join(bad[:min(3, len(bad))], "; "))
	}
	var end [4]byte
	be.PutUint32(end[:], 0xffffffff)
	w.Write(end[:])
	return errors.Join(w.Flush())
}

func runLDBPlan(args []string) error { return ldbPlan(args, os.Stdout, os.Stderr) }

// ldbPlan cuts a LevelDB into key ranges from its MANIFEST and live logs
// alone, for a database on a remote file system: DIR holds a copy of its
// CURRENT, the MANIFEST that names and its live logs (no table), -listing
// the names of the files in the database's directory, one per line. It prints one line per range: "range", the hex
// start and end keys (empty: unbounded) and the comma-separated files a
// reader of the range needs (its tables and the live logs), tab-separated;
// or "empty" for a range with nothing in it.
func ldbPlan(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ldb-plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	parts := fs.Int("parts", 1, "number of key ranges")
	listing := fs.String("listing", "", "file naming the database directory's files, one per line")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *listing == "" {
		return fmt.Errorf("want -listing FILE and one directory holding CURRENT and the MANIFEST, got %q", pos)
	}
	m, err := db.ReadLevelDBManifest(pos[0])
	if err != nil {
		return err
	}
	lb, err := os.ReadFile(*listing)
	if err != nil {
		return err
	}
	names := strings.Fields(string(lb))
	// The live logs, copied into DIR beside the MANIFEST: their keys are
	// cut too (a database written with a big write buffer may be all log).
	live, err := m.Files(names, nil)
	if err != nil {
		return err
	}
	logs, err := db.LevelDBLogRecords(pos[0], live)
	if err != nil {
		return err
	}
	for _, r := range m.SplitByTables(*parts, logs) {
		if r.Empty {
			fmt.Fprintln(stdout, "empty")
			continue
		}
		files, err := m.Files(names, r.Tables)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "range\t%s\t%s\t%s\n", hex.EncodeToString(r.Start), hex.EncodeToString(r.End), strings.Join(files, ","))
	}
	return nil
}
