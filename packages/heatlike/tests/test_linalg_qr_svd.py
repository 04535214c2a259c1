"""QR, SVD and hierarchical SVD against NumPy: Q orthonormal and Q R = A (1e-5 float32,
1e-12 float64), the same factors for any number of ranks, singular values and vectors, the
hSVD error bound, the output layouts, no gathered operand, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

import heatlike as ht
from heatlike.testing import assert_equal_np, largest_receive_within_share, rng

pytestmark = pytest.mark.mpi

# tall-skinny, nearly square, wide, square, fewer rows than ranks, one column
SHAPES = [(40, 6), (7, 5), (5, 7), (3, 3), (2, 5), (30, 1)]
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}


def _gathered(x):
    return None if x is None else x.numpy()


def _reference_qr(A):
    """NumPy's QR with R's diagonal made non-negative (the unique factors heatlike returns)."""
    Q, R = np.linalg.qr(A.astype(np.float64))
    signs = np.where(np.diag(R) < 0, -1.0, 1.0)
    return Q * signs, R * signs[:, None]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_qr_gives_orthonormal_q_and_reconstructs_a(comm, shape, dtype):
    A = rng(20).standard_normal(shape).astype(dtype)
    tol = TOLERANCE[dtype]
    Q_ref, R_ref = _reference_qr(A)
    for split in [None, 0, 1]:
        for merge in (2, 3, 0):
            Q, R = ht.linalg.qr(ht.array(A, split=split), procs_to_merge=merge)
            q, r = Q.numpy(), R.numpy()
            k = min(shape)
            assert q.shape == (shape[0], k) and r.shape == (k, shape[1])
            assert q.dtype == dtype and r.dtype == dtype
            qd, rd = q.astype(np.float64), r.astype(np.float64)
            np.testing.assert_allclose(qd.T @ qd, np.eye(k), rtol=0, atol=tol)
            np.testing.assert_allclose(qd @ rd, A, rtol=0, atol=tol * np.abs(A).max())
            assert np.all(np.tril(r, -1) == 0) and np.all(np.diag(r) >= 0)
            # unique factors: the same for 1, 2 and 3 ranks (NumPy's, up to rounding)
            np.testing.assert_allclose(q, Q_ref, atol=100 * tol)
            np.testing.assert_allclose(r, R_ref, atol=100 * tol * np.abs(A).max())


def _conditioned(m, n, cond, dtype, seed):
    """An m x n matrix with singular values spread from 1 to 1/cond (cond = inf: rank n - 2)."""
    g = rng(seed)
    U, _ = np.linalg.qr(g.standard_normal((m, n)))
    V, _ = np.linalg.qr(g.standard_normal((n, n)))
    s = np.logspace(0, -np.log10(cond), n) if np.isfinite(cond) else np.r_[np.ones(n - 2), 0, 0]
    return ((U * s) @ V.T).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cond", [10.0, 1e3, 1e6, np.inf])
def test_tall_local_qr_by_cholesky_or_householder_is_accurate(comm, monkeypatch, dtype, cond):
    """Tall blocks are factorised by CholeskyQR2; ill-conditioned or rank-deficient ones fall
    back to Householder. Either way Q is orthonormal and Q R = A to the usual tolerance, and R
    has a non-negative diagonal; Householder is not called for the well-conditioned ones."""
    import torch

    from heatlike.linalg.qr import tall_qr

    A = _conditioned(6000, 16, cond, dtype, seed=int(np.log10(cond)) if np.isfinite(cond) else 9)
    householder = torch.linalg.qr
    calls = []
    monkeypatch.setattr(torch.linalg, "qr", lambda *a, **k: calls.append(1) or householder(*a, **k))
    Q, R = (t.double().numpy() for t in tall_qr(torch.from_numpy(A)))
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(Q.T @ Q, np.eye(16), rtol=0, atol=tol)
    np.testing.assert_allclose(Q @ R, A, rtol=0, atol=tol * np.abs(A).max())
    assert np.all(np.tril(R, -1) == 0)
    cholesky_expected = cond <= 1e3 or (cond == 1e6 and dtype is np.float64)
    assert (not calls) == cholesky_expected
    if cholesky_expected:  # positive diagonal and NumPy's unique factors
        Q_ref, R_ref = _reference_qr(A)
        # Q moves by about cond x eps under rounding (NumPy's is computed in float64 here)
        np.testing.assert_allclose(Q, Q_ref, atol=max(100 * tol, 50 * np.finfo(dtype).eps * cond))
        np.testing.assert_allclose(R, R_ref, atol=100 * tol * np.abs(A).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tsqr_with_cholesky_leaves_equals_numpy(comm, dtype):
    """Leaves large enough for CholeskyQR2 on every rank (5,000 x 16 at 3 ranks)."""
    A = rng(25).standard_normal((15000, 16)).astype(dtype)
    Q_ref, R_ref = _reference_qr(A)
    tol = TOLERANCE[dtype]
    for merge in (2, 0):
        Q, R = ht.linalg.qr(ht.array(A, split=0), procs_to_merge=merge)
        q, r = Q.numpy().astype(np.float64), R.numpy().astype(np.float64)
        np.testing.assert_allclose(q.T @ q, np.eye(16), rtol=0, atol=tol)
        np.testing.assert_allclose(q @ r, A, rtol=0, atol=tol * np.abs(A).max())
        np.testing.assert_allclose(q, Q_ref, atol=100 * tol)
        np.testing.assert_allclose(r, R_ref, atol=100 * tol * np.abs(A).max())


def test_qr_layout_follows_heat(comm):
    A = rng(21).standard_normal((30, 4))
    Q, R = ht.linalg.qr(ht.array(A, split=0))
    assert (Q.split, R.split) == (0, None)  # tall-skinny: R on every rank
    Q, R = ht.linalg.qr(ht.array(A, split=1))
    assert (Q.split, R.split) == (1, 1)
    Q, R = ht.linalg.qr(ht.array(A, split=None))
    assert (Q.split, R.split) == (None, None)
    wide = rng(22).standard_normal((4, 9))
    Q, R = ht.linalg.qr(ht.array(wide, split=0))
    assert Q.split == 0 and R.split == 0  # not tall-skinny: R split like A
    assert_equal_np(Q, _reference_qr(wide)[0], rtol=1e-10, atol=1e-12)


def test_qr_mode_r_and_batches(comm):
    g = rng(23)
    A = g.standard_normal((12, 3))
    for split in [None, 0, 1]:
        Q, R = ht.linalg.qr(ht.array(A, split=split), mode="r")
        assert Q is None
        assert_equal_np(R, _reference_qr(A)[1], rtol=1e-10, atol=1e-12)
    batch = g.standard_normal((4, 6, 3))
    for split in [None, 0]:
        Q, R = ht.linalg.qr(ht.array(batch, split=split))
        assert Q.split == split and R.split == split
        q, r = Q.numpy(), R.numpy()
        np.testing.assert_allclose(q @ r, batch, atol=1e-12)
        np.testing.assert_allclose(np.swapaxes(q, 1, 2) @ q, np.broadcast_to(np.eye(3), (4, 3, 3)),
                                   atol=1e-12)  # fmt: skip


@pytest.mark.parametrize("split", [0, 1])
def test_qr_svd_and_hsvd_never_gather_the_matrix(comm, split):
    """No single receive brings a rank more than about its share of A (TSQR moves only small R
    factors, the column-block QR one Q block at a time, hSVD truncated factors)."""
    A = rng(24).standard_normal((600, 9))
    a = ht.array(A, split=split)
    largest_receive_within_share(lambda: ht.linalg.qr(a), A.nbytes, comm.size)
    largest_receive_within_share(lambda: ht.linalg.svd(a), A.nbytes, comm.size)
    largest_receive_within_share(lambda: ht.linalg.hsvd_rank(a, 2), A.nbytes, comm.size)


def test_qr_rejects_bad_arguments_on_every_rank(comm):
    a = ht.zeros((6, 3), split=0)
    with pytest.raises(ValueError, match="mode must be 'reduced' or 'r'"):
        ht.linalg.qr(a, mode="complete")
    with pytest.raises(ValueError, match="procs_to_merge must be 0 or at least 2"):
        ht.linalg.qr(a, procs_to_merge=1)
    with pytest.raises(TypeError, match="A must be float32 or float64"):
        ht.linalg.qr(ht.zeros((6, 3), dtype=ht.int32, split=0))
    with pytest.raises(ValueError, match="A must have at least 2 dimensions"):
        ht.linalg.qr(ht.zeros(6, split=0))
    with pytest.raises(TypeError, match="A must be a DNDarray"):
        ht.linalg.qr(np.zeros((6, 3)))


def _reference_svd(A):
    """NumPy's thin SVD with every row of Vh's largest-magnitude entry made positive."""
    U, S, Vh = np.linalg.svd(A.astype(np.float64), full_matrices=False)
    signs = np.sign(Vh[np.arange(len(S)), np.abs(Vh).argmax(1)])
    return U * signs, S, Vh * signs[:, None]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_svd_matches_numpy(comm, shape, dtype):
    A = (rng(25).standard_normal(shape) * np.arange(1, shape[1] + 1)).astype(dtype)
    tol = TOLERANCE[dtype] * np.abs(A).max() * 10
    U_ref, S_ref, Vh_ref = _reference_svd(A)
    for split in [None, 0, 1]:
        a = ht.array(A, split=split)
        assert_equal_np(ht.linalg.svd(a, compute_uv=False), S_ref, rtol=0, atol=tol)
        U, S, Vh = ht.linalg.svd(a)
        u, s, vh = U.numpy(), S.numpy(), Vh.numpy()
        np.testing.assert_allclose(s, S_ref, atol=tol)
        np.testing.assert_allclose((u * s) @ vh, A, atol=tol)
        np.testing.assert_allclose(u.T @ u, np.eye(len(s)), atol=100 * TOLERANCE[dtype])
        gaps = np.diff(S_ref)  # vectors are unique (up to the sign rule) for distinct values
        if len(gaps) == 0 or np.abs(gaps).min() > 1e-3 * S_ref[0]:
            np.testing.assert_allclose(vh, Vh_ref, atol=1e3 * TOLERANCE[dtype])
            np.testing.assert_allclose(u, U_ref, atol=1e3 * TOLERANCE[dtype])


def test_svd_layout_of_tall_and_wide_matrices(comm):
    A = rng(26).standard_normal((30, 3))
    U, S, Vh = ht.linalg.svd(ht.array(A, split=0))
    assert (U.split, S.split, Vh.split) == (0, None, None)
    U, S, Vh = ht.linalg.svd(ht.array(A.T.copy(), split=1))
    assert (U.split, S.split, Vh.split) == (None, None, 1)
    with pytest.raises(NotImplementedError):
        ht.linalg.svd(ht.array(A, split=0), full_matrices=True)
    with pytest.raises(ValueError, match="A must be 2-dimensional"):
        ht.linalg.svd(ht.zeros((2, 3, 4)))


def _low_rank(shape, rank, noise, seed):
    g = rng(seed)
    left = g.standard_normal((shape[0], rank)) * np.logspace(0, -2, rank)
    return left @ g.standard_normal((rank, shape[1])) + noise * g.standard_normal(shape)


def _relative_error(A, U, S, Vh):
    return np.linalg.norm(A - (U.numpy() * S.numpy()) @ Vh.numpy()) / np.linalg.norm(A)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hsvd_rank_error_bound_holds(comm, dtype):
    A = _low_rank((24, 31), 6, 1e-3, 27).astype(dtype)
    slack = 1 + (1e-4 if dtype == np.float32 else 1e-10)
    S_ref = np.linalg.svd(A.astype(np.float64), compute_uv=False)
    for split in [None, 0, 1]:
        for maxrank, shift in [(1, 0), (3, 0), (3, 5), (6, 2)]:
            a = ht.array(A, split=split)
            U, S, Vh, bound = ht.linalg.hsvd_rank(a, maxrank, compute_sv=True, safetyshift=shift)
            assert U.shape == (24, maxrank) and Vh.shape == (maxrank, 31)
            assert _relative_error(A, U, S, Vh) <= float(bound.larray) * slack
            # the bound is never below what the best rank-k approximation must leave
            optimal = np.sqrt((S_ref[maxrank:] ** 2).sum()) / np.linalg.norm(A)
            assert float(bound.larray) >= optimal * (1 - 1e-4)
            U_only, bound_only = ht.linalg.hsvd_rank(a, maxrank, safetyshift=shift)
            assert float(bound_only.larray) == pytest.approx(float(bound.larray), rel=1e-6)
            assert_equal_np(U_only, U.numpy(), rtol=1e-4, atol=1e-5)
    # with a large safety shift the leading singular values are exact
    U, S, Vh, _ = ht.linalg.hsvd_rank(ht.array(A, split=1), 3, compute_sv=True, safetyshift=10)
    np.testing.assert_allclose(S.numpy(), S_ref[:3], rtol=1e-4 if dtype == np.float32 else 1e-9)


def test_hsvd_rtol_meets_the_tolerance(comm):
    A = _low_rank((20, 45), 8, 1e-4, 28)
    for split in [None, 0, 1]:
        for rtol in (0.3, 1e-2, 1e-3):
            U, S, Vh, bound = ht.linalg.hsvd_rtol(ht.array(A, split=split), rtol, compute_sv=True)
            true = _relative_error(A, U, S, Vh)
            assert true <= float(bound.larray) * (1 + 1e-10) <= rtol * (1 + 1e-10)
        U, bound = ht.linalg.hsvd(ht.array(A, split=split), maxrank=4, rtol=1e-8, no_of_merges=3)
        assert U.shape[1] == 4 and float(bound.larray) < 1


def test_hsvd_rejects_bad_arguments_on_every_rank(comm):
    a = ht.zeros((6, 8), split=1)
    with pytest.raises(ValueError, match="maxrank must be a positive int"):
        ht.linalg.hsvd_rank(a, 0)
    with pytest.raises(ValueError, match="maxmergedim=4 is too small"):
        ht.linalg.hsvd_rank(a, 2, maxmergedim=4)
    with pytest.raises(ValueError, match="rtol must be a number in"):
        ht.linalg.hsvd_rtol(a, 0.0)
    with pytest.raises(ValueError, match="no_of_merges must be"):
        ht.linalg.hsvd_rtol(a, 0.1, no_of_merges=1)
    with pytest.raises(ValueError, match="safetyshift must be a non-negative int"):
        ht.linalg.hsvd_rank(a, 2, safetyshift=-1)
    with pytest.raises(TypeError, match="A must be float32 or float64"):
        ht.linalg.hsvd_rank(ht.zeros((6, 8), dtype=ht.int64), 2)
