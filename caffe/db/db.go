// Package db reads and writes Caffe's key-value databases: LMDB and
// LevelDB, as Caffe's db::DB does (src/caffe/util/db_lmdb.cpp,
// db_leveldb.cpp). Records are read in key order.
//
// LMDB uses github.com/PowerDNS/lmdb-go, a cgo binding that compiles LMDB's
// own C source (no system library needed); LevelDB uses
// github.com/syndtr/goleveldb, pure Go, which reads the Snappy-compressed
// tables C++ LevelDB writes: its database to write, its table, journal and
// memdb readers to read (the live files the MANIFEST lists, merged here:
// leveldb_ranges.go), so that a key range can be read from its own tables.
package db

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
)

// Backend names a database kind, as DataParameter.backend does.
type Backend = caffepb.DataParameter_DB

// The backends.
const (
	LMDB    = caffepb.DataParameter_LMDB
	LevelDB = caffepb.DataParameter_LEVELDB
)

// ErrMissing is returned when a database does not exist.
var ErrMissing = errors.New("database does not exist")

// ParseBackend reads a backend name as Caffe's tools take it ("lmdb",
// "leveldb", case-insensitive).
func ParseBackend(s string) (Backend, error) {
	switch strings.ToLower(s) {
	case "lmdb":
		return LMDB, nil
	case "leveldb":
		return LevelDB, nil
	}
	return 0, fmt.Errorf("unknown database backend %q (want lmdb or leveldb)", s)
}

// Name returns the backend's lower-case name.
func Name(b Backend) string {
	if b == LMDB {
		return "lmdb"
	}
	return "leveldb"
}

// DB is a database opened for reading.
type DB interface {
	// NewCursor returns a cursor placed on the first record.
	NewCursor() (Cursor, error)
	// Len returns the number of records.
	Len() (int, error)
	Close() error
}

// Cursor walks a database in key order. Key and Value are valid until the
// next call that moves the cursor; copy them to keep them.
type Cursor interface {
	// Valid reports whether the cursor is on a record.
	Valid() bool
	Key() []byte
	Value() []byte
	// Next moves to the next record; past the last one Valid is false.
	Next() error
	// SeekFirst moves to the first record.
	SeekFirst() error
	// Seek moves to the first record whose key is >= key.
	Seek(key []byte) error
	Close() error
}

// Writer adds records to a new database.
type Writer interface {
	// Put adds one record; it may be buffered until Commit.
	Put(key, value []byte) error
	// Commit makes the records put so far durable.
	Commit() error
	// Close commits and closes.
	Close() error
}

// Open opens the database at path for reading: LMDB read-only and without
// taking a lock (so read-only files and databases shared by readers work),
// LevelDB read-only.
func Open(b Backend, path string) (DB, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s %s: %w", Name(b), path, ErrMissing)
		}
		return nil, fmt.Errorf("%s %s: %w", Name(b), path, err)
	}
	var (
		d   DB
		err error
	)
	switch b {
	case LMDB:
		d, err = openLMDB(path)
	case LevelDB:
		d, err = openLevelDB(path)
	default:
		return nil, fmt.Errorf("%s: unknown backend %v", path, b)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", Name(b), path, err)
	}
	return d, nil
}

// Create creates a new database at path (which must not exist, as Caffe's
// tools require).
func Create(b Backend, path string) (Writer, error) {
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("%s %s: already exists", Name(b), path)
	}
	var (
		w   Writer
		err error
	)
	switch b {
	case LMDB:
		w, err = createLMDB(path)
	case LevelDB:
		w, err = createLevelDB(path)
	default:
		return nil, fmt.Errorf("%s: unknown backend %v", path, b)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", Name(b), path, err)
	}
	return w, nil
}
