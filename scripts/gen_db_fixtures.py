#!/usr/bin/env python3
"""Writes caffe/db/testdata: Caffe databases made by independent writers.

  pylmdb/    LMDB written by PyPI `lmdb` (its own bundled LMDB C library)
  plyvel/    LevelDB written by PyPI `plyvel` (C++ LevelDB, Snappy tables),
             compacted so records sit in .ldb tables and in the log

Each holds 6 Datums, keys 00000000..00000005: channels 1 height 2 width 3,
data bytes [10*i + j for j in 0..5], label i; record 5 is instead 1x64x64
bytes of 7 (compressible, so LevelDB's table holds it Snappy-compressed).
Datums are hand-encoded: no caffe_pb2 needed. Run from the repository root with a venv holding lmdb
and plyvel:
  python3 -m venv .venv-data && .venv-data/bin/pip install lmdb plyvel
  .venv-data/bin/python scripts/gen_db_fixtures.py
"""
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
    for d in ("pylmdb", "plyvel"):
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


if __name__ == "__main__":
    main()
