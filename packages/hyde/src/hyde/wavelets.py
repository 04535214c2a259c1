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


def _analysis(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, mode: str, axis: int):
    """One analysis step along ``axis`` (-1 or -2): returns (approximation, detail)."""
    n, flen = x.shape[axis], lo.numel()
    idx, mask = _extension_index(n, flen - 1, mode, x.device)
    ext = x.index_select(axis, idx[1:])  # the first extended sample never reaches the output
    if mask is not None:
        shape = (-1, 1) if axis == -2 else (-1,)
        ext = ext * mask[1:].to(x.dtype).reshape(shape)
    lead = ext.shape[:-2]
    kernel = torch.stack([lo.flip(0), hi.flip(0)]).to(x.dtype)
    if axis == -1:
        weight, stride = kernel.reshape(2, 1, 1, flen), (1, 2)
    else:
        weight, stride = kernel.reshape(2, 1, flen, 1), (2, 1)
    out = F.conv2d(ext.reshape(-1, 1, *ext.shape[-2:]), weight, stride=stride)
    return out[:, 0].reshape(*lead, *out.shape[-2:]), out[:, 1].reshape(*lead, *out.shape[-2:])


def _synthesis(approx, detail, lo: torch.Tensor, hi: torch.Tensor, axis: int) -> torch.Tensor:
    """One synthesis step along ``axis`` (-1 or -2), the inverse of `_analysis`."""
    flen = lo.numel()
    lead = approx.shape[:-2]
    both = torch.stack([approx, detail], dim=-3).reshape(-1, 2, *approx.shape[-2:])
    kernel = torch.stack([lo, hi]).to(approx.dtype)
    length = 2 * approx.shape[axis] - flen + 2
    if axis == -1:
        full = F.conv_transpose2d(both, kernel.reshape(2, 1, 1, flen), stride=(1, 2))
        full = full[:, 0, :, flen - 2 : flen - 2 + length]
    else:
        full = F.conv_transpose2d(both, kernel.reshape(2, 1, flen, 1), stride=(2, 1))
        full = full[:, 0, flen - 2 : flen - 2 + length, :]
    return full.reshape(*lead, *full.shape[-2:])


def dwt2(x: torch.Tensor, wavelet: str = "db5", mode: str = "symmetric"):
    """Single-level 2-D DWT over the last two axes: ``(cA, (cH, cV, cD))`` as ``pywt.dwt2``."""
    dec_lo, dec_hi, _, _ = filters(wavelet, x.dtype, x.device)
    lo_c, hi_c = _analysis(x, dec_lo, dec_hi, mode, -1)
    aa, da = _analysis(lo_c, dec_lo, dec_hi, mode, -2)
    ad, dd = _analysis(hi_c, dec_lo, dec_hi, mode, -2)
    return aa, (da, ad, dd)


def idwt2(coeffs, wavelet: str = "db5", mode: str = "symmetric") -> torch.Tensor:
    """Inverse of `dwt2` (``mode`` is accepted for symmetry; synthesis does not need it)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    approx, (c_h, c_v, c_d) = coeffs
    _, _, rec_lo, rec_hi = filters(wavelet, approx.dtype, approx.device)
    lo_cols = _synthesis(approx, c_h, rec_lo, rec_hi, -2)
    hi_cols = _synthesis(c_v, c_d, rec_lo, rec_hi, -2)
    return _synthesis(lo_cols, hi_cols, rec_lo, rec_hi, -1)


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
    """Inverse of `wavedec2`; trims odd sizes as ``pywt.waverec2`` does."""
    approx = coeffs[0]
    for detail in coeffs[1:]:
        rows, cols = detail[0].shape[-2:]
        approx = idwt2((approx[..., :rows, :cols], detail), wavelet, mode)
    return approx


def coeffs_to_matrix(coeffs) -> tuple[torch.Tensor, list]:
    """Flatten a `wavedec2` pyramid of shape (..., h, w) to (..., n_coefficients) plus layout."""
    pieces = [coeffs[0]] + [band for level in coeffs[1:] for band in level]
    layout = [p.shape[-2:] for p in pieces]
    flat = torch.cat([p.reshape(*p.shape[:-2], -1) for p in pieces], dim=-1)
    return flat, layout


def matrix_to_coeffs(flat: torch.Tensor, layout) -> list:
    """Inverse of `coeffs_to_matrix`."""
    sizes = [int(s[0]) * int(s[1]) for s in layout]
    chunks = torch.split(flat, sizes, dim=-1)
    shaped = [c.reshape(*c.shape[:-1], *s) for c, s in zip(chunks, layout, strict=True)]
    levels = [tuple(shaped[i : i + 3]) for i in range(1, len(shaped), 3)]
    return [shaped[0], *levels]
