package db

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rangesFixture is scripts/gen_db_fixtures.py's plyvel_ranges: C++ LevelDB
// tables on several levels whose key ranges overlap, overwrites, deletes
// and writes left in the log.
const rangesFixture = "testdata/plyvel_ranges"

type kv struct{ k, v string }

func readRange(t *testing.T, d DB, start, end []byte) []kv {
	t.Helper()
	c, err := d.NewCursor()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Seek(start); err != nil {
		t.Fatal(err)
	}
	var out []kv
	for c.Valid() && (end == nil || bytes.Compare(c.Key(), end) < 0) {
		out = append(out, kv{string(c.Key()), string(c.Value())})
		if err := c.Next(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// copyFiles copies the named files of the fixture into a new directory,
// so that a reader cannot reach the others.
func copyFiles(t *testing.T, names []string) string { return copyFilesFrom(t, rangesFixture, names) }

// liveLogs names the fixture's live write-ahead logs.
func liveLogs(t *testing.T, m *LevelDBManifest) []string {
	t.Helper()
	ents, err := os.ReadDir(rangesFixture)
	if err != nil {
		t.Fatal(err)
	}
	var logs []string
	for _, e := range ents {
		if n, kind, err := levelFileNum(e.Name()); err == nil && kind == "log" && m.LiveLog(n) {
			logs = append(logs, e.Name())
		}
	}
	return logs
}

// wantRanges reads plyvel_ranges.want: C++ LevelDB's records of the
// fixture, each key with the SHA-256 of its value.
func wantRanges(t *testing.T) []kv {
	t.Helper()
	b, err := os.ReadFile(rangesFixture + ".want")
	if err != nil {
		t.Fatal(err)
	}
	var out []kv
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, h, _ := strings.Cut(l, " ")
		out = append(out, kv{k, h})
	}
	return out
}

func hashed(recs []kv) []kv {
	out := make([]kv, len(recs))
	for i, r := range recs {
		out[i] = kv{r.k, fmt.Sprintf("%x", sha256.Sum256([]byte(r.v)))}
	}
	return out
}

// Each key range read from only its own tables and the live log gives the
// records C++ LevelDB gives reading the whole database (it replays the log,
// merges the overlapping tables, and hides overwritten and deleted entries).
func TestLevelDBRangesMatchWholeDB(t *testing.T) {
	want := wantRanges(t)
	m, err := ReadLevelDBManifest(rangesFixture)
	if err != nil {
		t.Fatal(err)
	}
	// The fixture must exercise what this reads: several tables, two of them
	// overlapping, several levels, and a log with records.
	levels := map[int]bool{}
	overlap := false
	for i, a := range m.Tables {
		levels[a.Level] = true
		for _, b := range m.Tables[i+1:] {
			if bytes.Compare(a.Smallest, b.Largest) <= 0 && bytes.Compare(b.Smallest, a.Largest) <= 0 {
				overlap = true
			}
		}
	}
	logs := liveLogs(t, m)
	if len(m.Tables) < 4 || len(levels) < 2 || !overlap || len(logs) != 1 {
		t.Fatalf("fixture has %d tables on levels %v (overlapping: %v) and live logs %v; want >= 4 tables on >= 2 levels, some overlapping, one log",
			len(m.Tables), levels, overlap, logs)
	}
	if st, _ := os.Stat(filepath.Join(rangesFixture, logs[0])); st.Size() == 0 {
		t.Fatal("the fixture's log is empty")
	}
	// Overwrites and deletes are in the data: label 4 (the log's), and keys missing.
	if len(want) >= 3000 || len(want) < 2000 {
		t.Fatalf("whole database has %d records, want between 2000 and 3000 (deletes)", len(want))
	}
	logRecs, err := LevelDBLogRecords(rangesFixture, logs)
	if err != nil {
		t.Fatal(err)
	}
	names := map[uint64]string{}
	for _, tb := range m.Tables {
		names[tb.Num] = fmt.Sprintf("%06d.ldb", tb.Num)
	}
	for _, parts := range []int{1, 2, 3, 5, 8} {
		ranges := m.SplitByTables(parts, logRecs)
		if len(ranges) != parts {
			t.Fatalf("%d parts: %d ranges", parts, len(ranges))
		}
		var got []kv
		fewer := false
		nonEmpty := 0
		for j, r := range ranges {
			if r.Empty {
				continue
			}
			files := append([]string(nil), logs...)
			for _, n := range r.Tables {
				files = append(files, names[n])
			}
			if len(r.Tables) < len(m.Tables) {
				fewer = true
			}
			d, err := OpenLevelDBFiles(copyFiles(t, files), files)
			if err != nil {
				t.Fatalf("%d parts, range %d: %v", parts, j, err)
			}
			recs := readRange(t, d, r.Start, r.End)
			d.Close()
			if len(recs) > 0 {
				nonEmpty++
			}
			got = append(got, recs...)
		}
		if parts > 1 && nonEmpty < 2 {
			t.Errorf("%d parts: %d ranges hold records, want at least 2", parts, nonEmpty)
		}
		if parts > 1 && !fewer {
			t.Errorf("%d parts: every range needs all %d tables", parts, len(m.Tables))
		}
		got = hashed(got)
		if len(got) != len(want) {
			t.Fatalf("%d parts: %d records, want %d", parts, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%d parts: record %d is key %q (value SHA-256 %s), want key %q (%s)", parts, i,
					got[i].k, got[i].v, want[i].k, want[i].v)
			}
		}
	}
}

func copyFilesFrom(t *testing.T, src string, names []string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLevelDBManifestBadInput(t *testing.T) {
	dir := copyDir(t, rangesFixture)
	cur, _ := os.ReadFile(filepath.Join(dir, "CURRENT"))
	manifest := filepath.Join(dir, strings.TrimSpace(string(cur)))
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x55
	if err := os.WriteFile(manifest, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ReadLevelDBManifest(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Base(manifest)) || !strings.Contains(err.Error(), "record") {
		t.Errorf("corrupt MANIFEST: got %v, want an error naming %s and the record", err, filepath.Base(manifest))
	}
	if _, err := ReadLevelDBManifest(t.TempDir()); err == nil || !strings.Contains(err.Error(), "CURRENT") {
		t.Errorf("no CURRENT: got %v", err)
	}
	// A table that is not there, and one that is no table.
	if _, err := OpenLevelDBFiles(t.TempDir(), []string{"000042.ldb"}); err == nil || !strings.Contains(err.Error(), "000042.ldb") {
		t.Errorf("missing table: got %v, want an error naming 000042.ldb", err)
	}
	junk := t.TempDir()
	os.WriteFile(filepath.Join(junk, "000007.ldb"), bytes.Repeat([]byte{1}, 100), 0o644)
	d, err := OpenLevelDBFiles(junk, []string{"000007.ldb"})
	if err == nil {
		_, err = d.Len()
		d.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "000007.ldb") {
		t.Errorf("corrupt table: got %v, want an error naming 000007.ldb", err)
	}
}

// The whole database opened as Caffe's Data layer opens it reads what C++
// LevelDB reads.
func TestLevelDBWholeMatchesCxx(t *testing.T) {
	d, err := Open(LevelDB, copyDir(t, rangesFixture))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, want := hashed(readRange(t, d, nil, nil)), wantRanges(t)
	bad := 0
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			if bad == 0 {
				t.Errorf("record %d is key %q (value SHA-256 %s), want key %q (%s)", i, got[i].k, got[i].v, want[i].k, want[i].v)
			}
			bad++
		}
	}
	if bad > 0 || len(got) != len(want) {
		t.Errorf("%d records, want %d; %d of them differ", len(got), len(want), bad)
	}
}

// A database all in its log (written with a write buffer bigger than its
// data, never reopened: no table at all) is cut by the log's keys.
func TestLevelDBAllLogSplit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	w, err := Create(LevelDB, dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		w.Put([]byte(fmt.Sprintf("%05d", i)), bytes.Repeat([]byte{byte(i)}, 100))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := ReadLevelDBManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	logs, err := m.Files(names, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Tables) != 0 || len(logs) != 1 {
		t.Fatalf("%d tables, logs %v: want an all-log database", len(m.Tables), logs)
	}
	recs, err := LevelDBLogRecords(dir, logs)
	if err != nil || len(recs) != 300 {
		t.Fatalf("%d log records, %v; want 300", len(recs), err)
	}
	total := 0
	for j, r := range m.SplitByTables(3, recs) {
		if r.Empty {
			t.Fatalf("range %d is empty", j)
		}
		d, err := OpenLevelDBFiles(dir, logs)
		if err != nil {
			t.Fatal(err)
		}
		n := len(readRange(t, d, r.Start, r.End))
		d.Close()
		if n < 80 || n > 120 {
			t.Errorf("range %d [%q, %q): %d records, want about 100", j, r.Start, r.End, n)
		}
		total += n
	}
	if total != 300 {
		t.Errorf("ranges hold %d records, want 300", total)
	}
}
