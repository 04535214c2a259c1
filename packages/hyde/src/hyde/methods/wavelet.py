"""Wavelet-domain low-rank methods: HyRes."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import wavelets
from ..estimation import estimate_noise_wavelet, signal_dimension, sparse_noise
from ..thresholding import soft_threshold, sure_soft_threshold
from .base import Denoiser, register


def _check_floor(min_rank, energy):
    if isinstance(min_rank, bool) or not isinstance(min_rank, int) or min_rank < 0:
        raise ValueError(f"min_rank must be a non-negative int, got {min_rank!r}")
    if energy is not None and not 0 < energy <= 1:
        raise ValueError(f"energy must be in (0, 1] or None, got {energy!r}")


@register
class HyRes(Denoiser):
    """HyRes (Rasti, Ulfarsson & Ghamisi 2017): Y = D2 W V^T + N, parameter-free.

    Steps: whiten the bands by the regression noise estimate; principal components of the
    whitened cube (V from the eigenvectors of Y^T Y); a 2-D wavelet transform of each component
    image; soft thresholding of the detail coefficients of component i at the SURE-optimal
    lambda_i (the noise is unit variance after whitening); the rank r minimising the total SURE,
    where a dropped component costs its unbiased energy ||c_i||^2 - n_i, searched among the
    components with more than twice the whitened noise power; inverse transform of the first r components, V_r^T
    and un-whitening. Unlike HyDe's HyRes the thresholded coefficients are the ones
    reconstructed.

    Weak spectral structure (e.g. narrow gas absorption lines) lives in components that SURE may
    drop; ``min_rank`` keeps at least that many, and ``energy`` keeps as many as are needed to
    hold that fraction of the whitened cube's energy (e.g. 0.9999). ``rank`` fixes r. The
    regression noise estimate counts such a line as noise of its band (no other band predicts
    it) and whitening then suppresses it; ``noise="wavelet"`` estimates each band's noise from
    its own finest diagonal wavelet details instead, which keeps the line at its true weight.
    """

    name = "hyres"
    noise_kinds = ("gaussian", "noniid")
    _cap_rank = True  # cap the rank at the noise edge under sparse noise (see `_rank`)

    def __init__(
        self,
        wavelet: str = "db5",
        levels: int = 5,
        mode: str = "symmetric",
        rank: int | None = None,
        min_rank: int = 0,
        energy: float | None = None,
        noise: str = "regression",
    ):
        if noise not in ("regression", "wavelet"):
            raise ValueError(f"noise must be 'regression' or 'wavelet', got {noise!r}")
        self.noise = noise
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ValueError(f"levels must be a positive int, got {levels!r}")
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
            raise ValueError(f"rank must be a positive int or None (SURE), got {rank!r}")
        if mode not in wavelets.MODES:
            raise ValueError(f"mode must be one of {wavelets.MODES}, got {mode!r}")
        _check_floor(min_rank, energy)
        wavelets.filters(wavelet)  # fail early on an unknown wavelet
        self.wavelet, self.levels, self.mode = wavelet, levels, mode
        self.rank, self.min_rank, self.energy = rank, min_rank, energy

    def statistics(self, cube):
        if self.noise == "wavelet":
            return {"sigma": estimate_noise_wavelet(cube).to(torch.float64)}
        return super().statistics(cube)

    def tile_statistics(self, sample):
        """Noise, principal directions and rank from a sample, shared by all tiles."""
        stats = super().tile_statistics(sample)
        sigma = stats["sigma"].clamp(min=1e-8 * float(stats["sigma"].max()) + 1e-30)
        y = sample.to(torch.float64).reshape(-1, sample.shape[-1]) / sigma
        stats["basis"] = torch.linalg.svd(y, full_matrices=False)[2].T
        previous = getattr(self, "rank_", None)
        self.denoise(sample.to(torch.float64), stats)
        stats["rank"] = self.rank_
        if previous is not None:
            self.rank_ = previous
        return stats

    def _levels(self, rows: int, cols: int) -> int:
        return max(1, min(self.levels, wavelets.max_level(min(rows, cols), self.wavelet)))

    def denoise(self, cube, stats):
        rows, cols, bands = cube.shape
        sigma = stats["sigma"].to(torch.float64).to(cube.device)
        sigma = sigma.clamp(min=1e-8 * float(sigma.max()) + 1e-30)
        y = cube.to(torch.float64).reshape(-1, bands) / sigma
        g = y.T @ y
        if "basis" in stats:  # a global basis (tiled inference) instead of this cube's own
            v = stats["basis"].to(torch.float64).to(cube.device)
            power = (v * (g @ v)).sum(0)
        else:
            power, v = torch.linalg.eigh(g)
            power, v = power.flip(0), v.flip(1)  # principal directions, largest first
        rank = self._rank(y, power, stats, g)
        components = (y @ v[:, :rank]).T.reshape(rank, rows, cols)
        coeffs = wavelets.wavedec2(components, self.wavelet, self._levels(rows, cols), self.mode)
        flat, layout = wavelets.coeffs_to_matrix(coeffs)
        n_approx = int(layout[0][0]) * int(layout[0][1])
        details = flat[:, n_approx:]
        lam, risk_details = sure_soft_threshold(details, 1.0)
        if self.rank is None and "rank" not in stats:
            # total SURE of keeping the first r components (thresholded; the approximation as it
            # is, risk 1 per coefficient) and dropping the rest (risk = unbiased energy)
            keep_risk = risk_details + n_approx
            drop_risk = flat.pow(2).sum(1) - flat.shape[1]
            total = torch.cumsum(keep_risk, 0) + (drop_risk.sum() - torch.cumsum(drop_risk, 0))
            rank = max(int(torch.argmin(total)) + 1, self._floor(power))
        self.rank_ = rank
        shrunk = torch.cat(
            [flat[:rank, :n_approx], soft_threshold(details[:rank], lam[:rank, None])], 1
        )
        images = wavelets.waverec2(wavelets.matrix_to_coeffs(shrunk, layout), self.wavelet)
        images = images[:, :rows, :cols].reshape(rank, -1)
        x = (images.T @ v[:, :rank].T) * sigma
        return x.reshape(rows, cols, bands).to(cube.dtype)

    def _floor(self, power: torch.Tensor) -> int:
        """The least rank ``min_rank`` and ``energy`` ask for."""
        floor = self.min_rank
        if self.energy is not None:
            cumulative = torch.cumsum(power, 0) / power.sum()
            floor = max(floor, int((cumulative < self.energy).sum()) + 1)
        return min(floor, power.numel())

    def _rank(self, y, power, stats, g) -> int:
        """Components to transform: the given rank, or candidates for the SURE choice.

        The SURE choice only looks at components whose power exceeds twice the (unit) power of
        the whitened noise, HySime's criterion for the noise model the whitening assumes: the
        principal components of pure noise are the directions of largest noise energy, so
        their ||c||^2 - n overstates their true energy and SURE alone kept most of them (56 of
        64 on a generated cube of rank 5), 1.5-2 dB worse, and on mixed noise all 64. When the
        regression residuals are heavy-tailed (`hyde.estimation.sparse_noise`) they must also
        exceed the strongest noise direction (`hyde.estimation.signal_dimension`): sparse
        noise spreads the whitened noise power above 2, and twice the unit power alone kept 13
        components for 5 endmembers on mixed noise (256 x 256 x 128 cube), 1.6 dB worse than 5.
        """
        bands = power.numel()
        fixed = self.rank if self.rank is not None else stats.get("rank")
        if fixed is not None:
            return min(max(int(fixed), self._floor(power)), bands)
        pixels = y.shape[0]
        dimension = int((power > 2 * pixels).sum())
        if self._cap_rank and self.noise == "regression" and sparse_noise(y, g):
            dimension = min(dimension, signal_dimension(g, pixels))
        return min(max(dimension, self._floor(power), 1), bands)


def l1_spectral_smoother(
    h, lam: float, iterations: int = 50, mu1: float = 0.5, mu2: float = 0.5, chunk: int = 1 << 16
):
    """ADMM for min_X ||H - X||_1 + lam ||X D^T||_1, H = (pixels x bands), D first differences.

    Splitting V1 = H - X and V2 = X D^T with scaled duals L1, L2:
    X = (mu1 (H - V1 + L1) + mu2 (V2 - L2) D) (mu1 I + mu2 D^T D)^-1,
    V1 = soft(H - X + L1, 1/mu1), V2 = soft(X D^T + L2, lam/mu2), L += residuals.
    Runs in the dtype of ``h``. The problem is separable over pixels, so it is solved for
    blocks of about ``chunk`` entries at a time (the iterates then stay in the CPU cache).
    """
    bands = h.shape[-1]
    system = smoother_system(bands, mu1, mu2, h.dtype, h.device)
    rows = max(1, chunk // bands)
    parts = [
        _smoother_admm(h[i : i + rows], system, lam, iterations, mu1, mu2)
        for i in range(0, h.shape[0], rows)
    ]
    return torch.cat(parts) if parts else h.clone()


def smoother_system(bands: int, mu1: float, mu2: float, dtype=torch.float64, device=None):
    """(mu1 I + mu2 D^T D)^-1 for D the first differences of ``bands`` bands, in ``dtype``.

    The inverse of this tridiagonal matrix decays geometrically away from the diagonal; from
    about 100 bands on its far entries fall below float32's normal range, and subnormal
    operands made the products of the smoother 8x slower (17 s instead of 2 s on a
    256 x 256 x 128 cube). Entries below 1e-20 of the largest are set to 0: they change no
    float32 or float64 result.
    """
    eye = torch.eye(bands, dtype=torch.float64, device=device)
    diff = torch.diff(eye, dim=0)
    system = torch.linalg.inv(mu1 * eye + mu2 * diff.T @ diff)
    return torch.where(system.abs() < 1e-20 * system.abs().max(), 0.0, system).to(dtype)


def _smoother_admm(h, system, lam, iterations, mu1, mu2):
    # with a = H - X + L1: V1 = soft(a, t) and the new L1 = a - V1 = clamp(a, -t, t), which
    # saves two passes over the data per update (likewise for V2, L2)
    t1, t2 = 1.0 / mu1, lam / mu2
    x = h.clone()
    v1 = torch.zeros_like(h)
    v2 = torch.diff(h, dim=-1)
    l1 = torch.zeros_like(h)
    l2 = torch.zeros_like(v2)
    for _ in range(iterations):
        rhs = torch.sub(h, v1).add_(l1).mul_(mu1)
        rhs.sub_(torch.diff(F.pad(v2 - l2, (1, 1)), dim=-1), alpha=mu2)  # + mu2 D^T (V2 - L2)
        x = rhs @ system
        a = torch.sub(h, x).add_(l1)
        l1 = torch.clamp(a, -t1, t1)
        v1 = a.sub_(l1)
        b = torch.diff(x, dim=-1).add_(l2)
        l2 = torch.clamp(b, -t2, t2)
        v2 = b.sub_(l2)
    return x


@register
class HyMiNoR(HyRes):
    """HyMiNoR (Rasti, Ghamisi & Benediktsson 2020): HyRes, then an l1 spectral smoother.

    H = HyRes(Y) removes the Gaussian part; then min_X ||H - X||_1 + lam ||X D^T||_1 with D the
    first difference along the bands, by ADMM on V1 = H - X and V2 = X D^T (penalties mu1, mu2):
    the l1 fidelity lets sparse outliers (impulses, stripes, dead lines) go while the spectral
    total variation keeps spectra piecewise smooth. Per spectrum, l1-TV with l1 fidelity
    removes a plateau of width w bands and height a when its fidelity cost w a is below its
    jump cost 2 lam a, i.e. when w < 2 lam: the default lam = 0.75 removes single-band outliers
    and keeps every feature two bands wide or more. The paper's lam = 10 flattens all features
    narrower than 20 bands (the whole spectrum of a 16-band cube; HyDe's 50 iterations stop
    long before that minimiser). mu1 = mu2 = 5 (the paper's 0.5 needs about 1000 iterations
    for data in [0, 1]) lets the paper's 50 iterations reach the minimiser: on a generated
    128 x 128 x 64 cube within 0.05 dB of 1000 iterations at mu = 0.5.
    """

    name = "hyminor"
    noise_kinds = ("gaussian", "noniid", "stripes", "deadlines", "impulse", "mixture")
    # the l1 step removes the sparse noise; capping the HyRes rank at the noise edge cost it
    # 1.0 dB on a generated 32 x 32 x 32 cube with mixed noise (3 components kept of 4, not 7)
    _cap_rank = False

    def __init__(
        self,
        lam: float = 0.75,
        iterations: int = 50,
        mu1: float = 5.0,
        mu2: float = 5.0,
        **hyres_params,
    ):
        super().__init__(**hyres_params)
        for key, value in (("lam", lam), ("mu1", mu1), ("mu2", mu2)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{key} must be a number > 0, got {value!r}")
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"iterations must be a positive int, got {iterations!r}")
        self.lam, self.iterations, self.mu1, self.mu2 = float(lam), iterations, mu1, mu2

    def denoise(self, cube, stats):
        rows, cols, bands = cube.shape
        h = super().denoise(cube, stats).reshape(-1, bands)
        x = l1_spectral_smoother(h, self.lam, self.iterations, self.mu1, self.mu2)
        return x.reshape(rows, cols, bands).to(cube.dtype)


def spectral_smoother(y: torch.Tensor, sigma: torch.Tensor, lam: float) -> torch.Tensor:
    """argmin_X ||(Y - X) / sigma||^2 + lam ||X D^T||^2 for Y (rows x bands), D first differences.

    The solution is X = Y Sigma^-1 (Sigma^-1 + lam D^T D)^-1 with Sigma = diag(sigma^2).
    """
    bands = y.shape[-1]
    eye = torch.eye(bands, dtype=y.dtype, device=y.device)
    diff = torch.diff(eye, dim=0)
    inv_cov = torch.diag(1.0 / sigma.to(y.dtype) ** 2)
    return y @ inv_cov @ torch.linalg.inv(inv_cov + lam * diff.T @ diff)


@register
class FORPDN(Denoiser):
    """FORPDN (Rasti, Sveinsson, Ulfarsson & Benediktsson 2014): first-order roughness penalty.

    In the wavelet domain, level by level (the approximation first, then the details of each
    level together), min ||(C - X) Sigma^-1/2||^2 + lam_l ||X D^T||^2 with D the spectral first
    difference and Sigma the band noise variances; the solution is linear in C, so SURE is
    exact: with K = Sigma^1/2 D^T D Sigma^1/2 = U diag(k) U^T and whitened coefficients Z,
    SURE(lam) = sum_j ||Z u_j||^2 (lam k_j / (1 + lam k_j))^2 - n B + 2 n sum_j 1 / (1 + lam k_j),
    minimised per level over lam = 0 and a log grid of ``grid`` values from 1e-3 / max(k) to
    1e3 / min(k > 0), so the grid scales with the noise: k is of the order of sigma^2, and a
    fixed grid such as [1e-4, 1e4] stops short of the strong smoothing the finest details need at
    low noise (1.3 dB lost on a generated 256 x 256 x 128 cube at sigma = 0.02). HyDe stops at
    the first increase of a linear grid. ``lam`` fixes one value for every level instead.
    Separate lam per orientation (H, V, D) gained 0.2-0.3 dB on Gaussian noise but lost 3 dB on
    mixed noise (stripes live in one orientation), so the levels keep one lam each.
    """

    name = "forpdn"
    noise_kinds = ("gaussian", "noniid")

    def __init__(
        self,
        wavelet: str = "db6",
        levels: int = 3,
        mode: str = "symmetric",
        grid: int = 81,
        lam: float | None = None,
    ):
        if lam is not None and (
            isinstance(lam, bool) or not isinstance(lam, (int, float)) or lam < 0
        ):
            raise ValueError(f"lam must be a number >= 0 or None (SURE), got {lam!r}")
        self.lam = lam
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ValueError(f"levels must be a positive int, got {levels!r}")
        if mode not in wavelets.MODES:
            raise ValueError(f"mode must be one of {wavelets.MODES}, got {mode!r}")
        wavelets.filters(wavelet)
        self.wavelet, self.levels, self.mode, self.grid = wavelet, levels, mode, grid

    def denoise(self, cube, stats):
        rows, cols, bands = cube.shape
        sigma = stats["sigma"].to(torch.float64).to(cube.device)
        sigma = sigma.clamp(min=1e-8 * float(sigma.max()) + 1e-30)
        levels = max(1, min(self.levels, wavelets.max_level(min(rows, cols), self.wavelet)))
        # the transforms run in the cube's dtype (float32 halves their time), the rest in float64
        coeffs = wavelets.wavedec2(cube.permute(2, 0, 1), self.wavelet, levels, self.mode)
        diff = torch.diff(torch.eye(bands, dtype=torch.float64, device=cube.device), dim=0)
        k, u = torch.linalg.eigh(sigma[:, None] * (diff.T @ diff) * sigma[None, :])
        k = k.clamp(min=0)
        if self.lam is None:
            lams = _lambda_grid(k, self.grid)
        else:
            lams = torch.tensor([float(self.lam)], dtype=torch.float64, device=cube.device)
        self.lams_ = []

        def smooth(parts):
            flat = torch.cat([p.reshape(bands, -1) for p in parts], 1).T  # n x bands
            z = (flat / sigma) @ u  # whitened, in the eigenbasis of K
            n = z.shape[0]
            energy = z.pow(2).sum(0)
            shrink = 1.0 / (1.0 + lams[:, None] * k[None, :])  # grid x bands
            sure = ((1 - shrink) ** 2 * energy).sum(1) - n * bands + 2 * n * shrink.sum(1)
            best = int(torch.argmin(sure))
            self.lams_.append(float(lams[best]))
            out = ((z * shrink[best]) @ u.T) * sigma
            sizes = [p[0].numel() for p in parts]
            chunks = torch.split(out.T, sizes, dim=1)
            return [c.reshape(p.shape).to(p.dtype) for c, p in zip(chunks, parts, strict=True)]

        new = [smooth([coeffs[0]])[0]]
        for detail in coeffs[1:]:
            new.append(tuple(smooth(list(detail))))
        x = wavelets.waverec2(new, self.wavelet, self.mode)[:, :rows, :cols]
        return x.permute(1, 2, 0).to(cube.dtype)


def _lambda_grid(k: torch.Tensor, size: int) -> torch.Tensor:
    """Log grid of lambda from 1e-3 / max(k) to 1e3 / min(k > 0), with 0 in front."""
    positive = k[k > 1e-12 * float(k.max())]
    low, high = 1e-3 / float(positive.max()), 1e3 / float(positive.min())
    grid = torch.logspace(math.log10(low), math.log10(high), size, dtype=k.dtype, device=k.device)
    return torch.cat([torch.zeros(1, dtype=k.dtype, device=k.device), grid])
