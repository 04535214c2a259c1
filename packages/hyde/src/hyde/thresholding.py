"""Soft and hard thresholding and Stein's unbiased risk estimate (SURE) for soft thresholds."""

from __future__ import annotations

import torch


def soft_threshold(x: torch.Tensor, threshold) -> torch.Tensor:
    """``sign(x) * max(|x| - threshold, 0)``; ``threshold`` may broadcast against ``x``."""
    if not isinstance(threshold, (int, float)):  # a number clamps twice as fast as a tensor
        threshold = torch.as_tensor(threshold, dtype=x.dtype, device=x.device)
    return x - torch.clamp(x, -threshold, threshold)  # the same, in two passes instead of four


def hard_threshold(x: torch.Tensor, threshold) -> torch.Tensor:
    """Keep entries with ``|x| > threshold``, zero the rest."""
    return torch.where(x.abs() > threshold, x, torch.zeros_like(x))


def sure_soft(x: torch.Tensor, threshold, sigma=1.0) -> torch.Tensor:
    """SURE of soft thresholding ``x`` (last axis = one signal) at ``threshold``, noise ``sigma``.

    SURE(t) = n*s^2 - 2*s^2*#{|x| <= t} + sum(min(x^2, t^2)), Donoho & Johnstone (1995).
    """
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    t = torch.as_tensor(threshold, dtype=x.dtype, device=x.device)
    if t.ndim < x.ndim:
        t = t.unsqueeze(-1)
    s2 = sigma**2
    if s2.ndim and s2.ndim < x.ndim:
        s2 = s2.unsqueeze(-1)
    n = x.shape[-1]
    inside = (x.abs() <= t).sum(-1).to(x.dtype)
    return (
        n * s2 - 2 * s2 * inside.unsqueeze(-1) + torch.minimum(x**2, t**2).sum(-1, keepdim=True)
    ).squeeze(-1)


def sure_soft_threshold(x: torch.Tensor, sigma=1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact SURE-optimal soft threshold per signal (last axis): returns ``(threshold, risk)``.

    The risk is piecewise in ``t`` with its minimum at 0 or at one of the ``|x_i|``, so every
    candidate is evaluated at once from a sorted copy (O(n log n)).
    """
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if sigma.ndim and sigma.ndim < x.ndim:
        sigma = sigma.unsqueeze(-1)
    scaled = (x / sigma).abs()
    a, _ = torch.sort(scaled, dim=-1)
    n = a.shape[-1]
    k = torch.arange(1, n + 1, dtype=x.dtype, device=x.device)
    below = torch.cumsum(a**2, dim=-1)
    risk = n - 2 * k + below + (n - k) * a**2
    zero_risk = torch.full_like(risk[..., :1], float(n))
    all_risk = torch.cat([zero_risk, risk], dim=-1)
    all_t = torch.cat([torch.zeros_like(a[..., :1]), a], dim=-1)
    best = all_risk.argmin(-1, keepdim=True)
    s = sigma.squeeze(-1) if sigma.ndim else sigma
    threshold = all_t.gather(-1, best).squeeze(-1) * s
    return threshold, all_risk.gather(-1, best).squeeze(-1) * s**2
