package db

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// BenchmarkLevelDBScan reads a 20,000-record LevelDB of MNIST-sized values
// (784 bytes, 15 MiB in tables and a log) in key order: through Open (the MANIFEST's live tables and
// logs merged by OpenLevelDBFiles) and through goleveldb's own read-only
// database, which Open used before.
func BenchmarkLevelDBScan(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "db")
	// A 1 MiB write buffer: most records in tables (several levels), the
	// last ones in the log.
	w, err := leveldb.OpenFile(dir, &opt.Options{WriteBuffer: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	v := make([]byte, 784)
	for i := 0; i < 20000; i++ {
		for j := range v {
			v[j] = byte(i*7 + j)
		}
		if err := w.Put([]byte(fmt.Sprintf("%08d", i)), v, nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	scan := func(b *testing.B, open func() (DB, error)) {
		for i := 0; i < b.N; i++ {
			d, err := open()
			if err != nil {
				b.Fatal(err)
			}
			c, err := d.NewCursor()
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for c.Valid() {
				n++
				if err := c.Next(); err != nil {
					b.Fatal(err)
				}
			}
			c.Close()
			d.Close()
			if n != 20000 {
				b.Fatalf("%d records", n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/20000, "ns/record")
	}
	b.Run("manifest", func(b *testing.B) { scan(b, func() (DB, error) { return Open(LevelDB, dir) }) })
	b.Run("goleveldb", func(b *testing.B) {
		scan(b, func() (DB, error) {
			d, err := leveldb.OpenFile(dir, &opt.Options{ReadOnly: true, ErrorIfMissing: true})
			if err != nil {
				return nil, err
			}
			return &levelDB{db: d}, nil
		})
	})
}
