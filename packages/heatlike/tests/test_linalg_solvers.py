"""Conjugate gradients, Lanczos, and inverse/determinant/solve of small matrices against NumPy,
for every split, and their argument checks."""

from __future__ import annotations

import numpy as np
import pytest

import heatlike as ht
from heatlike.testing import assert_equal_np, rng

pytestmark = pytest.mark.mpi


def _spd(n, seed):
    M = rng(seed).standard_normal((n, n))
    return M @ M.T + n * np.eye(n)


@pytest.mark.parametrize("n", [1, 2, 9])
def test_cg_solves_spd_systems_like_numpy(comm, n):
    A = _spd(n, 40)
    b = rng(41).standard_normal(n)
    want = np.linalg.solve(A, b)
    for split_a in [None, 0, 1]:
        for split_b in [None, 0]:
            x0 = ht.zeros(n, dtype=ht.float64, split=split_b)
            x = ht.linalg.cg(ht.array(A, split=split_a), ht.array(b, split=split_b), x0)
            assert x.shape == (n,)
            np.testing.assert_allclose(x.numpy(), want, rtol=1e-8, atol=1e-10)


def test_cg_respects_maxiter_and_out(comm):
    A, b = _spd(6, 42), rng(43).standard_normal(6)
    x0 = ht.array(np.ones(6), split=0)
    assert_equal_np(ht.linalg.cg(ht.array(A, split=0), ht.array(b), x0, maxiter=0), np.ones(6))
    out = ht.zeros(6, dtype=ht.float64)
    result = ht.linalg.cg(ht.array(A, split=1), ht.array(b, split=0), x0, out=out)
    assert result is out
    np.testing.assert_allclose(out.numpy(), np.linalg.solve(A, b), rtol=1e-8, atol=1e-10)


def test_cg_rejects_bad_arguments_on_every_rank(comm):
    A = ht.array(_spd(4, 44), split=0)
    with pytest.raises(ValueError, match="A must be square"):
        ht.linalg.cg(ht.zeros((4, 3)), ht.zeros(4), ht.zeros(4))
    with pytest.raises(ValueError, match="b must be 1-d of length 4"):
        ht.linalg.cg(A, ht.zeros(5), ht.zeros(4))
    with pytest.raises(ValueError, match="x0 must be 1-d of length 4"):
        ht.linalg.cg(A, ht.zeros(4), ht.zeros((4, 1)))
    with pytest.raises(TypeError, match="b must be a DNDarray"):
        ht.linalg.cg(A, np.zeros(4), ht.zeros(4))
    with pytest.raises(ValueError, match="tol must be a non-negative number"):
        ht.linalg.cg(A, ht.zeros(4), ht.zeros(4), tol=-1.0)
    for bad in (True, -1, 2.5):
        with pytest.raises(ValueError, match="maxiter must be a non-negative int"):
            ht.linalg.cg(A, ht.zeros(4), ht.zeros(4), maxiter=bad)


@pytest.mark.parametrize("split", [None, 0, 1])
def test_lanczos_builds_an_orthonormal_krylov_basis(comm, split):
    n, m = 12, 5
    A = _spd(n, 45)
    v0 = rng(46).standard_normal(n)
    V, T = ht.linalg.lanczos(ht.array(A, split=split), m, v0=ht.array(v0, split=split and 0))
    assert V.shape == (n, m) and T.shape == (m, m) and T.split is None
    assert V.split == (None if split is None else 0)
    v, t = V.numpy(), T.numpy()
    np.testing.assert_allclose(v.T @ v, np.eye(m), atol=1e-12)
    np.testing.assert_allclose(v.T @ A @ v, t, atol=1e-9)
    np.testing.assert_allclose(t, np.triu(np.tril(t, 1), -1), atol=0)  # tridiagonal
    np.testing.assert_allclose(v[:, 0], v0 / np.linalg.norm(v0), atol=1e-12)
    # the Krylov space: V spans [v0, A v0, ..., A^(m-1) v0]
    krylov = np.stack([np.linalg.matrix_power(A, i) @ v0 for i in range(m)], axis=1)
    np.testing.assert_allclose(
        v @ (v.T @ krylov), krylov, rtol=1e-6, atol=1e-6 * np.abs(krylov).max()
    )


def test_lanczos_with_m_equal_n_recovers_the_eigenvalues(comm):
    n = 8
    A = _spd(n, 47)
    ht.random.seed(3)
    V, T = ht.linalg.lanczos(ht.array(A, split=0), n)
    np.testing.assert_allclose(np.linalg.eigvalsh(T.numpy()), np.linalg.eigvalsh(A), rtol=1e-9)
    np.testing.assert_allclose(V.numpy().T @ V.numpy(), np.eye(n), atol=1e-12)


def test_lanczos_rejects_bad_arguments_on_every_rank(comm):
    A = ht.array(_spd(4, 48), split=0)
    with pytest.raises(ValueError, match="m must be an int in"):
        ht.linalg.lanczos(A, 0)
    with pytest.raises(ValueError, match="v0 must be 1-d of length 4"):
        ht.linalg.lanczos(A, 2, v0=ht.ones(3))
    with pytest.raises(ValueError, match="A must be square"):
        ht.linalg.lanczos(ht.zeros((4, 2)), 2)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_inv_det_solve_match_numpy(comm, n):
    A = _spd(n, 49) - n * np.eye(n) * 0.5
    b, B = rng(50).standard_normal(n), rng(51).standard_normal((n, 3))
    for split in [None, 0, 1]:
        a = ht.array(A, split=split)
        inverse = ht.linalg.inv(a)
        assert inverse.split == split
        assert_equal_np(inverse, np.linalg.inv(A), rtol=1e-10, atol=1e-12)
        assert_equal_np(ht.linalg.det(a), np.linalg.det(A), rtol=1e-10)
        for rhs in (b, B):
            for split_b in [None, 0]:
                x = ht.linalg.solve(a, ht.array(rhs, split=split_b))
                assert x.split == split_b
                assert_equal_np(x, np.linalg.solve(A, rhs), rtol=1e-10, atol=1e-12)


def test_inv_and_det_of_batches_stay_split(comm):
    batch = rng(52).standard_normal((4, 3, 3)) + 3 * np.eye(3)
    for split in [None, 0, 1, 2]:
        x = ht.array(batch, split=split)
        inverse, determinant = ht.linalg.inv(x), ht.linalg.det(x)
        assert inverse.split == split and determinant.split == (0 if split == 0 else None)
        assert_equal_np(inverse, np.linalg.inv(batch), rtol=1e-10, atol=1e-12)
        assert_equal_np(determinant, np.linalg.det(batch), rtol=1e-10)
    out = ht.zeros(3, dtype=ht.float64)
    assert (
        ht.linalg.solve(ht.array(batch[0], split=0), ht.ones(3, dtype=ht.float64), out=out) is out
    )
    assert_equal_np(out, np.linalg.solve(batch[0], np.ones(3)), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="a must be a square matrix"):
        ht.linalg.inv(ht.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"b must have shape \(3,\)"):
        ht.linalg.solve(ht.eye(3), ht.zeros(4))
