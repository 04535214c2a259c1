"""The data model: chunk layout, balance/redistribute, resplit without gathering, dtypes,
factories, the communicator surface, and importing without mpi4py."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import heatlike as ht
from heatlike.testing import assert_equal_np, assert_layout, received_within_share, rng, splits_of

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("n", [0, 1, 2, 7, 10])
def test_chunk_layout_is_heats(comm, n):
    p = comm.size
    expected = [n // p + (1 if r < n % p else 0) for r in range(p)]
    x = ht.zeros((n, 3), split=0)
    assert list(x.lshape_map[:, 0].tolist()) == expected
    assert x.lshape == (expected[comm.rank], 3)
    offset, lshape, _slices = ht.MPI_WORLD.chunk((n, 3), 0)
    assert offset == sum(expected[: comm.rank]) and lshape == (expected[comm.rank], 3)
    counts, displs, _shape = ht.MPI_WORLD.counts_displs_shape((n, 3), 0)
    assert list(counts) == expected and list(displs) == list(np.cumsum([0, *expected[:-1]]))
    assert x.is_balanced() and x.balanced


def test_unbalanced_slice_then_balance(comm):
    data = np.arange(12.0)
    x = ht.array(data, split=0)[3:]
    assert_equal_np(x, data[3:])
    x.balance_()
    assert x.is_balanced()
    assert_equal_np(x, data[3:])


def test_redistribute_to_target_map(comm):
    data = rng(1).random((9, 2))
    x = ht.array(data, split=0)
    target = x.lshape_map
    target[:, 0] = 0
    target[-1, 0] = 9
    x.redistribute_(target_map=target)
    assert x.lshape_map[:, 0].tolist() == target[:, 0].tolist()
    assert_equal_np(x, data)


def test_more_ranks_than_rows(comm):
    data = np.array([[1.0, 2.0]])
    x = ht.array(data, split=0)
    assert_equal_np(x, data)
    assert_equal_np(x + 1, data + 1)
    assert float(ht.sum(x).item()) == 3.0


@pytest.mark.parametrize("shape", [(7, 5), (2, 3, 4), (1, 4)])
def test_resplit_every_pair(comm, shape):
    data = rng(2).random(shape)
    for src in splits_of(len(shape)):
        x = ht.array(data, split=src)
        for dst in splits_of(len(shape)):
            y = ht.resplit(x, dst)
            assert y.split == dst
            assert y.is_balanced()
            assert_equal_np(y, data)


def test_resplit_does_not_gather(comm):
    data = rng(3).random((301, 40))
    x = ht.array(data, split=0)
    received_within_share(lambda: ht.resplit(x, 1), data.nbytes, comm.size)
    y = ht.array(data, split=1)
    received_within_share(lambda: y.resplit_(0), data.nbytes, comm.size)
    assert_equal_np(y, data)


def test_is_split_joins_local_blocks(comm):
    local = np.full((comm.rank + 1, 3), comm.rank, dtype=np.float64)
    x = ht.array(local, is_split=0)
    expected = np.concatenate([np.full((r + 1, 3), r, dtype=np.float64) for r in range(comm.size)])
    assert x.gshape == expected.shape
    assert not x.is_balanced() or comm.size == 1
    assert_equal_np(x, expected)


def test_is_split_rejects_disagreeing_blocks(comm):
    with pytest.raises(ValueError, match="is_split"):
        ht.array(np.zeros((2, comm.rank + 1)), is_split=0) if comm.size > 1 else ht.array(
            np.zeros((2, 3)), is_split=0, split=0
        )


def test_array_rejects_split_and_is_split(comm):
    with pytest.raises(ValueError):
        ht.array([1, 2], split=0, is_split=0)


def test_default_dtypes_match_heat(comm):
    assert ht.arange(5).dtype is ht.int32
    assert ht.array([1, 2]).dtype is ht.int64
    assert ht.array([1.0, 2.0]).dtype is ht.float32
    assert ht.zeros(3).dtype is ht.float32
    assert (ht.arange(4) / 2).dtype is ht.float32
    assert ht.sqrt(ht.arange(4)).dtype is ht.float32
    assert ht.sum(ht.arange(4)).dtype is ht.int64
    assert (ht.arange(3, dtype=ht.int32) + 1.5).dtype is ht.float32


def test_promote_types_matches_numpy_where_lattices_agree():
    names = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64",
             "complex64", "complex128"]  # fmt: skip
    for a in names:
        for b in names:
            ours = ht.promote_types(getattr(ht, a if a != "bool" else "bool_"), b)
            theirs = np.promote_types(a, b).name
            ints = {"uint8", "int8", "int16", "int32", "int64"}
            inexact = {"float16", "float32", "float64", "complex64", "complex128"}
            if {a, b} & ints and {a, b} & inexact:
                # Heat and torch: an integer never widens a float (int32 + float32 = float32)
                assert ours.__name__ == next(iter({a, b} & inexact)), (a, b)
                continue
            assert ours.__name__ == theirs, (a, b)


def test_result_type_and_can_cast():
    x = ht.zeros(3, dtype=ht.int32)
    assert ht.result_type(x, 1) is ht.int32
    assert ht.result_type(x, 1.0) is ht.float32
    assert ht.result_type(x, ht.float64) is ht.float64
    assert ht.can_cast(ht.int32, ht.int64, "safe")
    assert not ht.can_cast(ht.int64, ht.int32, "safe")
    assert ht.can_cast(ht.int64, ht.float32, "intuitive")
    assert not ht.can_cast(ht.float32, ht.int32, "same_kind")
    assert ht.can_cast(ht.float64, ht.int8, "unsafe")
    with pytest.raises(ValueError):
        ht.can_cast(ht.int8, ht.int16, "sometimes")


def test_astype_and_type_classes():
    x = ht.arange(4, split=0)
    y = x.astype(ht.float64)
    assert y.dtype is ht.float64 and x.dtype is ht.int32
    assert ht.float32([1, 2]).dtype is ht.float32
    assert ht.issubdtype(ht.float32, ht.floating) and not ht.issubdtype(ht.int8, ht.floating)
    assert ht.canonical_heat_type(torch.float64) is ht.float64
    assert ht.canonical_heat_type("int16") is ht.int16
    assert ht.finfo(ht.float32).eps == np.finfo(np.float32).eps
    assert ht.iinfo(ht.int16).max == np.iinfo(np.int16).max
    with pytest.raises(TypeError):
        ht.canonical_heat_type("not-a-type")


@pytest.mark.parametrize("split", [None, 0, 1])
def test_factories_against_numpy(comm, split):
    shape = (5, 3)
    assert_equal_np(ht.zeros(shape, split=split), np.zeros(shape))
    assert_equal_np(ht.ones(shape, split=split, dtype=ht.int64), np.ones(shape, dtype=np.int64))
    assert_equal_np(ht.full(shape, 2.5, split=split), np.full(shape, 2.5))
    assert ht.empty(shape, split=split).gshape == shape
    base = ht.ones(shape, split=split, dtype=ht.int16)
    for like, ref in [(ht.zeros_like, np.zeros), (ht.ones_like, np.ones)]:
        y = like(base)
        assert y.split == split and y.dtype is ht.int16
        assert_equal_np(y, ref(shape, dtype=np.int16))
    assert_equal_np(ht.full_like(base, 7), np.full(shape, 7, dtype=np.int16))
    assert_equal_np(ht.eye(shape, split=split), np.eye(*shape))
    assert_equal_np(ht.eye(4, split=split), np.eye(4))


@pytest.mark.parametrize("split", [None, 0])
def test_ranges_against_numpy(comm, split):
    assert_equal_np(ht.arange(7, split=split), np.arange(7))
    assert_equal_np(ht.arange(2, 11, 3, split=split), np.arange(2, 11, 3))
    assert_equal_np(ht.arange(10, 1, -2, split=split), np.arange(10, 1, -2))
    assert_equal_np(ht.arange(0.5, 3.0, 0.25, split=split), np.arange(0.5, 3.0, 0.25))
    assert_equal_np(ht.linspace(-1, 2, 7, split=split), np.linspace(-1, 2, 7))
    assert_equal_np(
        ht.linspace(0, 1, 5, endpoint=False, split=split), np.linspace(0, 1, 5, endpoint=False)
    )
    assert_equal_np(ht.logspace(0, 2, 5, split=split), np.logspace(0, 2, 5), rtol=1e-5)
    assert_equal_np(ht.arange(2, split=split), np.arange(2))


@pytest.mark.parametrize("indexing", ["xy", "ij"])
def test_meshgrid_against_numpy(comm, indexing):
    a, b = np.arange(4.0), np.arange(3.0) * 2
    for split in (None, 0):
        grids = ht.meshgrid(ht.array(a, split=split), ht.array(b), indexing=indexing)
        for g, ref in zip(grids, np.meshgrid(a, b, indexing=indexing)):
            assert_equal_np(g, ref)


def test_from_numpy_and_numpy_roundtrip(comm):
    data = rng(4).random((4, 6)).astype(np.float32)
    for split in splits_of(2):
        x = ht.from_numpy(data, split=split)
        assert x.dtype is ht.float32
        np.testing.assert_array_equal(x.numpy(), data)
    with pytest.raises(TypeError):
        ht.from_numpy([1, 2])


def test_bad_shape_and_split_raise(comm):
    with pytest.raises(ValueError, match="shape"):
        ht.zeros((-1, 2))
    with pytest.raises(TypeError, match="shape"):
        ht.zeros("abc")
    with pytest.raises(ValueError, match="split"):
        ht.zeros((2, 2), split=2)
    with pytest.raises(TypeError, match="split"):
        ht.zeros((2, 2), split=1.0)


def test_communicator_surface(comm):
    world = ht.MPI_WORLD
    assert world.rank == comm.rank and world.size == comm.size
    assert world.allreduce(1, ht.MPI.SUM) == comm.size
    assert world.bcast("hello" if world.rank == 0 else None, root=0) == "hello"
    buf = torch.ones(2)
    world.Allreduce(ht.MPI.IN_PLACE, buf, ht.MPI.SUM)
    assert buf.tolist() == [comm.size] * 2
    assert ht.cpu.device_type == "cpu" and ht.get_device() is ht.cpu
    ht.use_device("cpu")
    assert ht.zeros(2).device is ht.cpu
    with pytest.raises(ValueError):
        ht.use_device("tpu")


def test_larray_setter_learns_counts(comm):
    x = ht.zeros((4, 2), split=0)
    x.larray = torch.ones(comm.rank + 1, 2)
    assert x.counts == tuple(range(1, comm.size + 1))
    assert x.gshape == (sum(range(1, comm.size + 1)), 2)
    assert_layout(x)


def test_import_without_mpi4py_or_torchvision():
    code = (
        "import sys; sys.modules['mpi4py'] = None; sys.modules['torchvision'] = None\n"
        "import heatlike as ht\n"
        "assert float(ht.sum(ht.arange(4, split=0)).item()) == 6\n"
        "assert 'mpi4py.MPI' not in sys.modules\n"
        "assert ht.MPI_WORLD.size == 1 and ht.MPI_WORLD.rank == 0\n"
    )
    # no launcher variables and no backend override: hpc-comm must fall back by itself
    env = {
        k: v
        for k, v in __import__("os").environ.items()
        if not k.startswith(("PMI", "MPI", "HYDRA", "OMPI", "HPC_COMM_BACKEND"))
    }
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


@pytest.mark.parametrize(
    "name", ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64",
             "complex64", "complex128"],
)  # fmt: skip
def test_every_dtype_survives_layout_changes(comm, name):
    np_dtype = np.dtype(name)
    data = (rng(5).integers(0, 3, (5, 3)) % (2 if name == "bool" else 3)).astype(np_dtype)
    for split in splits_of(2):
        x = ht.array(data, split=split)
        assert x.dtype.__name__ == name
        for target in splits_of(2):
            assert_equal_np(ht.resplit(x, target), data, check_dtype=True)
        assert_equal_np(x[1:4][::-1], data[1:4][::-1], check_dtype=True)
        assert_equal_np(ht.concatenate([x, x]), np.concatenate([data, data]), check_dtype=True)
        if name != "bool":
            assert_equal_np(x + x, data + data, check_dtype=True)


def test_bfloat16(comm):
    data = rng(6).integers(-8, 8, (5, 3)).astype(np.float32)  # exact in bfloat16
    for split in splits_of(2):
        x = ht.array(data, split=split, dtype=ht.bfloat16)
        assert x.dtype is ht.bfloat16
        assert_equal_np(ht.resplit(x, 0), data)
        assert_equal_np(x * 2, data * 2)
        assert_equal_np(ht.sum(x, 0), data.sum(0))
        assert_equal_np(x.astype(ht.float32), data, check_dtype=True)


def test_bad_input_raises_heats_exception_types(comm):
    x = ht.zeros((4, 3), split=0)
    cases = [
        (ValueError, lambda: ht.array([1, 2], split=1)),
        (TypeError, lambda: ht.zeros((2, 2), split="a")),
        (ValueError, lambda: ht.resplit(x, 3)),
        (TypeError, lambda: ht.resplit(x, 0.5)),
        (ValueError, lambda: ht.reshape(x, (5, 3))),
        (ValueError, lambda: ht.sort(x, axis=5)),
        (ValueError, lambda: ht.arange(1, 2, 0)),
        (ValueError, lambda: ht.linspace(0, 1, -1)),
        (ValueError, lambda: ht.eye((2, 2, 2))),
        (ValueError, lambda: ht.transpose(x, (0, 0))),
        (ValueError, lambda: ht.stack([x, ht.zeros((4, 2))])),
        (IndexError, lambda: x[4]),
        (IndexError, lambda: x[0, 3]),
        (TypeError, lambda: ht.sum([1, 2])),
        (TypeError, lambda: ht.array(object())),
        (ValueError, lambda: ht.percentile(x, 101)),
        (TypeError, lambda: ht.canonical_heat_type(ht.floating)),
        (ValueError, lambda: x.redistribute_(target_map=torch.tensor([[5, 3]] * comm.size))),
    ]
    for exc, call in cases:
        with pytest.raises(exc):
            call()
    assert_equal_np(x, np.zeros((4, 3)))  # the ranks are still in step afterwards


def test_array_options(comm):
    data = rng(7).random((5, 3))
    x = ht.array(data, split=0)
    assert_equal_np(ht.array(x, split=1), data)  # a DNDarray in: resplit, no gather
    assert ht.array(x, split=1).split == 1
    assert_equal_np(ht.array(x, dtype=ht.float32), data.astype(np.float32), check_dtype=True)
    assert_equal_np(ht.array([1, 2, 3], ndmin=3), np.array([1, 2, 3], ndmin=3))
    t = torch.arange(4.0)
    shared = ht.asarray(t)
    t[0] = 10.0
    assert float(shared[0].item()) == 10.0  # asarray does not copy
    copied = ht.array(t)
    t[1] = 20.0
    assert float(copied[1].item()) == 1.0  # array copies
    y = ht.empty_like(x)
    assert y.shape == x.shape and y.split == 0 and y.dtype is ht.float64
    assert_equal_np(ht.asarray(data, split=1), data)
    assert ht.float64(3).dtype is ht.float64 and ht.int8([1, 2]).shape == (2,)


def test_more_elementwise_functions(comm):
    a = rng(8).uniform(1.1, 3.0, (5, 3))
    b = rng(9).uniform(-2.0, 2.0, (5, 3))
    for split in splits_of(2):
        x, y = ht.array(a, split=split), ht.array(b, split=split)
        assert_equal_np(ht.arccosh(x), np.arccosh(a))
        assert_equal_np(ht.logaddexp2(x, y), np.logaddexp2(a, b))
        assert_equal_np(ht.sgn(y), np.sign(b))
        q, r = ht.divmod(x, y)
        nq, nr = np.divmod(a, b)
        assert_equal_np(q, nq)
        assert_equal_np(r, nr)
        assert_equal_np(ht.remainder(x, y), np.remainder(a, b))
        assert_equal_np(ht.true_divide(x, y), np.true_divide(a, b))
