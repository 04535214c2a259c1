"""Pipeline 2: hyde denoises a generated hyperspectral cube tile by tile over the ranks, heatlike
clusters its pixels with KMeans split across the ranks, and the clusters find the materials that
generated the cube better than on the noisy cube."""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans as SkKMeans
from sklearn.cluster import kmeans_plusplus
from sklearn.metrics import adjusted_rand_score

import heatlike as ht
import hpc_comm as hc
import hyde
from hyde.data import smooth_spectra
from hyde.noise_models import add_gaussian

ROWS, COLS, BANDS, MATERIALS, SIGMA = 64, 64, 48, 5, 0.15


def generated_scene(seed: int = 0):
    """A scene of ``MATERIALS`` regions (Voronoi cells), each one material's spectrum, with
    blurred borders where neighbouring materials mix; returns cube, region labels, spectra."""
    rng = np.random.default_rng(seed)
    spectra = smooth_spectra(MATERIALS, BANDS, rng)
    centres = rng.uniform(0, [ROWS, COLS], size=(MATERIALS, 2))
    grid = np.stack(np.meshgrid(np.arange(ROWS), np.arange(COLS), indexing="ij"), -1)
    labels = np.linalg.norm(grid[:, :, None, :] - centres, axis=-1).argmin(-1)
    abundances = gaussian_filter(np.eye(MATERIALS)[labels], sigma=(1.0, 1.0, 0))
    abundances /= abundances.sum(-1, keepdims=True)
    cube = torch.from_numpy(abundances @ spectra).float()
    return cube, labels.reshape(-1), spectra


def cluster(comm, cube: torch.Tensor):
    """KMeans of the pixels, split by rows of pixels over the ranks, from k-means++ centres that
    every rank draws alike; scikit-learn from the same centres is the reference."""
    data = cube.reshape(-1, BANDS).numpy()
    start, _ = kmeans_plusplus(data, MATERIALS, random_state=0)
    pixels = ht.array(data, split=0)
    assert pixels.lshape[0] < pixels.gshape[0] or comm.size == 1  # really distributed
    model = ht.cluster.KMeans(n_clusters=MATERIALS, init=ht.array(start), max_iter=300, tol=1e-4)
    reference = SkKMeans(MATERIALS, init=start, n_init=1, max_iter=300, tol=1e-4)
    return model.fit(pixels), reference.fit(data)


def material_angles(centres: np.ndarray, spectra: np.ndarray) -> np.ndarray:
    """Spectral angle (degrees) between each material and the cluster centre matched to it."""
    cos = spectra @ centres.T
    cos /= np.linalg.norm(spectra, axis=1)[:, None] * np.linalg.norm(centres, axis=1)[None, :]
    angles = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    rows, cols = linear_sum_assignment(angles)
    return angles[rows, cols]


def test_denoising_before_clustering_recovers_the_materials(comm):
    cube, truth, spectra = generated_scene()
    noisy = add_gaussian(cube, SIGMA, seed=1)
    denoised = hyde.tiled_denoise(hyde.FastHyDe(), noisy, tile=32, overlap=8, comm=comm)
    # the tiles spread over the ranks give the cube one process computes
    alone = hyde.tiled_denoise(hyde.FastHyDe(), noisy, tile=32, overlap=8, comm=hc.self_comm())
    torch.testing.assert_close(denoised, alone, rtol=1e-5, atol=1e-6)
    assert hyde.psnr(cube, denoised) > hyde.psnr(cube, noisy) + 8

    scores = {}
    for name, data in (("noisy", noisy), ("denoised", denoised)):
        model, reference = cluster(comm, data)
        labels = model.labels_.numpy()
        centres = model.cluster_centers_.numpy()
        scores[name] = (adjusted_rand_score(truth, labels), material_angles(centres, spectra))
        # the distributed Lloyd iterations are scikit-learn's, and every rank has the same labels
        np.testing.assert_allclose(centres, reference.cluster_centers_, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(model.inertia_, reference.inertia_, rtol=1e-4)
        assert all(s == labels.tolist() for s in comm.allgather_obj(labels.tolist()))

    ari_noisy, angles_noisy = scores["noisy"]
    ari_denoised, angles_denoised = scores["denoised"]
    if comm.rank == 0:
        print(
            f"\nARI noisy {ari_noisy:.3f} -> denoised {ari_denoised:.3f}; material angle (deg) "
            f"noisy {angles_noisy.mean():.2f} -> denoised {angles_denoised.mean():.2f}"
        )
    assert ari_denoised > ari_noisy + 0.05
    assert ari_denoised > 0.8
    assert angles_denoised.mean() < angles_noisy.mean() / 3
