"""Every method improves PSNR on a generated cube under the noise it is meant for."""

import numpy as np
import pytest
import torch

import hyde
from hyde import noise_models as nm
from hyde.metrics import psnr

FAST = {"search_radius": 3}


@pytest.fixture(scope="module")
def cube(small_cube):
    return small_cube[0]


def _noisy(cube, kind, seed=11):
    if kind == "gaussian":
        return nm.add_gaussian(cube, 0.05, seed=seed)
    if kind == "noniid":
        return nm.add_noniid(cube, high=0.1, low=0.01, seed=seed)
    return nm.add_mixture(cube, seed=seed, amounts=(0.1, 0.3))


CASES = [
    ("hysime", {}, "gaussian", 5.0),
    ("hysime", {}, "noniid", 5.0),
    ("hyres", {}, "gaussian", 6.0),
    ("hyres", {}, "noniid", 6.0),
    ("fasthyde", FAST, "gaussian", 6.0),
    ("fasthyde", {**FAST, "iid": False}, "noniid", 6.0),
    ("l1hymixde", {**FAST, "iterations": 3}, "mixture", 6.0),
    ("hyminor", {}, "gaussian", 6.0),
    ("wsrrr", {}, "gaussian", 6.0),
    ("wsrrr", {}, "noniid", 6.0),
    ("otvca", {}, "gaussian", 6.0),
    ("lrmr", {}, "gaussian", 4.0),
    ("nailrma", {}, "gaussian", 6.0),
    ("nailrma", {}, "noniid", 6.0),
    ("forpdn", {}, "gaussian", 3.0),  # one wavelet level fits a 32 x 32 cube
    ("forpdn", {}, "noniid", 3.0),
    ("lrmr", {}, "mixture", 6.0),
    ("otvca", {}, "noniid", 6.0),
    ("hyminor", {}, "mixture", 4.0),
]


def _corrupt(cube, kind):
    """Each noise model alone; the sparse ones over light Gaussian noise (sigma 0.02)."""
    if kind in ("gaussian", "noniid", "mixture"):
        return _noisy(cube, kind)
    light = nm.add_gaussian(cube, 0.02, seed=11)
    if kind == "impulse":
        return nm.add_impulse(light, seed=12, amounts=(0.1, 0.3))
    return nm.NOISE_MODELS[kind](light, seed=12)


SLOW = {"fasthyde": FAST, "l1hymixde": {**FAST, "iterations": 3}}
CLAIMED = [(n, k) for n in sorted(hyde.METHODS) for k in hyde.METHODS[n].noise_kinds]


@pytest.mark.parametrize(("name", "kind"), CLAIMED, ids=[f"{n}-{k}" for n, k in CLAIMED])
def test_every_method_improves_under_every_noise_it_claims(cube, name, kind):
    noisy = _corrupt(cube, kind)
    out = hyde.denoise(noisy, method=name, **SLOW.get(name, {}))
    assert psnr(cube, out) > psnr(cube, noisy) + 3.0


@pytest.mark.parametrize(("name", "params", "kind", "gain"), CASES)
def test_method_improves_psnr(cube, name, params, kind, gain):
    noisy = _noisy(cube, kind)
    out = hyde.denoise(noisy, method=name, **params)
    assert out.shape == noisy.shape and out.dtype == noisy.dtype
    assert torch.isfinite(out).all()
    assert psnr(cube, out) > psnr(cube, noisy) + gain


def test_float32_input_gives_float32(cube):
    noisy = _noisy(cube, "gaussian").float()
    out = hyde.HyRes()(noisy)
    assert out.dtype == torch.float32
    assert psnr(cube, out) > psnr(cube, noisy) + 6


def _truncation_numpy(noisy, sigma, rank):
    """What HyDe's HyRes computes: whiten, keep the first ``rank`` principal components, unwhiten."""
    y = noisy.reshape(-1, noisy.shape[-1]) / sigma
    _, _, vt = np.linalg.svd(y, full_matrices=False)
    return ((y @ vt[:rank].T @ vt[:rank]) * sigma).reshape(noisy.shape)


@pytest.mark.parametrize("sigma", [0.02, 0.05, 0.1])
def test_hyres_applies_its_soft_threshold(cube, sigma):
    # HyDe's HyRes reconstructed from the unthresholded coefficients, i.e. rank truncation
    noisy = nm.add_gaussian(cube, sigma, seed=11)
    method = hyde.HyRes()
    stats = method.statistics(noisy)
    out = method(noisy, stats)
    assert method.rank_ == 4  # the generated cube's rank
    truncated = _truncation_numpy(noisy.numpy(), stats["sigma"].numpy(), method.rank_)
    # the same rank and basis: what is left is the shrinkage (0.46 dB at sigma = 0.02 here)
    assert psnr(cube, out) > psnr(cube, torch.from_numpy(truncated)) + 0.3


def test_hyres_keeps_weak_structure_when_asked(cube):
    # a narrow absorption line in a sparse set of pixels: off the 4-D subspace of the mixture
    line = torch.zeros(16, dtype=torch.float64)
    line[7] = -0.15
    mask = torch.zeros(32, 32, 1, dtype=torch.float64)
    mask[8:24, 8:24] = 1
    truth = cube + mask * line
    noisy = nm.add_gaussian(truth, 0.01, seed=3)
    depth = lambda x: float((x[8:24, 8:24, 7] - cube[8:24, 8:24, 7]).mean())  # noqa: E731
    # the default (regression noise estimate, SURE rank) erases most of the line ...
    assert abs(depth(hyde.HyRes()(noisy))) < 0.1
    # ... a per-band wavelet noise estimate keeps it at its depth, and so does an energy floor
    assert abs(depth(hyde.HyRes(noise="wavelet")(noisy)) + 0.15) < 0.015
    assert abs(depth(hyde.HyRes(energy=0.99999)(noisy)) + 0.15) < 0.015
    method = hyde.HyRes(min_rank=7)
    method(noisy)
    assert method.rank_ == 7


def test_fasthyde_noniid_is_finite_on_mixed_noise(cube):
    # HyDe's FastHyDe(iid=False) gave NaN on mixed noise
    noisy = _noisy(cube, "mixture")
    out = hyde.FastHyDe(iid=False, **FAST)(noisy)
    assert torch.isfinite(out).all()
    assert psnr(cube, out) > psnr(cube, noisy)


def test_registry_and_errors(cube):
    assert {"hyres", "fasthyde", "l1hymixde", "hysime"} <= set(hyde.list_methods())
    with pytest.raises(ValueError, match="method"):
        hyde.denoise(cube, method="nope")
    with pytest.raises(ValueError, match="rank"):
        hyde.HyRes(rank=0)
    with pytest.raises(ValueError, match="energy"):
        hyde.FastHyDe(energy=2.0)
    with pytest.raises(TypeError, match="cube"):
        hyde.HyRes()(cube.numpy())
    assert "HyRes(" in repr(hyde.HyRes())


def test_statistics_can_be_passed_in(cube):
    noisy = _noisy(cube, "gaussian")
    method = hyde.FastHyDe(**FAST)
    stats = method.statistics(noisy)
    torch.testing.assert_close(method(noisy, stats), method(noisy))


def test_l1_spectral_smoother_reaches_the_linear_program_optimum():
    from scipy.optimize import linprog

    from hyde.methods.wavelet import l1_spectral_smoother

    rng = np.random.default_rng(0)
    h = np.cumsum(rng.normal(0, 0.1, (3, 12)), axis=1)
    h[0, 5] += 2.0  # an outlier the l1 fidelity should ignore
    lam = 0.7
    x = l1_spectral_smoother(torch.from_numpy(h), lam, iterations=3000).numpy()
    d = np.diff(np.eye(12), axis=0)

    def objective(v, row):
        return np.abs(row - v).sum() + lam * np.abs(d @ v).sum()

    for row, ours in zip(h, x, strict=True):
        # LP in (x, t, s): min sum t + lam sum s, |h - x| <= t, |D x| <= s
        n, m = 12, 11
        c = np.concatenate([np.zeros(n), np.ones(n), lam * np.ones(m)])
        eye, zn, zm = np.eye(n), np.zeros((n, m)), np.zeros((m, n))
        a = np.block([[-eye, -eye, zn], [eye, -eye, zn], [d, zm, -np.eye(m)], [-d, zm, -np.eye(m)]])
        b = np.concatenate([-row, row, np.zeros(m), np.zeros(m)])
        best = linprog(c, A_ub=a, b_ub=b, bounds=[(None, None)] * (2 * n + m)).fun
        assert objective(ours, row) == pytest.approx(best, rel=1e-3, abs=1e-6)


def test_hyminor_beats_hyres_on_mixed_noise():
    # 32 bands: its l1 step removes outliers one band wide and keeps wider spectral features;
    # with 16 bands the generated spectra have features that narrow themselves
    cube = hyde.make_cube(32, 32, 32, endmembers=4, seed=3, dtype=torch.float64)
    noisy = _noisy(cube, "mixture")
    hyminor = hyde.HyMiNoR()(noisy)
    assert psnr(cube, hyminor) > psnr(cube, hyde.HyRes()(noisy)) + 0.5
    with pytest.raises(ValueError, match="lam"):
        hyde.HyMiNoR(lam=0)


def test_procrustes_matches_scipy_and_is_optimal():
    from scipy.linalg import orthogonal_procrustes

    from hyde.methods.lowrank import _procrustes

    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((30, 5)), rng.standard_normal((30, 5))
    expected, _ = orthogonal_procrustes(a, b)
    np.testing.assert_allclose(_procrustes(torch.from_numpy(a.T @ b)).numpy(), expected, atol=1e-10)
    # rectangular (bands x rank): orthonormal columns, and no random orthonormal V does better
    cross = torch.from_numpy(rng.standard_normal((12, 3)))
    v = _procrustes(cross)
    torch.testing.assert_close(v.T @ v, torch.eye(3, dtype=torch.float64), rtol=0, atol=1e-12)
    best = float(torch.trace(v.T @ cross))
    for _ in range(200):
        q, _ = torch.linalg.qr(torch.from_numpy(rng.standard_normal((12, 3))))
        assert float(torch.trace(q.T @ cross)) <= best + 1e-12


def test_godec_recovers_low_rank_plus_sparse():
    from hyde.methods.lowrank import godec

    rng = np.random.default_rng(5)
    low = rng.standard_normal((2, 60, 2)) @ rng.standard_normal((2, 2, 12))
    sparse = np.zeros_like(low)
    for b in range(2):
        idx = rng.choice(60 * 12, size=20, replace=False)
        sparse[b].flat[idx] = rng.choice([-5.0, 5.0], size=20)
    got_low, got_sparse = godec(
        torch.from_numpy(low + sparse), rank=2, cardinality=20, iterations=50
    )
    np.testing.assert_allclose(got_low.numpy(), low, atol=1e-8)
    np.testing.assert_allclose(got_sparse.numpy(), sparse, atol=1e-8)


def test_spectral_smoother_solves_its_normal_equations():
    from hyde.methods.wavelet import spectral_smoother

    rng = np.random.default_rng(6)
    y = rng.standard_normal((7, 5))
    sigma = rng.uniform(0.5, 2.0, 5)
    lam = 0.8
    d = np.diff(np.eye(5), axis=0)
    # minimise sum_ij (y - x)_ij^2 / sigma_j^2 + lam ||x D^T||^2 as one least-squares problem
    w = np.kron(np.eye(7), np.diag(1 / sigma))
    a = np.vstack([w, np.sqrt(lam) * np.kron(np.eye(7), d)])
    b = np.concatenate([w @ y.ravel(), np.zeros(7 * 4)])
    expected = np.linalg.lstsq(a, b, rcond=None)[0].reshape(7, 5)
    got = spectral_smoother(torch.from_numpy(y), torch.from_numpy(sigma), lam).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-10)


def test_forpdn_sure_is_close_to_the_oracle_lambda(cube):
    noisy = _noisy(cube, "gaussian")
    chosen = psnr(cube, hyde.FORPDN()(noisy))
    # the best fixed lambda of a grid, picked with the clean cube, is not much better than SURE
    oracle = max(psnr(cube, hyde.FORPDN(lam=10.0**e)(noisy)) for e in range(-1, 5))
    assert chosen > oracle - 1.0
    assert psnr(cube, hyde.FORPDN(lam=0.0)(noisy)) == pytest.approx(psnr(cube, noisy), abs=1e-6)


def test_wsrrr_thresholds_are_sure_optimal_per_level():
    from hyde import wavelets
    from hyde.methods.lowrank import _level_thresholds

    rng = np.random.default_rng(5)
    images = torch.from_numpy(rng.standard_normal((2, 40, 36)) * [[[1.0]], [[3.0]]])
    flat, layout = wavelets.coeffs_to_matrix(wavelets.wavedec2(images, "db2", 3))
    lam = _level_thresholds(flat.T, layout).numpy()
    sizes = [int(a) * int(b) for a, b in layout]
    start = sizes[0]
    for level in range(1, len(sizes), 3):
        stop = start + sum(sizes[level : level + 3])
        for k in range(2):
            x = flat[k, start:stop].numpy()
            # brute force: SURE at 0 and at every |x_i| (Donoho & Johnstone)
            cands = np.concatenate([[0.0], np.abs(x)])
            sure = [
                x.size - 2 * (np.abs(x) <= t).sum() + np.minimum(x**2, t**2).sum() for t in cands
            ]
            rows = lam[start - sizes[0] : stop - sizes[0], k]
            assert np.all(rows == rows[0])
            assert rows[0] == pytest.approx(cands[int(np.argmin(sure))], abs=1e-12)
        start = stop


def test_forpdn_is_scale_equivariant():
    # SURE's lambda grid follows the noise scale: scaling cube and noise scales the output
    noisy = nm.add_gaussian(_cube_for_scale(), 0.01, seed=11)
    method = hyde.FORPDN()
    out = method(noisy)
    lams = method.lams_
    scaled = method(noisy * 100.0) / 100.0
    np.testing.assert_allclose(scaled.numpy(), out.numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.array(method.lams_) * 1e4, lams, rtol=1e-9)


def _cube_for_scale():
    from hyde.data import make_cube

    return make_cube(32, 32, 16, endmembers=4, seed=3, dtype=torch.float64)


def test_forpdn_sure_matches_the_oracle_lambda_at_low_noise(cube):
    # at sigma = 0.01 the best lambda lies far above a fixed grid's top of 1e4
    noisy = nm.add_gaussian(cube, 0.01, seed=11)
    oracle = max(psnr(cube, hyde.FORPDN(lam=10.0**e)(noisy)) for e in range(0, 10))
    assert psnr(cube, hyde.FORPDN()(noisy)) > oracle


def test_smoother_system_is_the_inverse_without_subnormal_entries():
    from hyde.methods.wavelet import l1_spectral_smoother, smoother_system

    d = np.diff(np.eye(128), axis=0)
    exact = np.linalg.inv(5.0 * np.eye(128) + 5.0 * d.T @ d)
    system = smoother_system(128, 5.0, 5.0, torch.float32)
    tiny = torch.finfo(torch.float32).tiny
    assert not ((system != 0) & (system.abs() < tiny)).any()
    np.testing.assert_allclose(system.double().numpy(), exact, rtol=1e-6, atol=1e-20)
    # float32 iterates follow the float64 ones
    rng = np.random.default_rng(2)
    h = np.cumsum(rng.normal(0, 0.05, (300, 128)), axis=1)
    ref = l1_spectral_smoother(torch.from_numpy(h), 0.75, 30, 5.0, 5.0).numpy()
    got = l1_spectral_smoother(torch.from_numpy(h).float(), 0.75, 30, 5.0, 5.0).double().numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_reduced_rank_methods_count_endmembers_on_mixed_noise():
    # HySime alone counted 11 components on this cube; the rank is the methods' own estimate
    from hyde.data import make_cube

    big = make_cube(128, 128, 64, endmembers=5, seed=0, dtype=torch.float64)
    noisy = nm.add_mixture(big, seed=1, amounts=(0.1, 0.3))
    assert hyde.OTVCA().statistics(noisy)["rank"] == 5
    assert hyde.WSRRR().statistics(noisy)["rank"] == 5
    method = hyde.HyRes()
    method(noisy)
    assert method.rank_ <= 5
