package db

import (
	"errors"
	"fmt"
	"os"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

type levelDB struct{ db *leveldb.DB }

// openLevelDB reads the live files its MANIFEST lists with OpenLevelDBFiles,
// not goleveldb's database: goleveldb 1.0.0 opened read-only does not
// replay a C++ LevelDB's log when the MANIFEST's last sequence number is
// past the log's first batch (it takes the batch for corrupt and skips it),
// so records written last were missing or stale (testdata/plyvel_ranges:
// 873 of 2529 records). Nothing is written to the directory.
func openLevelDB(path string) (DB, error) {
	m, err := ReadLevelDBManifest(path)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("LevelDB %s: %w", path, err)
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	files, err := m.Files(names, m.AllTables())
	if err != nil {
		return nil, fmt.Errorf("LevelDB %s: %w", path, err)
	}
	return OpenLevelDBFiles(path, files)
}

// Len counts the records (LevelDB keeps no count).
func (d *levelDB) Len() (int, error) {
	it := d.db.NewIterator(nil, nil)
	defer it.Release()
	n := 0
	for it.Next() {
		n++
	}
	return n, it.Error()
}

func (d *levelDB) Close() error { return d.db.Close() }

func (d *levelDB) NewCursor() (Cursor, error) {
	c := &levelCursor{it: d.db.NewIterator(nil, &opt.ReadOptions{DontFillCache: true})}
	return c, c.SeekFirst()
}

type levelCursor struct {
	it    iterator.Iterator
	valid bool
}

func (c *levelCursor) Valid() bool   { return c.valid }
func (c *levelCursor) Key() []byte   { return c.it.Key() }
func (c *levelCursor) Value() []byte { return c.it.Value() }
func (c *levelCursor) Next() error   { c.valid = c.it.Next(); return c.it.Error() }
func (c *levelCursor) SeekFirst() error {
	c.valid = c.it.First()
	return c.it.Error()
}
func (c *levelCursor) Seek(key []byte) error { c.valid = c.it.Seek(key); return c.it.Error() }
func (c *levelCursor) Close() error          { c.it.Release(); return nil }

type levelWriter struct {
	db    *leveldb.DB
	batch leveldb.Batch
}

func createLevelDB(path string) (Writer, error) {
	d, err := leveldb.OpenFile(path, &opt.Options{ErrorIfExist: true, WriteBuffer: 32 << 20})
	if err != nil {
		return nil, err
	}
	return &levelWriter{db: d}, nil
}

func (w *levelWriter) Put(key, value []byte) error { w.batch.Put(key, value); return nil }

func (w *levelWriter) Commit() error {
	if w.batch.Len() == 0 {
		return nil
	}
	err := w.db.Write(&w.batch, nil)
	w.batch.Reset()
	return err
}

func (w *levelWriter) Close() error {
	err := w.Commit()
	return errors.Join(err, w.db.Close())
}
