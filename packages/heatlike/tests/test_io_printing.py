"""I/O round trips (HDF5, CSV, .npy, by extension) against NumPy for every split, each rank
reading only its block; printing like NumPy without gathering a large array."""

from __future__ import annotations

import os
import tempfile

import h5py  # the test extra installs it (load_hdf5/save_hdf5 need the hdf5 extra)
import numpy as np
import pytest

import heatlike as ht
from heatlike.testing import assert_equal_np, received_within_share, rng, splits_of

pytestmark = pytest.mark.mpi


@pytest.fixture
def shared_dir(comm):
    """One directory that every rank sees (rank 0 makes it and broadcasts its name)."""
    path = tempfile.mkdtemp(prefix="heatlike-io-") if comm.rank == 0 else None
    path = comm.bcast_obj(path, 0)
    yield path
    comm.barrier()
    if comm.rank == 0:
        for name in os.listdir(path):
            os.remove(os.path.join(path, name))
        os.rmdir(path)


def test_hdf5_roundtrip(comm, shared_dir):
    data = rng(90).random((7, 5))
    path = os.path.join(shared_dir, "data.h5")
    for split in splits_of(2):
        ht.save_hdf5(ht.array(data, split=split), path, "x")
        if comm.rank == 0:
            with h5py.File(path, "r") as f:
                np.testing.assert_array_equal(f["x"][...], data)
        for load_split in splits_of(2):
            y = ht.load_hdf5(path, "x", dtype=ht.float64, split=load_split)
            assert y.split == load_split
            assert_equal_np(y, data, rtol=0, atol=0)
        assert ht.load_hdf5(path, "x").dtype is ht.float32
    ht.save(ht.array(data[:2], split=0), path, "y", mode="a")
    assert_equal_np(ht.load(path, "y", dtype=ht.float64, split=0), data[:2])
    assert_equal_np(ht.load(path, "x", dtype=ht.float64), data)  # mode='a' kept x


def test_hdf5_reads_only_own_block(comm, shared_dir):
    data = rng(91).random((10, 3))
    path = os.path.join(shared_dir, "block.h5")
    ht.save_hdf5(ht.array(data, split=0), path, "x")
    y = ht.load_hdf5(path, "x", dtype=ht.float64, split=0)
    assert y.lshape == (y.counts[comm.rank], 3)
    assert_equal_np(y, data)


def test_csv_roundtrip(comm, shared_dir):
    data = np.round(rng(92).random((7, 3)) * 100, 3)
    path = os.path.join(shared_dir, "data.csv")
    for split in splits_of(2):
        ht.save_csv(ht.array(data, split=split), path, decimals=3)
        if comm.rank == 0:
            np.testing.assert_allclose(np.loadtxt(path, delimiter=","), data)
        for load_split in splits_of(2):
            y = ht.load_csv(path, dtype=ht.float64, split=load_split)
            assert_equal_np(y, data, rtol=0, atol=1e-9)
    ht.save_csv(ht.array(data, split=0), path, header_lines=["a,b,c"], sep=";", decimals=3)
    assert_equal_np(ht.load(path, header_lines=1, sep=";", dtype=ht.float64, split=0), data)


def test_npy_roundtrip(comm, shared_dir):
    data = rng(93).integers(0, 100, (2, 3, 4)).astype(np.int32)
    path = os.path.join(shared_dir, "data.npy")
    for split in splits_of(3):
        ht.save_npy(ht.array(data, split=split), path)
        if comm.rank == 0:
            np.testing.assert_array_equal(np.load(path), data)
        for load_split in splits_of(3):
            y = ht.load_npy(path, split=load_split)
            assert y.dtype is ht.int32
            assert_equal_np(y, data)
    ht.save(ht.array(data, split=0), path)
    assert_equal_np(ht.load(path, split=1), data)


def test_io_bad_input_raises(comm, shared_dir):
    with pytest.raises(ValueError):
        ht.load(os.path.join(shared_dir, "nothing.xyz"))
    with pytest.raises(ValueError):
        ht.load_npy(os.path.join(shared_dir, "missing.npy"))
    with pytest.raises(TypeError):
        ht.save_npy(np.zeros(3), os.path.join(shared_dir, "a.npy"))


def test_print_matches_numpy(comm):
    data = np.arange(12.0).reshape(3, 4) / 4
    for split in splits_of(2):
        text = str(ht.array(data, split=split))
        if comm.rank == 0:
            body = np.array2string(data, separator=", ", prefix="DNDarray(", precision=4)
            assert text.startswith("DNDarray(" + body)
            assert f"split={split}" in text and "dtype=ht.float64" in text
        else:
            assert text == ""


def test_print_large_array_summarises_without_gathering(comm):
    data = rng(94).random((400, 50))
    x = ht.array(data, split=0)
    text = received_within_share(lambda: repr(x), data.nbytes, comm.size, factor=0.2)
    del text
    out = repr(x)
    if comm.rank == 0:
        body = np.array2string(
            data, separator=", ", prefix="DNDarray(", precision=4, max_line_width=120
        )
        assert "..." in body
        assert out.startswith("DNDarray(" + body + ", dtype=ht.float64")
