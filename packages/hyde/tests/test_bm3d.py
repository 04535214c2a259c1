"""BM3D: transforms against SciPy, block matching against brute force, filtering against limits."""

import numpy as np
import pytest
import torch
from scipy.fft import dct
from skimage import data
from skimage.restoration import denoise_wavelet

from hyde.bm3d import block_match, bm3d, dct_matrix, haar_matrix


def test_dct_matrix_is_scipys_orthonormal_dct():
    n = 8
    ours = dct_matrix(n).numpy()
    np.testing.assert_allclose(ours, dct(np.eye(n), norm="ortho", axis=0), atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 8, 32])
def test_haar_matrix_is_orthonormal_with_a_mean_row(n):
    h = haar_matrix(n).numpy()
    np.testing.assert_allclose(h @ h.T, np.eye(n), atol=1e-12)
    np.testing.assert_allclose(h[0], np.full(n, 1 / np.sqrt(n)), atol=1e-12)
    with pytest.raises(ValueError, match="power of two"):
        haar_matrix(6)


def _matches_numpy(img, patch, step, radius):
    """Per reference block: distances to every candidate within the window, brute force."""
    rows, cols = img.shape
    span_r, span_c = rows - patch + 1, cols - patch + 1
    starts = [list(range(0, n - patch + 1, step)) for n in (rows, cols)]
    for k, n in enumerate((rows, cols)):
        if starts[k][-1] != n - patch:
            starts[k].append(n - patch)
    out = []
    for r in starts[0]:
        for c in starts[1]:
            ref = img[r : r + patch, c : c + patch]
            cand = {}
            for dy in range(-radius, radius + 1):
                for dx in range(-radius, radius + 1):
                    rr, cc = r + dy, c + dx
                    if 0 <= rr < span_r and 0 <= cc < span_c:
                        block = img[rr : rr + patch, cc : cc + patch]
                        cand[rr * span_c + cc] = ((ref - block) ** 2).mean()
            out.append(cand)
    return out


def test_block_match_finds_the_brute_force_nearest_blocks():
    rng = np.random.default_rng(0)
    img = rng.random((13, 11))
    index, dist = block_match(torch.from_numpy(img)[None], patch=4, step=3, radius=3, matches=8)
    expected = _matches_numpy(img, 4, 3, 3)
    assert index.shape[1] == len(expected)
    for ref, cand in enumerate(expected):
        best = sorted(cand.values())[:8]
        np.testing.assert_allclose(dist[0, ref].numpy(), best, atol=1e-12)
        for i, d in zip(index[0, ref].tolist(), dist[0, ref].tolist(), strict=True):
            assert cand[i] == pytest.approx(d, abs=1e-12)
        assert dist[0, ref, 0] == 0  # the reference block itself comes first


def test_joint_matching_sums_distances_over_channels():
    rng = np.random.default_rng(1)
    imgs = rng.random((3, 12, 12))
    index, joint = block_match(torch.from_numpy(imgs), 4, 3, 2, 25, joint=True)
    # reference 5 is the block at (3, 3): all 5 x 5 candidates lie inside the image, so the
    # sorted joint distances are the sorted sums of the channels' distances
    per_channel = [_matches_numpy(im, 4, 3, 2)[5] for im in imgs]
    summed = {k: sum(c[k] for c in per_channel) for k in per_channel[0]}
    np.testing.assert_allclose(joint[0, 5].numpy(), sorted(summed.values()), atol=1e-12)
    for i, d in zip(index[0, 5].tolist(), joint[0, 5].tolist(), strict=True):
        assert summed[i] == pytest.approx(d, abs=1e-12)
    assert torch.equal(index[0], index[2])  # one set of matches for every channel


def test_bm3d_without_noise_returns_the_image():
    # threshold 0 and sigma -> 0 make both stages the identity: the aggregation must then be an
    # exact weighted average of copies of each pixel
    rng = np.random.default_rng(2)
    imgs = torch.from_numpy(rng.random((2, 20, 17)))
    out = bm3d(imgs, 1e-6, patch=4, radius=3, threshold=0.0)
    np.testing.assert_allclose(out.numpy(), imgs.numpy(), atol=1e-5)
    assert out.dtype == imgs.dtype


def test_reused_matching_gives_the_same_result():
    rng = np.random.default_rng(5)
    imgs = torch.from_numpy(rng.random((2, 18, 20)))
    kept = {}
    first = bm3d(imgs, 0.1, patch=4, radius=3, matching=kept)
    assert set(kept[0]) == {1, 2}  # both stages' matches were kept
    again = bm3d(imgs, 0.1, patch=4, radius=3, matching=kept)
    torch.testing.assert_close(again, first, rtol=0, atol=0)
    # reused on other images: the groups are the first images' (a different result)
    other = torch.from_numpy(rng.random((2, 18, 20)))
    assert not torch.equal(
        bm3d(other, 0.1, patch=4, radius=3, matching=kept), bm3d(other, 0.1, patch=4, radius=3)
    )


def test_bm3d_beats_wavelet_shrinkage_on_a_photograph():
    img = data.camera()[::4, ::4][16:112, 16:112].astype(np.float64) / 255
    rng = np.random.default_rng(3)
    sigma = 0.05
    noisy = img + sigma * rng.standard_normal(img.shape)
    ours = bm3d(torch.from_numpy(noisy)[None], sigma)[0].numpy()
    reference = denoise_wavelet(noisy, sigma=sigma, method="BayesShrink", mode="soft")

    def psnr(x):
        return 10 * np.log10(1 / np.mean((x - img) ** 2))

    assert psnr(ours) > psnr(noisy) + 3
    assert psnr(ours) > psnr(reference) + 1


def test_bm3d_rejects_bad_shapes():
    with pytest.raises(ValueError, match="batch x H x W"):
        bm3d(torch.zeros(8, 8), 1.0)
    with pytest.raises(ValueError, match="patch"):
        bm3d(torch.zeros(1, 6, 6), 1.0, patch=8)
