"""The denoiser interface (configure in ``__init__``, call on a cube) and the method registry."""

from __future__ import annotations

import torch

from .._checks import as_cube
from ..estimation import estimate_noise, gram, hysime_from_gram, noise_from_gram

METHODS: dict[str, type] = {}


def register(cls):
    """Class decorator: make ``cls`` available by its ``name`` to `get` and the CLI."""
    METHODS[cls.name] = cls
    return cls


class Denoiser:
    """Base of every method: ``Denoiser(**params)(cube) -> cube`` with cube = rows x cols x bands.

    Methods that rely on global statistics (noise level per band, signal subspace) compute them in
    `statistics`; tiled inference computes them once from a sample and passes them in.
    """

    name = ""
    noise_kinds: tuple[str, ...] = ("gaussian",)

    def statistics(self, cube: torch.Tensor) -> dict:
        """Global statistics of ``cube`` this method uses (default: band-wise noise sigma)."""
        return {"sigma": estimate_noise(as_cube(cube)).to(torch.float64)}

    def tile_statistics(self, sample: torch.Tensor) -> dict:
        """Statistics for tiled inference, from a sample of tiles (default: `statistics`)."""
        sample = as_cube(sample)
        work = sample if sample.dtype == torch.float64 else sample.to(torch.float32)
        return self.statistics(work)

    def __call__(self, cube: torch.Tensor, stats: dict | None = None) -> torch.Tensor:
        cube = as_cube(cube)
        work = cube if cube.dtype == torch.float64 else cube.to(torch.float32)
        if stats is None:
            stats = self.statistics(work)
        return self.denoise(work, stats).to(cube.dtype)

    def denoise(self, cube: torch.Tensor, stats: dict) -> torch.Tensor:  # pragma: no cover
        """The denoised ``cube`` (rows x cols x bands, float32 or float64), given the
        ``stats`` of `statistics` (or `tile_statistics` for tiled inference). Each method
        implements this; calling the denoiser computes the statistics and then calls it."""
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


class SubspaceMixin:
    """Noise whitening plus a HySime subspace with user floors on its size (rank or energy)."""

    def _init_subspace(self, rank, min_rank, energy):
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
            raise ValueError(f"rank must be a positive int or None (HySime), got {rank!r}")
        if isinstance(min_rank, bool) or not isinstance(min_rank, int) or min_rank < 0:
            raise ValueError(f"min_rank must be a non-negative int, got {min_rank!r}")
        if energy is not None and not 0 < energy <= 1:
            raise ValueError(f"energy must be in (0, 1] or None, got {energy!r}")
        self.rank, self.min_rank, self.energy = rank, min_rank, energy

    def statistics(self, cube: torch.Tensor) -> dict:
        """Band-wise noise ``sigma`` (by regression) and the signal subspace ``basis`` (bands x
        rank: HySime on the noise-whitened cube, or the first ``rank`` eigenvectors when
        ``rank`` is given), both from one Gram matrix of the pixels."""
        g, pixels = gram(cube)  # noise and subspace both come from Y Y^T (whitening rescales it)
        sigma = noise_from_gram(g, pixels)
        scale = self._whitening(sigma)
        g = g / (scale[:, None] * scale[None, :])
        if self.rank is not None:
            basis = hysime_from_gram(g, pixels, min_rank=cube.shape[-1]).basis[:, : self.rank]
        else:
            basis = hysime_from_gram(g, pixels, min_rank=self.min_rank, energy=self.energy).basis
        return {"sigma": sigma, "basis": basis}

    def _whitening(self, sigma: torch.Tensor) -> torch.Tensor:
        """Per-band divisor: sigma itself (non-i.i.d.) or its RMS (i.i.d.)."""
        sigma = sigma.clamp(min=1e-8 * float(sigma.max()) + 1e-30)
        if getattr(self, "iid", False):
            return torch.full_like(sigma, float(sigma.pow(2).mean().sqrt()))
        return sigma
