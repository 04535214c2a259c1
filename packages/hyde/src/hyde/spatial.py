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
    """Forward differences along rows and columns, 0 on the last row / column."""
    gx = F.pad(torch.diff(u, dim=-2), (0, 0, 0, 1))
    gy = F.pad(torch.diff(u, dim=-1), (0, 1))
    return gx, gy


def _div(px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Minus the adjoint of `_grad` (px's last row and py's last column are ignored)."""
    dx = torch.diff(F.pad(px[..., :-1, :], (0, 0, 1, 1)), dim=-2)
    dy = torch.diff(F.pad(py[..., :, :-1], (1, 1)), dim=-1)
    return dx + dy


def tv_denoise(images: torch.Tensor, weight, iterations: int = 100, dual=None):
    """Isotropic TV denoising, min 1/2 ||u - f||^2 + weight * TV(u), per image of a batch.

    Chambolle's (2004) dual projection with step 1/8; ``weight`` is a number or one per image.
    ``dual`` = (px, py) from an earlier call warm-starts the iteration (for a sequence of
    similar problems); it is updated in place.
    """
    weight = torch.as_tensor(weight, dtype=images.dtype, device=images.device).reshape(-1, 1, 1)
    weight = weight.expand(images.shape[0], 1, 1).clamp(min=1e-12)
    if dual is None:
        dual = (torch.zeros_like(images), torch.zeros_like(images))
    px, py = dual
    tau = 0.125
    scaled = images / weight
    for _ in range(iterations):
        gx, gy = _grad(_div(px, py) - scaled)
        norm = torch.sqrt(gx**2 + gy**2).mul_(tau).add_(1)
        px.add_(gx, alpha=tau).div_(norm)
        py.add_(gy, alpha=tau).div_(norm)
    return images - weight * _div(px, py)


def adaptive_median(images: torch.Tensor, max_size: int = 7) -> torch.Tensor:
    """Adaptive median filter (Hwang & Haddad 1995) of a batch of images (batch x H x W).

    The window grows from 3x3 to ``max_size`` until its median is not an extreme value; a pixel
    that is itself an extreme of that window is replaced by the median, others are kept (a
    pixel still undecided at ``max_size`` gets that window's median). Edges are replicated.
    Larger windows are only formed for the pixels still undecided.
    """
    reach = max_size // 2
    padded = F.pad(images.unsqueeze(1), (reach,) * 4, mode="replicate").squeeze(1)
    result = images.clone()
    todo = torch.nonzero(torch.ones_like(images, dtype=torch.bool), as_tuple=True)
    for size in range(3, max_size + 1, 2):
        if todo[0].numel() == 0:
            break
        batch, row, col = todo
        offsets = torch.arange(-(size // 2), size // 2 + 1, device=images.device)
        rows = (row + reach)[:, None, None] + offsets[None, :, None]
        cols = (col + reach)[:, None, None] + offsets[None, None, :]
        window = padded[batch[:, None, None], rows, cols].reshape(batch.numel(), -1)
        low, median, high = window.amin(1), window.median(1).values, window.amax(1)
        value = images[todo]
        settled = (median > low) & (median < high)
        extreme = (value <= low) | (value >= high)
        last = size + 2 > max_size
        replace = (settled & extreme) | (~settled if last else torch.zeros_like(settled))
        result[todo] = torch.where(replace, median, value)
        todo = tuple(t[~settled] for t in todo)
    return result


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
