"""Multi-level 2-D discrete wavelet transforms on torch tensors, laid out like PyWavelets."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

MODES = ("symmetric", "reflect", "zero", "periodic")


@functools.lru_cache(maxsize=32)
def _filter_bank(wavelet: str) -> tuple[tuple[float, ...], ...]:
    import pywt

    try:
        w = pywt.Wavelet(wavelet)
    except ValueError as exc:
        raise ValueError(
            f"wavelet must be a discrete wavelet name known to PyWavelets, got {wavelet!r}"
        ) from exc
    return tuple(tuple(f) for f in (w.dec_lo, w.dec_hi, w.rec_lo, w.rec_hi))


def filters(wavelet: str, dtype=torch.float64, device=None) -> list[torch.Tensor]:
    """The (dec_lo, dec_hi, rec_lo, rec_hi) filters of ``wavelet`` as tensors, built in float64."""
    return [
        torch.tensor(f, dtype=torch.float64).to(dtype=dtype, device=device)
        for f in _filter_bank(wavelet)
    ]


def max_level(size: int, wavelet: str) -> int:
    """Deepest useful decomposition level for a signal of ``size`` samples (as PyWavelets)."""
    import pywt

    return pywt.dwt_max_level(size, len(_filter_bank(wavelet)[0]))


def _extension_index(
    n: int, pad: int, mode: str, device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Indices into a length-``n`` signal that extend it by ``pad`` samples on each side."""
    idx = torch.arange(-pad, n + pad, device=device)
    if mode == "symmetric":
        idx = idx % (2 * n)
        idx = torch.where(idx >= n, 2 * n - 1 - idx, idx)
    elif mode == "reflect":
        period = max(2 * n - 2, 1)
        idx = idx % period
        idx = torch.where(idx >= n, period - idx, idx)
    elif mode == "periodic":
        idx = idx % n
    elif mode == "zero":
        mask = (idx >= 0) & (idx < n)
        return idx.clamp(0, n - 1), mask
    else:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return idx, None


def _analysis_last(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, mode: str):
    """One analysis step along the last axis: returns (approximation, detail)."""
    n, flen = x.shape[-1], lo.numel()
    idx, mask = _extension_index(n, flen - 1, mode, x.device)
    ext = x.index_select(-1, idx)
    if mask is not None:
        ext = ext * mask.to(x.dtype)
    lead = ext.shape[:-1]
    flat = ext.reshape(-1, 1, ext.shape[-1])[..., 1:]
    bank = torch.stack([lo.flip(0), hi.flip(0)]).unsqueeze(1).to(x.dtype)
    out = F.conv1d(flat, bank, stride=2)
    approx = out[:, 0].reshape(*lead, -1)
    detail = out[:, 1].reshape(*lead, -1)
    return approx, detail


def _synthesis_last(approx: torch.Tensor, detail: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor):
    """One synthesis step along the last axis (the inverse of ``_analysis_last``)."""
    flen = lo.numel()
    lead = approx.shape[:-1]
    both = torch.stack([approx, detail], dim=-2).reshape(-1, 2, approx.shape[-1])
    bank = torch.stack([lo, hi]).unsqueeze(1).to(approx.dtype)
    full = F.conv_transpose1d(both, bank, stride=2)
    length = 2 * approx.shape[-1] - flen + 2
    return full[:, 0, flen - 2 : flen - 2 + length].reshape(*lead, length)


def dwt2(x: torch.Tensor, wavelet: str = "db5", mode: str = "symmetric"):
    """Single-level 2-D DWT over the last two axes: ``(cA, (cH, cV, cD))`` as ``pywt.dwt2``."""
    dec_lo, dec_hi, _, _ = filters(wavelet, x.dtype, x.device)
    lo_c, hi_c = _analysis_last(x, dec_lo, dec_hi, mode)
    parts = []
    for half in (lo_c, hi_c):
        a, d = _analysis_last(half.transpose(-1, -2), dec_lo, dec_hi, mode)
        parts.append((a.transpose(-1, -2), d.transpose(-1, -2)))
    (aa, da), (ad, dd) = parts
    return aa, (da, ad, dd)


def idwt2(coeffs, wavelet: str = "db5", mode: str = "symmetric") -> torch.Tensor:
    """Inverse of :func:`dwt2` (``mode`` is accepted for symmetry; synthesis does not need it)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    approx, (c_h, c_v, c_d) = coeffs
    _, _, rec_lo, rec_hi = filters(wavelet, approx.dtype, approx.device)
    lo_cols = _synthesis_last(approx.transpose(-1, -2), c_h.transpose(-1, -2), rec_lo, rec_hi)
    hi_cols = _synthesis_last(c_v.transpose(-1, -2), c_d.transpose(-1, -2), rec_lo, rec_hi)
    return _synthesis_last(lo_cols.transpose(-1, -2), hi_cols.transpose(-1, -2), rec_lo, rec_hi)


def wavedec2(
    x: torch.Tensor, wavelet: str = "db5", level: int | None = None, mode: str = "symmetric"
):
    """Multi-level 2-D DWT over the last two axes, ``[cA_n, (cH_n, cV_n, cD_n), ..., (.._1)]``."""
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        raise TypeError("x must be a torch.Tensor with at least 2 dimensions")
    if level is None:
        import pywt

        level = pywt.dwt_max_level(min(x.shape[-2:]), len(_filter_bank(wavelet)[0]))
    if isinstance(level, bool) or not isinstance(level, int) or level < 0:
        raise ValueError(f"level must be a non-negative int, got {level!r}")
    details = []
    approx = x
    for _ in range(level):
        approx, detail = dwt2(approx, wavelet, mode)
        details.append(detail)
    return [approx, *reversed(details)]


def waverec2(coeffs, wavelet: str = "db5", mode: str = "symmetric") -> torch.Tensor:
    """Inverse of :func:`wavedec2`; trims odd sizes as ``pywt.waverec2`` does."""
    approx = coeffs[0]
    for detail in coeffs[1:]:
        rows, cols = detail[0].shape[-2:]
        approx = idwt2((approx[..., :rows, :cols], detail), wavelet, mode)
    return approx


def coeffs_to_matrix(coeffs) -> tuple[torch.Tensor, list]:
    """Flatten a :func:`wavedec2` pyramid of shape (..., h, w) to (..., n_coefficients) plus layout."""
    pieces = [coeffs[0]] + [band for level in coeffs[1:] for band in level]
    layout = [p.shape[-2:] for p in pieces]
    flat = torch.cat([p.reshape(*p.shape[:-2], -1) for p in pieces], dim=-1)
    return flat, layout


def matrix_to_coeffs(flat: torch.Tensor, layout) -> list:
    """Inverse of :func:`coeffs_to_matrix`."""
    sizes = [int(s[0]) * int(s[1]) for s in layout]
    chunks = torch.split(flat, sizes, dim=-1)
    shaped = [c.reshape(*c.shape[:-1], *s) for c, s in zip(chunks, layout, strict=True)]
    levels = [tuple(shaped[i : i + 3]) for i in range(1, len(shaped), 3)]
    return [shaped[0], *levels]
