"""Distributed products and norms against NumPy: matmul for every pair of splits (uneven shapes,
fewer rows than ranks, vectors, batches), the output split rule, no gathered operand; dot, vdot,
vecdot, outer, trace, vector/matrix norms."""

from __future__ import annotations

import itertools
import math
import weakref

import numpy as np
import pytest

import heatlike as ht
from heatlike.testing import assert_equal_np, largest_receive_within_share, rng

pytestmark = pytest.mark.mpi

SPLITS = [None, 0, 1]
# (n, k, m): uneven shapes, shapes with fewer rows/columns than ranks, a single element
SHAPES = [(7, 5, 4), (4, 9, 2), (2, 3, 1), (1, 1, 1), (3, 2, 5)]
# Heat's rule: a's split when a is split (rows -> 0, columns -> 1), else what b implies
EXPECTED_SPLIT = {
    (None, None): None, (None, 0): 0, (None, 1): 1,
    (0, None): 0, (0, 0): 0, (0, 1): 0,
    (1, None): 1, (1, 0): 1, (1, 1): 1,
}  # fmt: skip


@pytest.mark.parametrize("shape", SHAPES)
def test_matmul_matches_numpy_for_every_split_pair(comm, shape):
    n, k, m = shape
    g = rng(1)
    A, B = g.standard_normal((n, k)), g.standard_normal((k, m))
    for sa, sb in itertools.product(SPLITS, SPLITS):
        c = ht.matmul(ht.array(A, split=sa), ht.array(B, split=sb))
        assert c.split == EXPECTED_SPLIT[sa, sb], (sa, sb, c.split)
        assert_equal_np(c, A @ B, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_through_either_blas_matches_numpy(comm, monkeypatch, engine, dtype):
    """Local products go to NumPy's or torch's BLAS, whichever the probe found faster; with
    both forced (and the size threshold lowered so every block qualifies), every split pair
    gives NumPy's product, accumulated ring products included."""
    from heatlike import _gemm

    monkeypatch.setattr(_gemm, "MIN_WORK", 1)
    monkeypatch.setattr(_gemm, "_choice", {})
    monkeypatch.setenv("HEATLIKE_GEMM", engine)
    g = rng(7)
    A, B = g.standard_normal((11, 7)).astype(dtype), g.standard_normal((7, 5)).astype(dtype)
    tol = 1e-5 if dtype is np.float32 else 1e-12
    for sa, sb in itertools.product(SPLITS, SPLITS):
        c = ht.matmul(ht.array(A, split=sa), ht.array(B, split=sb))
        assert c.dtype == ht.float32 if dtype is np.float32 else c.dtype == ht.float64
        assert_equal_np(c, A.astype(np.float64) @ B, rtol=tol, atol=tol)
    assert set(_gemm._choice.values()) <= {engine == "numpy"}


def test_blas_probe_agrees_on_every_rank_and_is_remembered(comm, monkeypatch):
    import torch

    from heatlike import _gemm

    monkeypatch.setattr(_gemm, "_choice", {})
    monkeypatch.delenv("HEATLIKE_GEMM", raising=False)
    assert _gemm._numpy_faster(torch.float32) is False  # torch until the ranks have agreed
    choice = _gemm.agree(ht.MPI_WORLD, torch.float32)
    assert isinstance(choice, bool) and _gemm._choice == {torch.float32: choice}
    assert comm.allgather_obj(choice) == [choice] * comm.size
    assert _gemm.agree(ht.MPI_WORLD, torch.int64) is False
    x = torch.randn(300, 260, dtype=torch.float32)
    y = torch.randn(260, 290, dtype=torch.float32)
    c = torch.randn(300, 290, dtype=torch.float32)
    expected = c.double() + x.double() @ y.double()
    product = _gemm.matmul(x, y)
    assert product.dtype == torch.float32
    torch.testing.assert_close(product.double(), x.double() @ y.double(), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(_gemm.addmm_(c, x, y).double(), expected, rtol=1e-5, atol=1e-4)


def test_ranks_that_agreed_on_a_sub_communicator_still_join_the_world_probe(comm, monkeypatch):
    """Each rank first decides within its own half (rank parity), then all decide together: a
    rank that skipped the second probe would leave the others waiting in its allreduce (the
    run's timeout fails the test then). Afterwards every rank holds the world's choice."""
    import torch

    from heatlike import _gemm

    monkeypatch.setattr(_gemm, "_choice", {})
    monkeypatch.setattr(_gemm, "_agreed", weakref.WeakKeyDictionary())
    monkeypatch.delenv("HEATLIKE_GEMM", raising=False)
    with ht.MPI_WORLD.Split(comm.rank % 2, comm.rank) as half:
        in_half = _gemm.agree(half, torch.float32)
        assert half.handle.allgather_obj(in_half) == [in_half] * half.size
        world = _gemm.agree(ht.MPI_WORLD, torch.float32)
        assert comm.allgather_obj(world) == [world] * comm.size
        # both are remembered: asking again is not collective and keeps the last agreement
        assert _gemm.agree(half, torch.float32) is world
        assert _gemm.agree(ht.MPI_WORLD, torch.float32) is world
    a = ht.array(np.arange(12.0).reshape(3, 4), split=0)
    assert_equal_np(a @ a.T, np.arange(12.0).reshape(3, 4) @ np.arange(12.0).reshape(3, 4).T)


def test_matmul_of_unbalanced_operands_matches_numpy(comm):
    """Slices leave the blocks unbalanced (and some ranks empty); every pair still works."""
    g = rng(11)
    A, B = g.standard_normal((9, 8)), g.standard_normal((8, 7))
    for sa, sb in itertools.product(SPLITS, SPLITS):
        a = ht.array(np.r_[np.zeros((4, 8)), A], split=sa)[4:]
        b = ht.array(np.c_[np.zeros((8, 5)), B], split=sb)[:, 5:]
        if comm.size > 1:
            assert (sa != 0 or not a.is_balanced()) and (sb != 1 or not b.is_balanced())
        assert_equal_np(ht.matmul(a, b), A @ B, rtol=1e-12, atol=1e-12)
        assert_equal_np(ht.matmul(b.T, a.T), (A @ B).T, rtol=1e-12, atol=1e-12)


def test_matmul_operator_binds_to_dndarray(comm):
    g = rng(2)
    A, B = g.standard_normal((6, 4)), g.standard_normal((4, 3))
    a, b = ht.array(A, split=0), ht.array(B, split=1)
    assert_equal_np(a @ b, A @ B, rtol=1e-12, atol=1e-12)
    assert_equal_np(b.T @ a.T, (A @ B).T, rtol=1e-12, atol=1e-12)


def test_matmul_with_vectors_follows_numpy(comm):
    g = rng(3)
    A, x, y = g.standard_normal((5, 4)), g.standard_normal(4), g.standard_normal(5)
    for sa, sv in itertools.product(SPLITS, [None, 0]):
        a, xv, yv = ht.array(A, split=sa), ht.array(x, split=sv), ht.array(y, split=sv)
        distributed = sa is not None or sv is not None
        for got, want in ((ht.matmul(a, xv), A @ x), (ht.matmul(yv, a), y @ A)):
            assert got.split == (0 if distributed else None)
            assert_equal_np(got, want, rtol=1e-12, atol=1e-12)
    for sx, sy in itertools.product([None, 0], [None, 0]):
        got = ht.matmul(ht.array(x, split=sx), ht.array(x[::-1].copy(), split=sy))
        assert got.shape == () and got.split is None
        assert_equal_np(got, x @ x[::-1], rtol=1e-12, atol=1e-12)


def test_matmul_batched_matches_numpy(comm):
    g = rng(4)
    A, B = g.standard_normal((3, 4, 5)), g.standard_normal((3, 5, 2))
    for sa, sb in itertools.product([None, 0, 1, 2], [None, 0, 1, 2]):
        c = ht.matmul(ht.array(A, split=sa), ht.array(B, split=sb))
        assert_equal_np(c, A @ B, rtol=1e-12, atol=1e-12)
        if 0 in (sa, sb):
            assert c.split == 0
    M = g.standard_normal((5, 3))  # a 2-d operand broadcast against the batch
    for sa, sb in itertools.product([None, 1, 2], SPLITS):
        assert_equal_np(ht.array(A, split=sa) @ ht.array(M, split=sb), A @ M, 1e-12, 1e-12)


def test_matmul_promotes_dtypes_like_numpy(comm):
    g = rng(5)
    ints = g.integers(-5, 5, (4, 3)).astype(np.int32)
    floats32 = g.standard_normal((3, 2)).astype(np.float32)
    floats64 = g.standard_normal((3, 2))
    bools = g.integers(0, 2, (3, 2)).astype(bool)
    for sa, sb in [(None, None), (0, 0), (1, 0), (1, 1)]:
        a = ht.array(ints, split=sa)
        got = ht.matmul(a, ht.array(ints.T.copy(), split=sb))
        assert got.larray.dtype == ht.int32.torch_type()
        assert_equal_np(got, ints @ ints.T)
        assert_equal_np(ht.array(floats32.T.copy(), split=sa) @ ht.array(floats64, split=sb),
                        floats32.T @ floats64, rtol=1e-6, atol=1e-6)  # fmt: skip
        got = ht.array(bools.T.copy(), split=sa) @ ht.array(bools, split=sb)
        assert_equal_np(got, bools.T @ bools)


def test_matmul_rejects_bad_arguments_on_every_rank(comm):
    a, b = ht.zeros((3, 4), split=0), ht.zeros((5, 2), split=1)
    with pytest.raises(ValueError, match="a has 4 columns but b has 5 rows"):
        ht.matmul(a, b)
    with pytest.raises(ValueError, match="at least one dimension"):
        ht.matmul(ht.array(1.0), b)
    with pytest.raises(TypeError, match="b must be a DNDarray"):
        ht.matmul(a, np.ones((4, 2)))
    with pytest.raises(ValueError, match="same length"):
        ht.matmul(ht.zeros(3, split=0), ht.zeros(4, split=0))
    with pytest.raises(ValueError, match="do not broadcast"):
        ht.matmul(ht.zeros((2, 3, 4)), ht.zeros((3, 4, 2)))


@pytest.mark.parametrize("splits", [(0, 0), (0, 1), (1, 0), (1, 1), (None, 0), (1, None)])
def test_matmul_never_gathers_an_operand(comm, splits):
    """No single receive brings a rank more than about its share of an operand (a gather of an
    operand onto one rank would bring all of it in one call)."""
    g = rng(6)
    A, B = g.standard_normal((60, 60)), g.standard_normal((60, 60))
    a, b = ht.array(A, split=splits[0]), ht.array(B, split=splits[1])
    largest_receive_within_share(lambda: ht.matmul(a, b), A.nbytes, comm.size)
    assert_equal_np(ht.matmul(a, b), A @ B, rtol=1e-10, atol=1e-10)


def test_dot_vdot_vecdot_outer_match_numpy(comm):
    g = rng(7)
    x, y = g.standard_normal(7), g.standard_normal(7)
    M = g.standard_normal((7, 3))
    z = g.standard_normal(4) + 1j * g.standard_normal(4)
    for s1, s2 in itertools.product([None, 0], [None, 0]):
        a, b = ht.array(x, split=s1), ht.array(y, split=s2)
        assert_equal_np(ht.dot(a, b), np.dot(x, y), rtol=1e-12, atol=1e-12)
        assert_equal_np(ht.dot(a, ht.array(M, split=s2)), x @ M, rtol=1e-12, atol=1e-12)
        assert_equal_np(ht.dot(a, 2.0), 2.0 * x)
        assert_equal_np(ht.vdot(ht.array(z, split=s1), ht.array(z[::-1].copy(), split=s2)),
                        np.vdot(z, z[::-1]), rtol=1e-12, atol=1e-12)  # fmt: skip
        outer = ht.outer(a, ht.array(M[:, 0].copy(), split=s2))
        assert outer.split == (0 if (s1, s2) != (None, None) else None)
        assert_equal_np(outer, np.outer(x, M[:, 0]), rtol=1e-12, atol=1e-12)
        assert_equal_np(ht.outer(a, b, split=1), np.outer(x, y), rtol=1e-12, atol=1e-12)
    for split in [None, 0, 1]:
        got = ht.vecdot(ht.array(M, split=split), ht.array(M[::-1].copy(), split=split), axis=0)
        assert_equal_np(got, np.sum(M * M[::-1], axis=0), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="split must be None, 0 or 1"):
        ht.outer(ht.array(x), ht.array(y), split=2)


def test_trace_matches_numpy(comm):
    g = rng(8)
    A, C = g.standard_normal((5, 7)), g.standard_normal((3, 4, 5))
    for split in SPLITS:
        a = ht.array(A, split=split)
        for offset in (-6, -2, 0, 1, 4, 7):
            got = ht.trace(a, offset)
            assert isinstance(got, float) and math.isclose(got, np.trace(A, offset), abs_tol=1e-12)
    for split in [None, 0, 1, 2]:
        c = ht.array(C, split=split)
        for axis1, axis2, offset in [(0, 1, 0), (1, 2, 1), (2, 0, -1)]:
            assert_equal_np(ht.trace(c, offset, axis1, axis2), np.trace(C, offset, axis1, axis2),
                            rtol=1e-12, atol=1e-12)  # fmt: skip
    with pytest.raises(ValueError, match="axis1 and axis2 must differ"):
        ht.trace(ht.array(C), axis1=1, axis2=1)


VECTOR_ORDS = [None, 2, 1, math.inf, -math.inf, 0, 3, -1, 0.5]
MATRIX_ORDS = [None, "fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy divides by the zero for ord < 0
def test_vector_norms_match_numpy(comm):
    data = rng(9).standard_normal((6, 5))
    data[2, 3] = 0.0
    for split in SPLITS:
        x = ht.array(data, split=split)
        for ord in VECTOR_ORDS:
            for axis, keepdims in [(None, False), (0, False), (1, True), ((0, 1), False)]:
                want = np.linalg.vector_norm(data, axis=axis, keepdims=keepdims, ord=ord)
                got = ht.linalg.vector_norm(x, axis=axis, keepdims=keepdims, ord=ord)
                assert_equal_np(got, want, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="ord='fro' is not a vector norm order"):
        ht.linalg.vector_norm(ht.array(data), ord="fro")


def test_matrix_norms_match_numpy(comm):
    g = rng(10)
    data = g.standard_normal((7, 4))
    for split in SPLITS:
        x = ht.array(data, split=split)
        for ord in MATRIX_ORDS:
            want = np.linalg.norm(data, ord=ord)
            assert_equal_np(ht.linalg.matrix_norm(x, ord=ord), want, rtol=1e-10, atol=1e-12)
            assert_equal_np(ht.norm(x, ord=ord, keepdims=True), np.full((1, 1), want), 1e-10)
    batch = g.standard_normal((3, 4, 5))
    for split in [None, 0, 1, 2]:
        x = ht.array(batch, split=split)
        for ord in [None, 1, -math.inf]:
            want = np.linalg.norm(batch, ord=ord, axis=(1, 2))
            assert_equal_np(ht.linalg.norm(x, axis=(1, 2), ord=ord), want, rtol=1e-10, atol=1e-12)
        assert_equal_np(ht.norm(x), np.linalg.norm(batch), rtol=1e-12)  # flattened 2-norm
    with pytest.raises(ValueError, match="ord=3 is not a matrix norm order"):
        ht.linalg.matrix_norm(ht.array(data), ord=3)
    with pytest.raises(ValueError, match="axis must name two axes"):
        ht.linalg.matrix_norm(ht.array(batch), axis=(0, 1, 2))
