package db

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// fixtureValue is the value scripts/gen_db_fixtures.py stores under key i
// (a hand-encoded Datum).
func fixtureValue(i int) []byte {
	h, w := 2, 3
	data := make([]byte, 6)
	for j := range data {
		data[j] = byte(10*i + j)
	}
	if i == 5 {
		h, w, data = 64, 64, bytes.Repeat([]byte{7}, 4096)
	}
	v := []byte{0x08, 1, 0x10}
	v = appendVarint(v, h)
	v = append(v, 0x18)
	v = appendVarint(v, w)
	v = append(v, 0x22)
	v = appendVarint(v, len(data))
	v = append(v, data...)
	return append(v, 0x28, byte(i))
}

func appendVarint(b []byte, n int) []byte {
	for n >= 0x80 {
		b = append(b, byte(n)|0x80)
		n >>= 7
	}
	return append(b, byte(n))
}

// readAll walks a database with a cursor and returns its keys and values.
func readAll(t *testing.T, d DB) (keys, values []string) {
	t.Helper()
	c, err := d.NewCursor()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for ; c.Valid(); err = c.Next() {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, string(c.Key()))
		values = append(values, string(c.Value()))
	}
	if err != nil {
		t.Fatal(err)
	}
	return keys, values
}

// copyDir copies a fixture so tests can change its permissions.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestReadIndependentWriters reads an LMDB written by py-lmdb (opened
// without a lock, from read-only files in a read-only folder) and a LevelDB
// written by plyvel (C++ LevelDB, one Snappy-compressed table plus a log),
// both written out of key order: records come back in key order.
func TestReadIndependentWriters(t *testing.T) {
	for _, c := range []struct {
		b    Backend
		path string
	}{{LMDB, "testdata/pylmdb"}, {LevelDB, "testdata/plyvel"}} {
		t.Run(Name(c.b), func(t *testing.T) {
			path := copyDir(t, c.path)
			if c.b == LMDB {
				if err := os.Chmod(filepath.Join(path, "data.mdb"), 0o444); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, 0o555); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Chmod(path, 0o755) })
			}
			d, err := Open(c.b, path)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if n, err := d.Len(); err != nil || n != 6 {
				t.Fatalf("Len = %d, %v; want 6", n, err)
			}
			keys, values := readAll(t, d)
			if len(keys) != 6 {
				t.Fatalf("read %d records, want 6: %q", len(keys), keys)
			}
			for i := range keys {
				if want := fmt.Sprintf("%08d", i); keys[i] != want {
					t.Errorf("record %d: key %q, want %q", i, keys[i], want)
				}
				if values[i] != string(fixtureValue(i)) {
					t.Errorf("record %d (%s): value differs from the writer's", i, keys[i])
				}
			}
			// Seek lands on the first key >= the one asked for.
			cur, err := d.NewCursor()
			if err != nil {
				t.Fatal(err)
			}
			defer cur.Close()
			if err := cur.Seek([]byte("00000002x")); err != nil || !cur.Valid() || string(cur.Key()) != "00000003" {
				t.Errorf("Seek(00000002x) = %q valid=%v, %v; want 00000003", cur.Key(), cur.Valid(), err)
			}
			if err := cur.Seek([]byte("1")); err != nil || cur.Valid() {
				t.Errorf("Seek past the end: valid=%v, %v", cur.Valid(), err)
			}
			if err := cur.SeekFirst(); err != nil || string(cur.Key()) != "00000000" {
				t.Errorf("SeekFirst: %q, %v", cur.Key(), err)
			}
			if _, err := os.Stat(filepath.Join(path, "lock.mdb")); c.b == LMDB && err == nil {
				t.Error("reading the LMDB created lock.mdb: it must open without a lock")
			}
		})
	}
}

// TestWriteThenRead writes more records than fit the initial LMDB map (it
// must grow) and commits in several transactions, then reads them back.
func TestWriteThenRead(t *testing.T) {
	for _, b := range []Backend{LMDB, LevelDB} {
		t.Run(Name(b), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db")
			w, err := Create(b, path)
			if err != nil {
				t.Fatal(err)
			}
			val := bytes.Repeat([]byte{1, 2, 3, 4}, 16<<10) // 64 KiB
			n := 1500                                       // ~94 MiB > the 64 MiB initial LMDB map
			if b == LevelDB {
				n = 50
			}
			for i := n - 1; i >= 0; i-- {
				val[0] = byte(i)
				if err := w.Put([]byte(fmt.Sprintf("%08d", i)), val); err != nil {
					t.Fatal(err)
				}
				if i%500 == 0 {
					if err := w.Commit(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := Create(b, path); err == nil {
				t.Error("Create over an existing database: no error")
			}
			d, err := Open(b, path)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			keys, values := readAll(t, d)
			if len(keys) != n {
				t.Fatalf("read %d records, want %d", len(keys), n)
			}
			for i, k := range keys {
				if k != fmt.Sprintf("%08d", i) || values[i][0] != byte(i) || len(values[i]) != len(val) {
					t.Fatalf("record %d: key %q, value[0] %d len %d", i, k, values[i][0], len(values[i]))
				}
			}
		})
	}
}

func TestOpenMissing(t *testing.T) {
	for _, b := range []Backend{LMDB, LevelDB} {
		path := filepath.Join(t.TempDir(), "nope_"+Name(b))
		_, err := Open(b, path)
		if !errors.Is(err, ErrMissing) || !bytes.Contains([]byte(err.Error()), []byte(path)) {
			t.Errorf("%s: Open(missing) = %v, want ErrMissing naming the path", Name(b), err)
		}
	}
	// A folder that is not a database of that kind.
	dir := t.TempDir()
	if _, err := Open(LMDB, dir); err == nil {
		t.Error("Open(LMDB, empty folder): no error")
	}
	if _, err := Open(LevelDB, dir); err == nil {
		t.Error("Open(LevelDB, empty folder): no error")
	}
	if _, err := ParseBackend("rocksdb"); err == nil {
		t.Error("ParseBackend(rocksdb): no error")
	}
}
