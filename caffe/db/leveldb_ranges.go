package db

// Reading part of a LevelDB: the live tables whose key range overlaps a
// key range, without the rest of the database's files. For databases on a
// remote file system, where a reader fetches only the files its range needs
// (the Spark shim's LevelDB source). goleveldb cannot open a database with
// table files missing (its open checks them all), so the files a range
// needs are merged here with goleveldb's own table, journal and memdb
// readers, newest entry of a key first, as its database iterator does.
//
// A LevelDB directory holds CURRENT (the name of the live MANIFEST), the
// MANIFEST (log-format records of VersionEdits: each adds or deletes table
// files, a new file with its level, size and smallest and largest internal
// key), the sorted tables (NNNNNN.ldb, or .sst from older LevelDB) and the
// write-ahead logs (NNNNNN.log) from the MANIFEST's log number on. An
// internal key is the user key followed by 8 bytes, little-endian
// sequence<<8 | type (0 deletion, 1 value); of the entries of a user key the
// one with the highest sequence number is the live one.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/journal"
	"github.com/syndtr/goleveldb/leveldb/memdb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/storage"
	"github.com/syndtr/goleveldb/leveldb/table"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// LevelDBTable is one live table file of a LevelDB.
type LevelDBTable struct {
	Level int
	Num   uint64
	Size  uint64
	// Smallest and Largest are the first and last user keys it holds.
	Smallest, Largest []byte
}

// LevelDBManifest is what a LevelDB's live MANIFEST says.
type LevelDBManifest struct {
	// Name is the MANIFEST's file name (MANIFEST-NNNNNN).
	Name string
	// Tables are the live tables, by level, then smallest key.
	Tables []LevelDBTable
	// LogNum is the first live write-ahead log's number (older logs are
	// flushed into tables); PrevLogNum a log still live before it, 0: none.
	LogNum, PrevLogNum uint64
}

// LevelDBRange is one key range [Start, End) of a LevelDB (a nil Start:
// from the first record, a nil End: to the last) and the numbers of the
// live tables whose keys overlap it. Empty: the range holds nothing (more
// ranges than the tables can be cut into).
type LevelDBRange struct {
	Start, End []byte
	Tables     []uint64
	Empty      bool
}

// ReadLevelDBManifest reads dir/CURRENT and the MANIFEST it names.
func ReadLevelDBManifest(dir string) (*LevelDBManifest, error) {
	cur, err := os.ReadFile(filepath.Join(dir, "CURRENT"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("LevelDB %s: no CURRENT file (not a LevelDB directory): %w", dir, ErrMissing)
		}
		return nil, fmt.Errorf("LevelDB %s: %w", dir, err)
	}
	name := strings.TrimSpace(string(cur))
	if !strings.HasPrefix(name, "MANIFEST-") || strings.ContainsAny(name, "/\\") {
		return nil, fmt.Errorf("LevelDB %s: CURRENT names %q, not a MANIFEST file", dir, name)
	}
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("LevelDB %s: CURRENT names %s: %w", dir, name, err)
	}
	defer f.Close()
	m, err := ParseLevelDBManifest(f)
	if err != nil {
		return nil, fmt.Errorf("LevelDB %s: %s: %w", dir, name, err)
	}
	m.Name = name
	return m, nil
}

// The VersionEdit tags (LevelDB's db/version_edit.cc).
const (
	tagComparator     = 1
	tagLogNum         = 2
	tagNextFileNum    = 3
	tagLastSeq        = 4
	tagCompactPointer = 5
	tagDeletedFile    = 6
	tagNewFile        = 7
	tagPrevLogNum     = 9
)

// ParseLevelDBManifest applies a MANIFEST's VersionEdits in order. A record
// whose checksum does not match, or that does not decode, is an error naming
// its number.
func ParseLevelDBManifest(r io.Reader) (*LevelDBManifest, error) {
	jr := journal.NewReader(r, nil, true, true)
	m := &LevelDBManifest{}
	live := map[[2]uint64]LevelDBTable{} // (level, num)
	for rec := 0; ; rec++ {
		rr, err := jr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", rec, err)
		}
		b, err := io.ReadAll(rr)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", rec, err)
		}
		if err := applyVersionEdit(b, m, live); err != nil {
			return nil, fmt.Errorf("record %d (a VersionEdit): %w", rec, err)
		}
	}
	for _, t := range live {
		m.Tables = append(m.Tables, t)
	}
	sort.Slice(m.Tables, func(i, j int) bool {
		a, b := m.Tables[i], m.Tables[j]
		if a.Level != b.Level {
			return a.Level < b.Level
		}
		if c := bytes.Compare(a.Smallest, b.Smallest); c != 0 {
			return c < 0
		}
		return a.Num < b.Num
	})
	return m, nil
}

func applyVersionEdit(b []byte, m *LevelDBManifest, live map[[2]uint64]LevelDBTable) error {
	uv := func(what string) (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, fmt.Errorf("truncated %s", what)
		}
		b = b[n:]
		return v, nil
	}
	bs := func(what string) ([]byte, error) {
		n, err := uv(what + " length")
		if err != nil {
			return nil, err
		}
		if n > uint64(len(b)) {
			return nil, fmt.Errorf("%s of %d bytes runs past the record", what, n)
		}
		v := b[:n]
		b = b[n:]
		return v, nil
	}
	ikey := func(what string) ([]byte, error) {
		k, err := bs(what)
		if err != nil {
			return nil, err
		}
		if len(k) < 8 {
			return nil, fmt.Errorf("%s of %d bytes is no internal key", what, len(k))
		}
		return append([]byte(nil), k[:len(k)-8]...), nil
	}
	for len(b) > 0 {
		tag, err := uv("tag")
		if err != nil {
			return err
		}
		switch tag {
		case tagComparator:
			c, err := bs("comparator name")
			if err != nil {
				return err
			}
			if string(c) != "leveldb.BytewiseComparator" {
				return fmt.Errorf("comparator %q (Caffe's databases use leveldb.BytewiseComparator)", c)
			}
		case tagLogNum:
			if m.LogNum, err = uv("log number"); err != nil {
				return err
			}
		case tagPrevLogNum:
			if m.PrevLogNum, err = uv("previous log number"); err != nil {
				return err
			}
		case tagNextFileNum, tagLastSeq:
			if _, err := uv("number"); err != nil {
				return err
			}
		case tagCompactPointer:
			if _, err := uv("level"); err != nil {
				return err
			}
			if _, err := bs("compaction pointer"); err != nil {
				return err
			}
		case tagDeletedFile:
			level, err := uv("level")
			if err != nil {
				return err
			}
			num, err := uv("file number")
			if err != nil {
				return err
			}
			delete(live, [2]uint64{level, num})
		case tagNewFile:
			var t LevelDBTable
			level, err := uv("level")
			if err != nil {
				return err
			}
			if level > 20 {
				return fmt.Errorf("table level %d", level)
			}
			t.Level = int(level)
			if t.Num, err = uv("file number"); err != nil {
				return err
			}
			if t.Size, err = uv("file size"); err != nil {
				return err
			}
			if t.Smallest, err = ikey("smallest key"); err != nil {
				return err
			}
			if t.Largest, err = ikey("largest key"); err != nil {
				return err
			}
			live[[2]uint64{level, t.Num}] = t
		default:
			return fmt.Errorf("unknown tag %d", tag)
		}
	}
	return nil
}

// LogRecord is a user key a live log holds a value for, and the value's size.
type LogRecord struct {
	Key  []byte
	Size int
}

// LevelDBLogRecords reads the named logs in dir (the live ones) and returns,
// in key order, the keys whose newest entry there is a value.
func LevelDBLogRecords(dir string, logs []string) ([]LogRecord, error) {
	size := 0
	for _, name := range logs {
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil {
			size += int(st.Size())
		}
	}
	mem := memdb.New(ikeyComparer{}, size)
	for _, name := range logs {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("LevelDB %s: %w", dir, err)
		}
		err = replayLog(f, mem)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("LevelDB %s: log %s: %w", dir, name, err)
		}
	}
	var out []LogRecord
	it := mem.NewIterator(nil)
	defer it.Release()
	var last []byte
	for it.Next() {
		k := ukey(it.Key())
		if last != nil && bytes.Equal(k, last) {
			continue // an older entry of the same key
		}
		last = append(last[:0], k...)
		if trailer(it.Key())&0xff == 1 {
			out = append(out, LogRecord{append([]byte(nil), k...), len(it.Value())})
		}
	}
	return out, it.Error()
}

// SplitByTables cuts the database into parts key ranges of about equal
// bytes, read from the MANIFEST and the live logs' keys (logRecords, from
// LevelDBLogRecords; nil: the tables alone), no table opened: the cuts are
// at tables' smallest keys and at log keys, each range with the tables it
// needs (those whose [Smallest, Largest] overlaps it). The bytes below a key
// are estimated as the tables that end before it, half of those it falls
// inside, and the log's values of smaller keys; each cut is the candidate
// closest to its share. Fewer distinct cuts than parts leaves the last
// ranges Empty.
func (m *LevelDBManifest) SplitByTables(parts int, logRecords []LogRecord) []LevelDBRange {
	if parts < 1 {
		parts = 1
	}
	type cand struct {
		key   []byte
		below uint64 // twice the estimated bytes below key
	}
	var total uint64
	for _, t := range m.Tables {
		total += t.Size
	}
	// logBelow[i]: the log's value bytes of keys before logRecords[i].
	logBelow := make([]uint64, len(logRecords)+1)
	for i, r := range logRecords {
		logBelow[i+1] = logBelow[i] + uint64(r.Size)
	}
	total += logBelow[len(logRecords)]
	below := func(k []byte) uint64 {
		var b uint64
		for _, u := range m.Tables {
			switch {
			case bytes.Compare(u.Largest, k) < 0:
				b += 2 * u.Size
			case bytes.Compare(u.Smallest, k) < 0:
				b += u.Size
			}
		}
		i := sort.Search(len(logRecords), func(i int) bool { return bytes.Compare(logRecords[i].Key, k) >= 0 })
		return b + 2*logBelow[i]
	}
	var cands []cand
	for _, t := range m.Tables {
		if len(t.Smallest) > 0 {
			cands = append(cands, cand{t.Smallest, below(t.Smallest)})
		}
	}
	// At most 4096 of the log's keys, evenly spaced, are candidates.
	step := max(1, len(logRecords)/4096)
	for i := 0; i < len(logRecords); i += step {
		if k := logRecords[i].Key; len(k) > 0 {
			cands = append(cands, cand{k, below(k)})
		}
	}
	sort.Slice(cands, func(i, j int) bool { return bytes.Compare(cands[i].key, cands[j].key) < 0 })
	starts := [][]byte{nil}
	for j := 1; j < parts; j++ {
		prev := starts[len(starts)-1]
		want := 2 * total * uint64(j) / uint64(parts)
		var next []byte
		var best uint64
		for _, c := range cands {
			if prev != nil && bytes.Compare(c.key, prev) <= 0 {
				continue
			}
			d := c.below - want
			if c.below < want {
				d = want - c.below
			}
			if next == nil || d < best {
				next, best = c.key, d
			}
		}
		if next == nil {
			break // no further cut: the rest are empty
		}
		starts = append(starts, next)
	}
	out := make([]LevelDBRange, parts)
	for j := range out {
		if j >= len(starts) {
			out[j].Empty = true
			continue
		}
		out[j].Start = starts[j]
		if j+1 < len(starts) {
			out[j].End = starts[j+1]
		}
		for _, t := range m.Tables {
			if t.overlaps(out[j].Start, out[j].End) {
				out[j].Tables = append(out[j].Tables, t.Num)
			}
		}
	}
	return out
}

// Files names the files a reader of the given tables needs, from the names
// in the database's directory: each table's NNNNNN.ldb (or .sst, older
// LevelDB's name) and every live write-ahead log. A table the MANIFEST lists
// that is not there is an error naming it.
func (m *LevelDBManifest) Files(names []string, tables []uint64) ([]string, error) {
	have := map[string]bool{}
	var out []string
	for _, n := range names {
		have[n] = true
		if num, kind, err := levelFileNum(n); err == nil && kind == "log" && m.LiveLog(num) {
			out = append(out, n)
		}
	}
	for _, num := range tables {
		ldb, sst := fmt.Sprintf("%06d.ldb", num), fmt.Sprintf("%06d.sst", num)
		switch {
		case have[ldb]:
			out = append(out, ldb)
		case have[sst]:
			out = append(out, sst)
		default:
			return nil, fmt.Errorf("table %s, live in %s, is missing", ldb, m.Name)
		}
	}
	return out, nil
}

// AllTables lists the numbers of the live tables.
func (m *LevelDBManifest) AllTables() []uint64 {
	out := make([]uint64, len(m.Tables))
	for i, t := range m.Tables {
		out[i] = t.Num
	}
	return out
}

// overlaps reports whether [Smallest, Largest] meets [start, end) (nil: unbounded).
func (t LevelDBTable) overlaps(start, end []byte) bool {
	if start != nil && bytes.Compare(t.Largest, start) < 0 {
		return false
	}
	if end != nil && bytes.Compare(t.Smallest, end) >= 0 {
		return false
	}
	return true
}

// LiveLog reports whether the write-ahead log numbered num may hold records
// not yet in a table.
func (m *LevelDBManifest) LiveLog(num uint64) bool {
	return num >= m.LogNum || (m.PrevLogNum != 0 && num == m.PrevLogNum)
}

// ikeyComparer orders internal keys: user keys bytewise, then the newest
// (highest sequence number) first.
type ikeyComparer struct{}

func (ikeyComparer) Name() string { return "leveldb.InternalKeyComparator" }
func (ikeyComparer) Compare(a, b []byte) int {
	if c := bytes.Compare(ukey(a), ukey(b)); c != 0 {
		return c
	}
	ta, tb := trailer(a), trailer(b)
	switch {
	case ta > tb:
		return -1
	case ta < tb:
		return 1
	}
	return 0
}
func (ikeyComparer) Separator(dst, a, b []byte) []byte { return nil }
func (ikeyComparer) Successor(dst, b []byte) []byte    { return nil }

func ukey(ik []byte) []byte {
	if len(ik) < 8 {
		return ik
	}
	return ik[:len(ik)-8]
}

func trailer(ik []byte) uint64 {
	if len(ik) < 8 {
		return 0
	}
	return binary.LittleEndian.Uint64(ik[len(ik)-8:])
}

func makeIKey(k []byte, seq uint64, kind byte) []byte {
	ik := make([]byte, len(k)+8)
	copy(ik, k)
	binary.LittleEndian.PutUint64(ik[len(k):], seq<<8|uint64(kind))
	return ik
}

// OpenLevelDBFiles opens part of a LevelDB: the table (.ldb/.sst) and
// write-ahead log (.log) files named, all in dir, merged as the whole
// database's iterator would merge them. Keys outside the tables' ranges may
// be missing or stale: read only the key range the files were chosen for
// (SplitByTables, with every live log).
func OpenLevelDBFiles(dir string, files []string) (DB, error) {
	icmp := ikeyComparer{}
	o := &opt.Options{Comparer: icmp, Strict: opt.StrictBlockChecksum}
	d := &levelFiles{dir: dir}
	// The memtable holds the logs' records: sized for them at once (growing
	// it record by record costs more than reading them).
	logBytes := 0
	for _, name := range files {
		if _, kind, err := levelFileNum(name); err == nil && kind == "log" {
			if st, err := os.Stat(filepath.Join(dir, name)); err == nil {
				logBytes += int(st.Size())
			}
		}
	}
	mem := memdb.New(icmp, logBytes)
	// Block buffers are reused, as goleveldb's database reuses them.
	bpool := util.NewBufferPool(opt.DefaultBlockSize + 5)
	for _, name := range files {
		num, kind, err := levelFileNum(name)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("LevelDB %s: %w", dir, err)
		}
		path := filepath.Join(dir, name)
		f, err := os.Open(path)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("LevelDB %s: %w", dir, err)
		}
		if kind == "log" {
			err = replayLog(f, mem)
			f.Close()
			if err != nil {
				d.Close()
				return nil, fmt.Errorf("LevelDB %s: log %s: %w", dir, name, err)
			}
			continue
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			d.Close()
			return nil, fmt.Errorf("LevelDB %s: %w", dir, err)
		}
		r, err := table.NewReader(f, st.Size(), storage.FileDesc{Type: storage.TypeTable, Num: int64(num)}, nil, bpool, o)
		if err != nil {
			f.Close()
			d.Close()
			return nil, fmt.Errorf("LevelDB %s: table %s: %w", dir, name, err)
		}
		d.tables = append(d.tables, r)
		d.names = append(d.names, name)
	}
	d.mem = mem
	return d, nil
}

// levelFileNum reads a table's or log's number from its name.
func levelFileNum(name string) (uint64, string, error) {
	base, ext, ok := strings.Cut(filepath.Base(name), ".")
	if ok && (ext == "ldb" || ext == "sst" || ext == "log") {
		if n, err := strconv.ParseUint(base, 10, 64); err == nil {
			if ext != "log" {
				ext = "table"
			}
			return n, ext, nil
		}
	}
	return 0, "", fmt.Errorf("%s is not a table (NNNNNN.ldb, .sst) or log (NNNNNN.log) file name", name)
}

// replayLog adds a write-ahead log's batches to mem: each record is a batch,
// a sequence number (u64), a count (u32), then count entries of a kind byte
// (1 value, 0 deletion), a length-prefixed key and, for a value, a
// length-prefixed value; entry i has sequence number seq + i.
func replayLog(f io.Reader, mem *memdb.DB) error {
	jr := journal.NewReader(f, nil, true, true)
	for rec := 0; ; rec++ {
		rr, err := jr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("record %d: %w", rec, err)
		}
		b, err := io.ReadAll(rr)
		if err != nil {
			return fmt.Errorf("record %d: %w", rec, err)
		}
		if len(b) < 12 {
			return fmt.Errorf("record %d: a batch of %d bytes", rec, len(b))
		}
		seq := binary.LittleEndian.Uint64(b)
		count := binary.LittleEndian.Uint32(b[8:])
		b = b[12:]
		str := func() ([]byte, bool) {
			n, w := binary.Uvarint(b)
			if w <= 0 || n > uint64(len(b)-w) {
				return nil, false
			}
			s := b[w : w+int(n)]
			b = b[w+int(n):]
			return s, true
		}
		for i := uint32(0); i < count; i++ {
			if len(b) == 0 {
				return fmt.Errorf("record %d: batch of %d entries ends after %d", rec, count, i)
			}
			kind := b[0]
			b = b[1:]
			k, ok := str()
			if !ok || kind > 1 {
				return fmt.Errorf("record %d: entry %d does not decode", rec, i)
			}
			var v []byte
			if kind == 1 {
				if v, ok = str(); !ok {
					return fmt.Errorf("record %d: entry %d's value does not decode", rec, i)
				}
			}
			if err := mem.Put(makeIKey(k, seq+uint64(i), kind), v); err != nil {
				return err
			}
		}
	}
}

type levelFiles struct {
	dir    string
	tables []*table.Reader
	names  []string
	mem    *memdb.DB
}

// Len counts the records of the files' merged view.
func (d *levelFiles) Len() (int, error) {
	c, err := d.NewCursor()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	n := 0
	for c.Valid() {
		n++
		if err := c.Next(); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (d *levelFiles) Close() error {
	for _, t := range d.tables {
		t.Release()
	}
	d.tables = nil
	return nil
}

func (d *levelFiles) NewCursor() (Cursor, error) {
	its := []iterator.Iterator{d.mem.NewIterator(nil)}
	for _, t := range d.tables {
		its = append(its, t.NewIterator(nil, &opt.ReadOptions{DontFillCache: true}))
	}
	c := &filesCursor{d: d, it: iterator.NewMergedIterator(its, ikeyComparer{}, true)}
	return c, c.SeekFirst()
}

// filesCursor walks the merged internal keys, stopping on each user key's
// newest entry when it is a value, skipping its older entries and deleted keys.
type filesCursor struct {
	d          *levelFiles
	it         iterator.Iterator
	key, value []byte
	skipKey    []byte // the key skip moves past, copied: the iterator's own moves
	valid      bool
}

func (c *filesCursor) Valid() bool   { return c.valid }
func (c *filesCursor) Key() []byte   { return c.key }
func (c *filesCursor) Value() []byte { return c.value }
func (c *filesCursor) Close() error  { c.it.Release(); return nil }

func (c *filesCursor) err() error {
	if err := c.it.Error(); err != nil {
		return fmt.Errorf("LevelDB %s (tables %s): %w", c.d.dir, strings.Join(c.d.names, ", "), err)
	}
	return nil
}

// settle moves from the newest entry of a user key (ok: the iterator is on
// one) to the first such entry that is a value.
func (c *filesCursor) settle(ok bool) error {
	for ok {
		ik := c.it.Key()
		if len(ik) < 8 {
			return fmt.Errorf("LevelDB %s: an internal key of %d bytes", c.d.dir, len(ik))
		}
		if trailer(ik)&0xff == 1 {
			// The iterator's own slices: valid until it moves, as Cursor's are.
			c.key, c.value = ukey(ik), c.it.Value()
			c.valid = true
			return nil
		}
		ok = c.skip(ukey(ik))
	}
	c.valid = false
	return c.err()
}

// skip moves past every entry of user key k.
func (c *filesCursor) skip(k []byte) bool {
	c.skipKey = append(c.skipKey[:0], k...)
	k = c.skipKey
	ok := c.it.Next()
	for ok && bytes.Equal(ukey(c.it.Key()), k) {
		ok = c.it.Next()
	}
	return ok
}

func (c *filesCursor) SeekFirst() error { return c.settle(c.it.First()) }

func (c *filesCursor) Seek(key []byte) error {
	if key == nil {
		return c.SeekFirst()
	}
	return c.settle(c.it.Seek(makeIKey(key, 1<<56-1, 1)))
}

func (c *filesCursor) Next() error {
	if !c.valid {
		return nil
	}
	return c.settle(c.skip(c.key))
}
