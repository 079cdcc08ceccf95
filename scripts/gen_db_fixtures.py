#!/usr/bin/env python3
"""Writes caffe/db/testdata: Caffe databases made by independent writers.

  pylmdb/    LMDB written by PyPI `lmdb` (its own bundled LMDB C library)
  plyvel/    LevelDB written by PyPI `plyvel` (C++ LevelDB, Snappy tables),
             compacted so records sit in .ldb tables and in the log
  plyvel_ranges/
             LevelDB written by plyvel in several flushes and compactions:
             tables on several levels whose key ranges overlap, overwritten
             and deleted keys, the last writes only in the log (for reading
             part of a database by key range: caffe/db's OpenLevelDBFiles)
  plyvel_ranges.want
             what C++ LevelDB (plyvel) reads from plyvel_ranges: one line per
             record in key order, the key and the SHA-256 of its value

Each holds 6 Datums, keys 00000000..00000005: channels 1 height 2 width 3,
data bytes [10*i + j for j in 0..5], label i; record 5 is instead 1x64x64
bytes of 7 (compressible, so LevelDB's table holds it Snappy-compressed).
Datums are hand-encoded: no caffe_pb2 needed. Run from the repository root with a venv holding lmdb
and plyvel:
  python3 -m venv .venv-data && .venv-data/bin/pip install lmdb plyvel
  .venv-data/bin/python scripts/gen_db_fixtures.py
"""
import hashlib
import os
import shutil

import lmdb
import plyvel

OUT = "caffe/db/testdata"


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def datum(i):
    h, w, data = 2, 3, bytes(10 * i + j for j in range(6))
    if i == 5:
        h, w, data = 64, 64, bytes([7]) * 4096
    return (b"\x08" + varint(1) + b"\x10" + varint(h) + b"\x18" + varint(w)
            + b"\x22" + varint(len(data)) + data + b"\x28" + varint(i))


def main():
    for d in ("pylmdb", "plyvel", "plyvel_ranges"):
        shutil.rmtree(os.path.join(OUT, d), ignore_errors=True)
    env = lmdb.open(os.path.join(OUT, "pylmdb"), map_size=1 << 20)
    with env.begin(write=True) as txn:
        for i in (3, 0, 5, 4, 1, 2):  # out of order: readers must sort by key
            txn.put(b"%08d" % i, datum(i))
    env.close()
    os.remove(os.path.join(OUT, "pylmdb", "lock.mdb"))  # readers take no lock
    db = plyvel.DB(os.path.join(OUT, "plyvel"), create_if_missing=True)
    for i in (3, 5, 0, 4):
        db.put(b"%08d" % i, datum(i))
    db.compact_range()
    for i in (1, 2):
        db.put(b"%08d" % i, datum(i))
    db.close()
    ranges()


def ranged_datum(i, label):
    """A 1x8x8 Datum of bytes that Snappy cannot shrink much."""
    data = bytes((i * 131 + j * 71 + label * 17 + (i * j) % 251) % 256 for j in range(64))
    return (b"\x08" + varint(1) + b"\x10" + varint(8) + b"\x18" + varint(8)
            + b"\x22" + varint(len(data)) + data + b"\x28" + varint(label))


def ranges():
    # write_buffer_size 64 KiB (LevelDB's least): a memtable flush every
    # ~700 records, each to a new table.
    db = plyvel.DB(os.path.join(OUT, "plyvel_ranges"), create_if_missing=True, write_buffer_size=64 << 10)
    key = lambda i: b"%08d" % i
    for i in range(0, 3000, 2):  # even keys, label 1
        db.put(key(i), ranged_datum(i, 1))
    db.compact_range(start=key(0), stop=key(1500))  # the lower half down a level
    for i in range(1, 3000, 2):  # odd keys, label 2: tables overlapping the even ones'
        db.put(key(i), ranged_datum(i, 2))
    for i in range(1000, 2000, 3):  # overwrites, label 3
        db.put(key(i), ranged_datum(i, 3))
    for i in range(500, 2500, 7):  # deletes
        db.delete(key(i))
    for i in range(0, 3000, 11):  # the last writes, left in the log: overwrites, label 4
        db.put(key(i), ranged_datum(i, 4))
    for i in range(5, 3000, 13):
        db.delete(key(i))
    db.close()
    # What C++ LevelDB reads back, from a copy (opening writes to the directory).
    tmp = os.path.join(OUT, "plyvel_ranges.tmp")
    shutil.copytree(os.path.join(OUT, "plyvel_ranges"), tmp)
    db = plyvel.DB(tmp)
    with open(os.path.join(OUT, "plyvel_ranges.want"), "w") as f:
        for k, v in db.iterator():
            f.write("%s %s\n" % (k.decode(), hashlib.sha256(v).hexdigest()))
    db.close()
    shutil.rmtree(tmp)
    os.remove(os.path.join(OUT, "plyvel_ranges", "LOCK"))
    os.remove(os.path.join(OUT, "plyvel_ranges", "LOG"))


if __name__ == "__main__":
    main()
