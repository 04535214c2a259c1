"""Metrics against scikit-image and hand-computed NumPy values."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from hyde import metrics


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    ref = rng.uniform(0.1, 0.9, (20, 24, 6))
    est = np.clip(ref + rng.normal(0, 0.05, ref.shape), 0, 1)
    return ref, est


def test_psnr_is_band_mean_of_skimage(pair):
    ref, est = pair
    expected = np.mean(
        [peak_signal_noise_ratio(ref[..., b], est[..., b], data_range=1.0) for b in range(6)]
    )
    ours = metrics.psnr(torch.from_numpy(ref), torch.from_numpy(est))
    assert ours == pytest.approx(expected, rel=1e-12)
    per_band = metrics.psnr(torch.from_numpy(ref), torch.from_numpy(est), per_band=True)
    assert per_band.shape == (6,)
    # data_range=None: each band's max - min of the reference
    expected_dyn = np.mean(
        [
            peak_signal_noise_ratio(
                ref[..., b], est[..., b], data_range=ref[..., b].max() - ref[..., b].min()
            )
            for b in range(6)
        ]
    )
    ours_dyn = metrics.psnr(torch.from_numpy(ref), torch.from_numpy(est), data_range=None)
    assert ours_dyn == pytest.approx(expected_dyn, rel=1e-12)


def test_ssim_is_band_mean_of_skimage(pair):
    ref, est = pair
    expected = np.mean(
        [structural_similarity(ref[..., b], est[..., b], data_range=1.0) for b in range(6)]
    )
    assert metrics.ssim(torch.from_numpy(ref), torch.from_numpy(est)) == pytest.approx(expected)
    assert metrics.ssim(torch.from_numpy(ref), torch.from_numpy(ref)) == pytest.approx(1.0)


def test_sam_hand_computed():
    ref = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]], dtype=torch.float64)  # 1 x 2 x 2
    ref = ref.expand(2, 2, 2).clone()
    est = torch.tensor([[[0.0, 1.0], [1.0, 1.0]]], dtype=torch.float64).expand(2, 2, 2).clone()
    # angles: 90 degrees and 0 degrees -> mean 45
    assert metrics.sam(ref, est) == pytest.approx(45.0, abs=1e-6)
    assert metrics.sam(ref, est, degrees=False) == pytest.approx(math.pi / 4, abs=1e-8)


def test_sam_random_matches_numpy(pair):
    ref, est = pair
    cos = (ref * est).sum(-1) / (np.linalg.norm(ref, axis=-1) * np.linalg.norm(est, axis=-1))
    expected = np.degrees(np.arccos(np.clip(cos, -1, 1)).mean())
    assert metrics.sam(torch.from_numpy(ref), torch.from_numpy(est)) == pytest.approx(
        expected, rel=1e-8
    )


def test_ergas_hand_computed(pair):
    ref, est = pair
    rmse = np.sqrt(((ref - est) ** 2).mean(axis=(0, 1)))
    expected = 100 * np.sqrt(np.mean((rmse / ref.mean(axis=(0, 1))) ** 2))
    ours = metrics.ergas(torch.from_numpy(ref), torch.from_numpy(est))
    assert ours == pytest.approx(expected, rel=1e-12)
    assert metrics.ergas(torch.from_numpy(ref), torch.from_numpy(est), ratio=4) == pytest.approx(
        expected / 4, rel=1e-12
    )


def test_evaluate_and_report(pair):
    ref, est = pair
    values = metrics.evaluate(torch.from_numpy(ref), torch.from_numpy(est))
    assert set(values) == {"psnr", "ssim", "sam", "ergas"}
    values["time"] = 1.5
    table = metrics.report({"noisy": values}, extra=("time",))
    lines = table.splitlines()
    assert lines[0].startswith("| method | PSNR (dB) | SSIM | SAM (deg) | ERGAS | time (s) |")
    assert lines[2].startswith("| noisy | ")
    assert f"{values['psnr']:.4g}" in lines[2]


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="same shape"):
        metrics.psnr(torch.zeros(4, 4, 3), torch.zeros(4, 4, 2))


def test_sam_of_identical_cubes_is_zero(pair):
    ref, _ = pair
    assert metrics.sam(torch.from_numpy(ref), torch.from_numpy(ref * 3.0)) < 1e-6
