"""2-D wavelet transforms on torch tensors against PyWavelets (float64, 1e-10)."""

import numpy as np
import pytest
import pywt
import torch

from hyde import wavelets as W

WAVELETS = ["haar", "db2", "db5", "sym4", "coif1", "bior2.2"]


def _max_err(ours, ref):
    errs = [np.abs(ours[0].numpy() - ref[0]).max()]
    for lo, lr in zip(ours[1:], ref[1:], strict=True):
        errs += [np.abs(a.numpy() - b).max() for a, b in zip(lo, lr, strict=True)]
    return max(errs)


@pytest.mark.parametrize("mode", W.MODES)
@pytest.mark.parametrize("wavelet", WAVELETS)
def test_wavedec2_matches_pywavelets(mode, wavelet):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 37, 44))
    ours = W.wavedec2(torch.from_numpy(x), wavelet, level=2, mode=mode)
    ref = pywt.wavedec2(x, wavelet, mode=mode, level=2, axes=(-2, -1))
    assert len(ours) == len(ref)
    assert _max_err(ours, ref) < 1e-10


@pytest.mark.filterwarnings("ignore:Level value of 3 is too high")  # PyWavelets, for db5 on 32
@pytest.mark.parametrize("mode", W.MODES)
@pytest.mark.parametrize("wavelet", ["db1", "db5", "bior2.2"])
def test_waverec2_matches_pywavelets_and_inverts(mode, wavelet):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 32, 48))
    ref = pywt.wavedec2(x, wavelet, mode=mode, level=3, axes=(-2, -1))
    coeffs = [torch.from_numpy(ref[0])] + [tuple(torch.from_numpy(c) for c in d) for d in ref[1:]]
    ours = W.waverec2(coeffs, wavelet, mode)
    expected = pywt.waverec2(ref, wavelet, mode=mode, axes=(-2, -1))
    assert ours.shape == expected.shape
    assert np.abs(ours.numpy() - expected).max() < 1e-10
    # perfect reconstruction of the original signal (even sizes)
    assert np.abs(ours.numpy() - x).max() < 1e-10


def test_single_level_dwt2_matches_pywavelets():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((21, 18))
    a, (h, v, d) = W.dwt2(torch.from_numpy(x), "db3", "symmetric")
    ra, (rh, rv, rd) = pywt.dwt2(x, "db3", mode="symmetric")
    for ours, ref in ((a, ra), (h, rh), (v, rv), (d, rd)):
        assert np.abs(ours.numpy() - ref).max() < 1e-10
    rec = W.idwt2((a, (h, v, d)), "db3", "symmetric")
    assert (
        np.abs(rec.numpy() - pywt.idwt2((ra, (rh, rv, rd)), "db3", mode="symmetric")).max() < 1e-10
    )


def test_default_level_is_pywavelets_max_level():
    x = torch.zeros(64, 80, dtype=torch.float64)
    coeffs = W.wavedec2(x, "db2")
    assert len(coeffs) - 1 == pywt.dwt_max_level(64, pywt.Wavelet("db2").dec_len)
    assert W.max_level(64, "db2") == pywt.dwt_max_level(64, 4)


def test_float32_transform_is_float32_and_close():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 16))
    ours = W.wavedec2(torch.from_numpy(x).float(), "db2", level=2)
    assert ours[0].dtype == torch.float32
    ref = pywt.wavedec2(x, "db2", level=2)
    assert _max_err(ours, ref) < 1e-5


def test_coefficient_matrix_roundtrip():
    x = torch.randn(5, 30, 26, dtype=torch.float64)
    coeffs = W.wavedec2(x, "db2", level=2)
    flat, layout = W.coeffs_to_matrix(coeffs)
    total = sum(int(s[0]) * int(s[1]) for s in layout)
    assert flat.shape == (5, total)
    back = W.matrix_to_coeffs(flat, layout)
    assert torch.equal(back[0], coeffs[0])
    for lb, lc in zip(back[1:], coeffs[1:], strict=True):
        for a, b in zip(lb, lc, strict=True):
            assert torch.equal(a, b)


def test_filters_are_pywavelets_filters():
    w = pywt.Wavelet("db4")
    for ours, ref in zip(W.filters("db4"), (w.dec_lo, w.dec_hi, w.rec_lo, w.rec_hi), strict=True):
        assert ours.dtype == torch.float64
        np.testing.assert_array_equal(ours.numpy(), np.asarray(ref))


def test_bad_arguments():
    x = torch.zeros(8, 8)
    with pytest.raises(ValueError, match="wavelet"):
        W.wavedec2(x, "nope", level=1)
    with pytest.raises(ValueError, match="mode"):
        W.wavedec2(x, "db1", level=1, mode="smooth")
    with pytest.raises(ValueError, match="level"):
        W.wavedec2(x, "db1", level=-1)
    with pytest.raises(TypeError):
        W.wavedec2(np.zeros((8, 8)), "db1")
