"""Quality metrics of a denoised cube: band-mean PSNR and SSIM, SAM, ERGAS, and a report table."""

from __future__ import annotations

import math

import numpy as np
import torch

from ._checks import as_cube


def _pair(reference, estimate):
    reference, estimate = as_cube(reference, "reference"), as_cube(estimate, "estimate")
    if reference.shape != estimate.shape:
        raise ValueError(
            f"reference and estimate must have the same shape, got {tuple(reference.shape)} and {tuple(estimate.shape)}"
        )
    return reference.to(torch.float64).cpu(), estimate.to(torch.float64).cpu()


def psnr(reference, estimate, data_range: float | None = 1.0, per_band: bool = False):
    """PSNR in dB, mean over bands; ``data_range=None`` uses each band's max-min of ``reference``."""
    ref, est = _pair(reference, estimate)
    mse = (ref - est).pow(2).mean(dim=(0, 1))
    if data_range is None:
        peak = ref.amax(dim=(0, 1)) - ref.amin(dim=(0, 1))
    else:
        peak = torch.full_like(mse, float(data_range))
    values = 10 * torch.log10(peak**2 / mse)
    return values if per_band else float(values.mean())


def ssim(reference, estimate, data_range: float = 1.0) -> float:
    """Structural similarity, mean over bands (scikit-image's ``structural_similarity`` per band)."""
    from skimage.metrics import structural_similarity

    ref, est = _pair(reference, estimate)
    r, e = ref.numpy(), est.numpy()
    return float(
        np.mean(
            [
                structural_similarity(r[..., b], e[..., b], data_range=data_range)
                for b in range(r.shape[-1])
            ]
        )
    )


def sam(reference, estimate, degrees: bool = True, eps: float = 1e-12) -> float:
    """Spectral angle mapper: mean over pixels of the angle between reference and estimate spectra."""
    ref, est = _pair(reference, estimate)
    # arccos of the cosine loses half the digits near 0; 2 atan2(|u - v|, |u + v|) of the unit
    # vectors u, v is the same angle, accurate to rounding everywhere (Kahan).
    u = ref / ref.norm(dim=-1, keepdim=True).clamp(min=eps)
    v = est / est.norm(dim=-1, keepdim=True).clamp(min=eps)
    angle = 2 * torch.atan2((u - v).norm(dim=-1), (u + v).norm(dim=-1))
    value = float(angle.mean())
    return math.degrees(value) if degrees else value


def ergas(reference, estimate, ratio: float = 1.0) -> float:
    """ERGAS = 100 / ratio * sqrt(mean_b (RMSE_b / mean_b)^2); ratio 1 for denoising."""
    ref, est = _pair(reference, estimate)
    rmse = (ref - est).pow(2).mean(dim=(0, 1)).sqrt()
    means = ref.mean(dim=(0, 1))
    return float(100.0 / ratio * torch.sqrt(((rmse / means) ** 2).mean()))


def evaluate(reference, estimate, data_range: float = 1.0) -> dict[str, float]:
    """All metrics of ``estimate`` against ``reference`` as a dict."""
    return {
        "psnr": psnr(reference, estimate, data_range),
        "ssim": ssim(reference, estimate, data_range),
        "sam": sam(reference, estimate),
        "ergas": ergas(reference, estimate),
    }


def report(rows: dict[str, dict[str, float]], extra: tuple[str, ...] = ()) -> str:
    """Markdown table with one row per name: PSNR (dB), SSIM, SAM (deg), ERGAS and ``extra`` keys."""
    keys = ["psnr", "ssim", "sam", "ergas", *extra]
    heads = {
        "psnr": "PSNR (dB)",
        "ssim": "SSIM",
        "sam": "SAM (deg)",
        "ergas": "ERGAS",
        "time": "time (s)",
    }
    lines = ["| method | " + " | ".join(heads.get(k, k) for k in keys) + " |"]
    lines.append("|---" * (len(keys) + 1) + "|")
    for name, values in rows.items():
        cells = [f"{values[k]:.4g}" if k in values else "-" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
