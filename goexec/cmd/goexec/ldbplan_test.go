package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rowKeys walks db-rows' stream and returns its keys and labels.
func rowKeys(t *testing.T, b []byte) (keys []string, labels []int32) {
	t.Helper()
	for {
		kl := int32(binary.BigEndian.Uint32(b))
		if kl < 0 {
			return
		}
		keys = append(keys, string(b[4:4+kl]))
		b = b[4+kl:]
		labels = append(labels, int32(binary.BigEndian.Uint32(b)))
		dl := binary.BigEndian.Uint32(b[17:])
		b = b[21+dl:]
	}
}

// ldb-plan cuts a LevelDB from its MANIFEST and log alone (a directory
// holding only CURRENT, the MANIFEST and the log, plus the real directory's
// listing); db-rows
// -files reads each range from a directory holding only the files the plan
// named for it; the ranges together are the whole database in key order.
func TestLDBPlanAndRows(t *testing.T) {
	src := filepath.Join("..", "..", "..", "caffe", "db", "testdata", "plyvel_ranges")
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	copyTo := func(files ...string) string {
		dir := t.TempDir()
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(src, f))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, f), b, 0o644)
		}
		return dir
	}
	meta := copyTo("CURRENT", "MANIFEST-000002", "000016.log")
	listing := filepath.Join(t.TempDir(), "listing")
	os.WriteFile(listing, []byte(strings.Join(names, "\n")), 0o644)

	var whole, errb bytes.Buffer
	if err := dbRows([]string{"-backend", "leveldb", copyTo(names...)}, &whole, &errb); err != nil {
		t.Fatal(err)
	}
	wantKeys, wantLabels := rowKeys(t, whole.Bytes())

	var plan bytes.Buffer
	if err := ldbPlan([]string{"-parts", "3", "-listing", listing, meta}, &plan, &errb); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(plan.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("ldb-plan printed %q, want 3 ranges", lines)
	}
	var keys []string
	var labels []int32
	for i, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) != 4 || f[0] != "range" {
			t.Fatalf("range %d: %q", i, l)
		}
		files := strings.Split(f[3], ",")
		if len(files) >= len(names)-2 || !strings.Contains(f[3], "000016.log") {
			t.Errorf("range %d needs %v: want the log and not every table", i, files)
		}
		var out bytes.Buffer
		if err := dbRows([]string{"-backend", "leveldb", "-files", f[3], "-start", f[1], "-end", f[2], copyTo(files...)}, &out, &errb); err != nil {
			t.Fatalf("range %d: %v", i, err)
		}
		k, lb := rowKeys(t, out.Bytes())
		keys, labels = append(keys, k...), append(labels, lb...)
	}
	if strings.Join(keys, ",") != strings.Join(wantKeys, ",") || len(labels) != len(wantLabels) {
		t.Fatalf("ranges gave %d records, want the whole database's %d", len(keys), len(wantKeys))
	}
	for i := range labels {
		if labels[i] != wantLabels[i] {
			t.Fatalf("record %s: label %d, want %d", keys[i], labels[i], wantLabels[i])
		}
	}

	// A table the MANIFEST lists that is not in the listing: named.
	os.WriteFile(listing, []byte("CURRENT\nMANIFEST-000002\n000016.log\n000005.ldb\n"), 0o644)
	err = ldbPlan([]string{"-parts", "2", "-listing", listing, meta}, &plan, &errb)
	if err == nil || !strings.Contains(err.Error(), ".ldb, live in MANIFEST-000002, is missing") {
		t.Errorf("missing table: got %v", err)
	}
}
