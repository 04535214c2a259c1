"""Batched 2-D image denoisers in torch: non-local means, Chambolle TV, adaptive median filter."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over (2r+1)^2 windows of a (batch x H x W) tensor that is already padded by ``radius``."""
    return F.avg_pool2d(x.unsqueeze(1), 2 * radius + 1, stride=1).squeeze(1)


def non_local_means(
    images: torch.Tensor, sigma, patch_radius: int = 2, search_radius: int = 7, h: float = 0.5
) -> torch.Tensor:
    """Non-local means of a batch of images (batch x H x W) with known noise ``sigma`` per image.

    Weights are exp(-max(d^2 - 2 sigma^2, 0) / (h sigma)^2) with d^2 the mean squared difference
    of (2 patch_radius + 1)^2 patches (Buades, Coll & Morel 2005; Darbon et al. 2008 for the
    shift-by-shift evaluation); weights below exp(-30) are set to 0. The centre pixel gets the
    largest weight of its neighbours, so a pixel without similar neighbours is kept as it is.
    """
    sigma = torch.as_tensor(sigma, dtype=images.dtype, device=images.device).reshape(-1, 1, 1)
    sigma = sigma.expand(images.shape[0], 1, 1).clamp(min=1e-12)
    pad = search_radius + patch_radius
    padded = F.pad(images.unsqueeze(1), (pad,) * 4, mode="reflect").squeeze(1)
    rows, cols = images.shape[-2:]
    core = padded[
        :,
        search_radius : search_radius + rows + 2 * patch_radius,
        search_radius : search_radius + cols + 2 * patch_radius,
    ]
    total = torch.zeros_like(images)
    weight_sum = torch.zeros_like(images)
    max_weight = torch.zeros_like(images)
    scale = (h * sigma) ** 2
    for dy in range(-search_radius, search_radius + 1):
        for dx in range(-search_radius, search_radius + 1):
            if dy == 0 and dx == 0:
                continue
            shifted = padded[
                :,
                search_radius + dy : search_radius + dy + rows + 2 * patch_radius,
                search_radius + dx : search_radius + dx + cols + 2 * patch_radius,
            ]
            dist = _box_mean((core - shifted) ** 2, patch_radius)
            exponent = torch.clamp(dist - 2 * sigma**2, min=0) / scale
            # exp() of large arguments lands in denormal floats, which are very slow on CPUs.
            weight = torch.where(exponent < 30, torch.exp(-exponent.clamp(max=30)), 0.0)
            centre = shifted[
                :, patch_radius : patch_radius + rows, patch_radius : patch_radius + cols
            ]
            total += weight * centre
            weight_sum += weight
            max_weight = torch.maximum(max_weight, weight)
    max_weight = torch.where(max_weight > 0, max_weight, torch.ones_like(max_weight))
    return (total + max_weight * images) / (weight_sum + max_weight)


def _grad(u: torch.Tensor):
    gx = torch.zeros_like(u)
    gy = torch.zeros_like(u)
    gx[..., :-1, :] = u[..., 1:, :] - u[..., :-1, :]
    gy[..., :, :-1] = u[..., :, 1:] - u[..., :, :-1]
    return gx, gy


def _div(px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    dx = torch.zeros_like(px)
    dx[..., 0, :] = px[..., 0, :]
    dx[..., 1:-1, :] = px[..., 1:-1, :] - px[..., :-2, :]
    dx[..., -1, :] = -px[..., -2, :]
    dy = torch.zeros_like(py)
    dy[..., :, 0] = py[..., :, 0]
    dy[..., :, 1:-1] = py[..., :, 1:-1] - py[..., :, :-2]
    dy[..., :, -1] = -py[..., :, -2]
    return dx + dy


def tv_denoise(images: torch.Tensor, weight, iterations: int = 100) -> torch.Tensor:
    """Isotropic TV denoising, min 1/2 ||u - f||^2 + weight * TV(u), per image of a batch.

    Chambolle's (2004) dual projection with step 1/8; ``weight`` is a number or one per image.
    """
    weight = torch.as_tensor(weight, dtype=images.dtype, device=images.device).reshape(-1, 1, 1)
    weight = weight.expand(images.shape[0], 1, 1).clamp(min=1e-12)
    px = torch.zeros_like(images)
    py = torch.zeros_like(images)
    tau = 0.125
    for _ in range(iterations):
        gx, gy = _grad(_div(px, py) - images / weight)
        norm = torch.sqrt(gx**2 + gy**2)
        px = (px + tau * gx) / (1 + tau * norm)
        py = (py + tau * gy) / (1 + tau * norm)
    return images - weight * _div(px, py)


def _window_stats(images: torch.Tensor, size: int):
    radius = size // 2
    padded = F.pad(images.unsqueeze(1), (radius,) * 4, mode="replicate")
    patches = F.unfold(padded, size).reshape(images.shape[0], size * size, *images.shape[-2:])
    return patches.amin(1), patches.median(1).values, patches.amax(1)


def adaptive_median(images: torch.Tensor, max_size: int = 7) -> torch.Tensor:
    """Adaptive median filter (Hwang & Haddad 1995) of a batch of images (batch x H x W).

    The window grows from 3x3 to ``max_size`` until its median is not an extreme value; a pixel
    that is itself an extreme of that window is replaced by the median, others are kept.
    """
    result = images.clone()
    undecided = torch.ones_like(images, dtype=torch.bool)
    median = images
    for size in range(3, max_size + 1, 2):
        low, median, high = _window_stats(images, size)
        settled = undecided & (median > low) & (median < high)
        is_extreme = (images <= low) | (images >= high)
        result = torch.where(settled & is_extreme, median, result)
        undecided &= ~settled
    return torch.where(undecided, median, result)


def sure_non_local_means(
    images: torch.Tensor,
    strengths=(0.0, 0.3, 0.5, 0.8),
    patch_radius: int = 2,
    search_radius: int = 7,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-local means of unit-noise images with the strength ``h`` chosen per image by MC-SURE.

    The divergence in Stein's risk is estimated with one random probe (Ramani, Blu & Unser 2008);
    ``h = 0`` stands for the identity, so an image is never made worse in expected risk. Returns
    (denoised images, chosen h per image).
    """
    gen = torch.Generator().manual_seed(seed)
    probe = torch.randn(images.shape, generator=gen, dtype=torch.float64).to(images)
    eps = 1e-3
    pixels = images[0].numel()
    best = images.clone()
    best_risk = torch.full(
        (images.shape[0],), float(pixels), dtype=images.dtype, device=images.device
    )
    best_h = torch.zeros(images.shape[0], dtype=images.dtype, device=images.device)
    for h in strengths:
        if h <= 0:
            continue
        out = non_local_means(images, 1.0, patch_radius, search_radius, h)
        moved = non_local_means(images + eps * probe, 1.0, patch_radius, search_radius, h)
        divergence = (probe * (moved - out)).sum((-2, -1)) / eps
        risk = (images - out).pow(2).sum((-2, -1)) - pixels + 2 * divergence
        better = risk < best_risk
        best = torch.where(better[:, None, None], out, best)
        best_risk = torch.where(better, risk, best_risk)
        best_h = torch.where(better, torch.full_like(best_h, h), best_h)
    return best, best_h
