"""Subspace methods: plain HySime projection, FastHyDe and L1HyMixDe."""

from __future__ import annotations

import torch

from ..spatial import adaptive_median, sure_non_local_means
from ..thresholding import soft_threshold
from .base import Denoiser, SubspaceMixin, register


def _eigen_images(cube: torch.Tensor, basis: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    rows, cols, bands = cube.shape
    flat = cube.reshape(-1, bands) / scale.to(cube.dtype)
    return (flat @ basis.to(cube.dtype)).T.reshape(-1, rows, cols)


def _from_eigen_images(
    images: torch.Tensor, basis: torch.Tensor, scale: torch.Tensor, shape
) -> torch.Tensor:
    flat = images.reshape(images.shape[0], -1).T @ basis.T.to(images.dtype)
    return (flat * scale.to(images.dtype)).reshape(shape)


@register
class SubspaceProjection(SubspaceMixin, Denoiser):
    """Project each (noise-whitened) spectrum on the HySime subspace; no spatial step."""

    name = "hysime"

    def __init__(
        self,
        rank: int | None = None,
        min_rank: int = 0,
        energy: float | None = None,
        iid: bool = False,
    ):
        self._init_subspace(rank, min_rank, energy)
        self.iid = iid

    def denoise(self, cube, stats):
        scale = self._whitening(stats["sigma"])
        return _from_eigen_images(
            _eigen_images(cube, stats["basis"], scale), stats["basis"], scale, cube.shape
        )


@register
class FastHyDe(SubspaceMixin, Denoiser):
    """FastHyDe (Zhuang & Bioucas-Dias 2018): HySime subspace, then each eigen-image denoised alone.

    With ``iid=False`` the cube is whitened band by band (Y / sigma_b) before the subspace is
    found and un-whitened after (X * sigma_b). The eigen-image denoiser is non-local means in
    torch (the paper uses BM3D) whose strength is picked per eigen-image by Monte-Carlo SURE
    from ``strengths`` (0 = leave the eigen-image as it is).
    """

    name = "fasthyde"
    noise_kinds = ("gaussian", "noniid")

    def __init__(
        self,
        iid: bool = True,
        rank: int | None = None,
        min_rank: int = 0,
        energy: float | None = None,
        patch_radius: int = 2,
        search_radius: int = 7,
        strengths=(0.0, 0.2, 0.35, 0.5, 0.8),
    ):
        self._init_subspace(rank, min_rank, energy)
        self.iid, self.patch_radius, self.search_radius = iid, patch_radius, search_radius
        self.strengths = tuple(strengths)

    def denoise(self, cube, stats):
        scale = self._whitening(stats["sigma"])
        images = _eigen_images(cube, stats["basis"], scale)
        clean, _ = sure_non_local_means(
            images, self.strengths, self.patch_radius, self.search_radius
        )
        return _from_eigen_images(clean, stats["basis"], scale, cube.shape)


@register
class L1HyMixDe(SubspaceMixin, Denoiser):
    """L1HyMixDe (Zhuang & Ng 2020): Y = EZ + S + N with sparse S, by alternating minimisation.

    Impulses are first replaced by an adaptive median; noise and subspace are estimated on that
    cleaned cube. Then S = soft(Y - EZ, threshold * sigma) and Z = FastHyDe step on Y - S.
    """

    name = "l1hymixde"
    noise_kinds = ("gaussian", "noniid", "stripes", "deadlines", "impulse", "mixture")

    def __init__(
        self,
        rank: int | None = None,
        min_rank: int = 0,
        energy: float | None = None,
        p: float = 0.05,
        iterations: int = 10,
        threshold: float = 3.0,
        tol: float = 1e-3,
        strengths=(0.0, 0.2, 0.35, 0.5, 0.8),
        patch_radius: int = 2,
        search_radius: int = 7,
    ):
        self._init_subspace(rank, min_rank, energy)
        self.iid = False
        self.patch_radius, self.search_radius = patch_radius, search_radius
        self.p, self.iterations, self.threshold, self.tol = p, iterations, threshold, tol
        self.strengths = tuple(strengths)

    def _cleaned(self, cube):
        bands_first = cube.permute(2, 0, 1)
        median = adaptive_median(bands_first).permute(1, 2, 0)
        return torch.where((cube - median).abs() > self.p, median, cube)

    def statistics(self, cube):
        return super().statistics(self._cleaned(cube))

    def denoise(self, cube, stats):
        scale = self._whitening(stats["sigma"]).to(cube.dtype)
        basis = stats["basis"]
        y = cube / scale
        sparse = (cube - self._cleaned(cube)) / scale
        previous = None
        for _ in range(self.iterations):
            images = _eigen_images(y - sparse, basis, torch.ones_like(scale))
            images, _ = sure_non_local_means(
                images, self.strengths, self.patch_radius, self.search_radius
            )
            estimate = _from_eigen_images(images, basis, torch.ones_like(scale), cube.shape)
            sparse = soft_threshold(y - estimate, self.threshold)
            if previous is not None and (images - previous).norm() <= self.tol * previous.norm():
                break
            previous = images
        return estimate * scale
