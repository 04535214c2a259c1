"""Noise models against their statistics (sample std, fractions, densities) and reproducibility."""

import numpy as np
import pytest
import torch

from hyde import noise_models as nm


@pytest.fixture(scope="module")
def flat():
    return torch.full((64, 80, 12), 0.5, dtype=torch.float64)


def test_gaussian_iid_statistics(flat):
    noisy = nm.add_gaussian(flat, 0.05, seed=1)
    noise = (noisy - flat).numpy()
    # sample std of 61440 draws: relative standard error ~0.3%
    assert noise.std() == pytest.approx(0.05, rel=0.02)
    assert abs(noise.mean()) < 4 * 0.05 / np.sqrt(noise.size)
    assert torch.equal(noisy, nm.add_gaussian(flat, 0.05, seed=1))
    assert not torch.equal(noisy, nm.add_gaussian(flat, 0.05, seed=2))


def test_gaussian_bandwise_statistics(flat):
    sigma = nm.band_sigmas(12, 0.01, 0.1, seed=3)
    assert float(sigma.min()) >= 0.01
    assert float(sigma.max()) <= 0.1
    noise = (nm.add_gaussian(flat, sigma, seed=4) - flat).numpy()
    np.testing.assert_allclose(noise.std(axis=(0, 1)), sigma.numpy(), rtol=0.03)
    noniid = nm.add_noniid(flat, high=0.1, low=0.01, seed=3) - flat
    np.testing.assert_allclose(noniid.numpy().std(axis=(0, 1)), sigma.numpy(), rtol=0.03)


def test_stripes_touch_a_third_of_bands_and_some_columns(flat):
    out = nm.add_stripes(flat, seed=5) - flat
    changed_bands = [b for b in range(12) if out[..., b].abs().max() > 0]
    assert len(changed_bands) == 4
    for b in changed_bands:
        column_shift = out[..., b]
        # a stripe is constant down each column
        assert torch.allclose(column_shift, column_shift[:1].expand_as(column_shift))
        cols = int((column_shift[0].abs() > 0).sum())
        assert 0.05 * 80 - 1 <= cols <= 0.15 * 80 + 1
        assert float(column_shift.abs().max()) <= 0.25


def test_deadlines_zero_whole_columns(flat):
    out = nm.add_deadlines(flat, seed=6)
    dead = out == 0
    bands = [b for b in range(12) if dead[..., b].any()]
    assert len(bands) == 4
    for b in bands:
        col_dead = dead[..., b].all(0)
        assert torch.equal(dead[..., b], col_dead.expand(64, -1))
        assert 3 <= int(col_dead.sum()) <= 13


def test_impulse_density_and_values(flat):
    out = nm.add_impulse(flat, seed=7, amounts=(0.3,))
    changed = out != flat
    bands = [b for b in range(12) if changed[..., b].any()]
    assert len(bands) == 4
    for b in bands:
        values = out[..., b][changed[..., b]]
        assert set(values.unique().tolist()) <= {0.0, 1.0}
        density = changed[..., b].double().mean()
        assert float(density) == pytest.approx(0.3, abs=0.02)
        assert float((values == 1).double().mean()) == pytest.approx(0.5, abs=0.05)


def test_mixture_corrupts_disjoint_thirds(flat):
    out = nm.add_mixture(flat, seed=8, amounts=(0.2,))
    gauss = nm.add_noniid(flat, high=0.1, seed=8)
    extra = out - gauss
    kinds = {}
    for b in range(12):
        e = extra[..., b]
        if e.abs().max() == 0:
            continue
        if (out[..., b] == 0).all(0).any():
            kinds[b] = "dead"
        elif set(out[..., b][e != 0].unique().tolist()) <= {0.0, 1.0}:
            kinds[b] = "impulse"
        else:
            kinds[b] = "stripe"
    assert sorted(kinds.values()).count("dead") == 4
    assert sorted(kinds.values()).count("impulse") == 4
    assert sorted(kinds.values()).count("stripe") == 4


def test_add_noise_dispatch_and_errors(flat):
    assert torch.equal(
        nm.add_noise(flat, "gaussian", seed=1, sigma=0.05), nm.add_gaussian(flat, 0.05, seed=1)
    )
    with pytest.raises(ValueError, match="model"):
        nm.add_noise(flat, "speckle")
    with pytest.raises(ValueError, match="sigma"):
        nm.add_gaussian(flat, torch.ones(3))
    with pytest.raises(TypeError, match="seed"):
        nm.add_gaussian(flat, 0.1, seed=1.5)
