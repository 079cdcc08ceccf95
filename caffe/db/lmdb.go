//go:build cgo

package db

import (
	"errors"
	"fmt"
	"os"

	"github.com/PowerDNS/lmdb-go/lmdb"
)

type lmdbDB struct {
	env *lmdb.Env
	dbi lmdb.DBI
}

func openLMDB(path string) (DB, error) {
	env, err := lmdb.NewEnv()
	if err != nil {
		return nil, err
	}
	flags := uint(lmdb.Readonly | lmdb.NoLock | lmdb.NoTLS)
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		flags |= lmdb.NoSubdir
	}
	if err := env.Open(path, flags, 0o444); err != nil {
		env.Close()
		return nil, err
	}
	d := &lmdbDB{env: env}
	if err := env.View(func(txn *lmdb.Txn) (err error) {
		d.dbi, err = txn.OpenRoot(0)
		return err
	}); err != nil {
		env.Close()
		return nil, err
	}
	return d, nil
}

func (d *lmdbDB) Len() (int, error) {
	st, err := d.env.Stat()
	if err != nil {
		return 0, err
	}
	return int(st.Entries), nil
}

func (d *lmdbDB) Close() error { return d.env.Close() }

func (d *lmdbDB) NewCursor() (Cursor, error) {
	txn, err := d.env.BeginTxn(nil, lmdb.Readonly)
	if err != nil {
		return nil, err
	}
	cur, err := txn.OpenCursor(d.dbi)
	if err != nil {
		txn.Abort()
		return nil, err
	}
	c := &lmdbCursor{txn: txn, cur: cur}
	return c, c.SeekFirst()
}

type lmdbCursor struct {
	txn        *lmdb.Txn
	cur        *lmdb.Cursor
	key, value []byte
	valid      bool
}

func (c *lmdbCursor) get(key []byte, op uint) error {
	k, v, err := c.cur.Get(key, nil, op)
	if lmdb.IsNotFound(err) {
		c.valid, c.key, c.value = false, nil, nil
		return nil
	}
	if err != nil {
		c.valid = false
		return fmt.Errorf("lmdb cursor: %w", err)
	}
	c.valid, c.key, c.value = true, k, v
	return nil
}

func (c *lmdbCursor) Valid() bool      { return c.valid }
func (c *lmdbCursor) Key() []byte      { return c.key }
func (c *lmdbCursor) Value() []byte    { return c.value }
func (c *lmdbCursor) Next() error      { return c.get(nil, lmdb.Next) }
func (c *lmdbCursor) SeekFirst() error { return c.get(nil, lmdb.First) }
func (c *lmdbCursor) Seek(key []byte) error {
	if len(key) == 0 {
		return c.SeekFirst()
	}
	return c.get(key, lmdb.SetRange)
}

func (c *lmdbCursor) Close() error {
	c.cur.Close()
	c.txn.Abort()
	return nil
}

// lmdbWriter puts records in transactions of up to batch records and grows
// the map when it fills, as Caffe's LMDBTransaction does.
type lmdbWriter struct {
	env     *lmdb.Env
	mapSize int64
	keys    [][]byte
	values  [][]byte
}

const lmdbInitialMap = 1 << 26

func createLMDB(path string) (Writer, error) {
	if err := os.Mkdir(path, 0o755); err != nil {
		return nil, err
	}
	env, err := lmdb.NewEnv()
	if err != nil {
		return nil, err
	}
	if err := env.SetMapSize(lmdbInitialMap); err != nil {
		env.Close()
		return nil, err
	}
	if err := env.Open(path, 0, 0o644); err != nil {
		env.Close()
		return nil, err
	}
	return &lmdbWriter{env: env, mapSize: lmdbInitialMap}, nil
}

func (w *lmdbWriter) Put(key, value []byte) error {
	w.keys = append(w.keys, append([]byte(nil), key...))
	w.values = append(w.values, append([]byte(nil), value...))
	return nil
}

func (w *lmdbWriter) Commit() error {
	if len(w.keys) == 0 {
		return nil
	}
	for {
		err := w.env.Update(func(txn *lmdb.Txn) error {
			dbi, err := txn.OpenRoot(0)
			if err != nil {
				return err
			}
			for i, k := range w.keys {
				if err := txn.Put(dbi, k, w.values[i], 0); err != nil {
					return err
				}
			}
			return nil
		})
		if lmdb.IsMapFull(err) {
			w.mapSize *= 2
			if err := w.env.SetMapSize(w.mapSize); err != nil {
				return fmt.Errorf("lmdb: grow map to %d bytes: %w", w.mapSize, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("lmdb commit: %w", err)
		}
		w.keys, w.values = w.keys[:0], w.values[:0]
		return nil
	}
}

func (w *lmdbWriter) Close() error {
	err := w.Commit()
	return errors.Join(err, w.env.Close())
}
