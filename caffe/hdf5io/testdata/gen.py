"""Writes the HDF5 fixtures of caffe/hdf5io's tests with h5py, and checks
that h5py reads the file GoCaffe's HDF5Output writes (golden_output.h5).

Run from the repository root, in a venv with h5py and numpy:
    python caffe/hdf5io/testdata/gen.py
The values follow v(i) = (i * 37) % 251 over the flattened array, minus 100
for the signed types, so the Go tests can recompute them.
"""
import os
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def values(shape, dtype):
    n = int(np.prod(shape))
    v = (np.arange(n, dtype=np.int64) * 37) % 251
    if np.dtype(dtype).kind in "if" and np.dtype(dtype) != np.uint8:
        v = v - 100
    return v.reshape(shape).astype(dtype)


def write(name, datasets, **kw):
    with h5py.File(os.path.join(HERE, name), "w", **kw) as f:
        for dname, (shape, dtype, opts) in datasets.items():
            f.create_dataset(dname, data=values(shape, dtype), **opts)


# h5py's defaults: superblock v0, v1 object headers, contiguous layout.
write("default.h5", {
    "data": ((6, 1, 2, 3), np.uint8, {}),
    "label": ((6,), np.int64, {}),
})
# Chunked with gzip and shuffle; float32 and float64, int16 and uint16.
write("chunked.h5", {
    "data": ((6, 3, 4), np.float32, {"chunks": (2, 3, 4), "compression": "gzip", "shuffle": True}),
    "label": ((6, 1), np.float64, {"chunks": (3, 1), "compression": "gzip"}),
    "weights": ((6, 2), np.int16, {"chunks": (6, 2)}),
    "counts": ((6,), np.uint16, {}),
})
# The newest format: superblock v3, v2 object headers.
write("latest.h5", {
    "data": ((4, 5), np.int32, {}),
    "label": ((4,), np.float32, {}),
}, libver="latest")

# A dataset of fixed-length strings beside numbers: no type GoCaffe reads.
with h5py.File(os.path.join(HERE, "strings.h5"), "w") as f:
    f.create_dataset("data", data=values((3, 2), np.float32))
    f.create_dataset("label", data=np.array([b"cat", b"dog", b"cow"]))

golden = os.path.join(HERE, "golden_output.h5")
if os.path.exists(golden):
    with h5py.File(golden, "r") as f:
        d, l = f["data"][()], f["label"][()]
        assert d.dtype == np.float32 and l.dtype == np.float32, (d.dtype, l.dtype)
        want_d = values((5, 2, 3), np.float32)
        want_l = values((5,), np.float32)
        assert d.shape == want_d.shape and (d == want_d).all(), d
        assert l.shape == want_l.shape and (l == want_l).all(), l
        print("h5py read", golden, d.shape, l.shape)
else:
    print("no", golden, "yet: run go test ./caffe/hdf5io -run TestWriteGolden -update, then this again", file=sys.stderr)
