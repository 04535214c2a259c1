"""BM3D (Dabov, Foi, Katkovnik & Egiazarian 2007) for batches of 2-D images, in torch."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def dct_matrix(n: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """Orthonormal DCT-II matrix C (n x n): C[k, i] = s_k cos(pi (2 i + 1) k / (2 n))."""
    k = torch.arange(n, dtype=torch.float64, device=device)[:, None]
    i = torch.arange(n, dtype=torch.float64, device=device)[None, :]
    c = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    c[0] /= math.sqrt(2.0)
    return c.to(dtype)


def haar_matrix(n: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """Orthonormal Haar matrix (n x n, n a power of two): the mean row, then differences of
    halves at every scale."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"n must be a power of two, got {n}")
    h = torch.ones(1, 1, dtype=torch.float64)
    pair = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64)
    while h.shape[0] < n:
        coarse = torch.kron(h, pair[:1])
        fine = torch.kron(torch.eye(h.shape[0], dtype=torch.float64), pair[1:])
        h = torch.cat([coarse, fine])
        h = h / h.norm(dim=1, keepdim=True)
    return h.to(dtype=dtype, device=device)


def _group_transform(n: int, dtype, device) -> torch.Tensor:
    """Haar along a group of a power-of-two size (as in BM3D), the DCT otherwise."""
    if n & (n - 1) == 0:
        return haar_matrix(n, dtype, device)
    return dct_matrix(n, dtype, device)


def _starts(length: int, patch: int, step: int, device) -> torch.Tensor:
    """Reference positions 0, step, ... and always the last one, so every pixel is covered."""
    last = length - patch
    starts = list(range(0, last + 1, step))
    if starts[-1] != last:
        starts.append(last)
    return torch.tensor(starts, device=device)


def block_match(
    image: torch.Tensor, patch: int, step: int, radius: int, matches: int, joint: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``matches`` patches most similar to each reference patch of a batch of images.

    ``image`` is (batch x H x W); reference patches (top-left corners) lie on a grid of
    ``step`` pixels, candidates within ``radius`` pixels of the reference in each direction;
    the distance of two ``patch x patch`` blocks is their mean squared difference. Returns the
    candidates' flat top-left indices into the (H - patch + 1) x (W - patch + 1) grid and their
    distances, both (batch x references x matches), nearest first (the reference itself).
    With ``joint`` the distance is summed over the batch (the images are channels of one
    scene) and every image gets the same matches.
    """
    batch, rows, cols = image.shape
    span_c = cols - patch + 1
    ref_r = _starts(rows, patch, step, image.device)
    ref_c = _starts(cols, patch, step, image.device)
    width = 2 * radius + 1
    padded = F.pad(image.unsqueeze(1), (radius,) * 4, value=float("nan")).squeeze(1)
    dists = []
    for dy in range(-radius, radius + 1):
        band = padded[:, radius + dy : radius + dy + rows, :]  # rows shifted by dy
        shifted = band.unfold(2, cols, 1)  # batch x rows x width x cols (all dx at once)
        sq = (shifted - image[:, :, None, :]).pow(2)
        if joint:
            sq = sq.sum(0, keepdim=True)
        box = _grid_sum(_grid_sum(sq, 1, patch, step), 3, patch, step)  # at the references
        dists.append(box.permute(0, 1, 3, 2).reshape(box.shape[0], -1, width))
    # batch x refs x shifts, NaN (a candidate reaching outside the image) -> inf
    dist = torch.cat(dists, 2).nan_to_num(nan=float("inf")) / patch**2
    dist[:, :, radius * width + radius] = -1.0  # the reference first, even among exact ties
    nearest, best = dist.topk(min(matches, dist.shape[-1]), dim=-1, largest=False)
    nearest = nearest.clamp(min=0)
    dy = torch.div(best, width, rounding_mode="floor") - radius
    dx = best % width - radius
    ref = (ref_r[:, None] * span_c + ref_c[None, :]).reshape(-1)
    flat = ref[None, :, None] + dy * span_c + dx
    return flat.expand(batch, -1, -1), nearest.expand(batch, -1, -1)


def _grid_sum(x: torch.Tensor, dim: int, patch: int, step: int) -> torch.Tensor:
    """Sums of ``patch`` consecutive entries along ``dim`` starting at the reference grid."""
    length = x.shape[dim]
    sums = x.unfold(dim, patch, step).sum(-1)
    if (length - patch) % step:  # the last reference, aligned with the end
        sums = torch.cat([sums, x.narrow(dim, length - patch, patch).sum(dim, keepdim=True)], dim)
    return sums


def _group_sizes(dist: torch.Tensor, limit: torch.Tensor) -> torch.Tensor:
    """Largest power of two <= the number of matches closer than ``limit`` (at least 1).

    Candidates outside the image have an infinite distance and are never counted.
    """
    count = (torch.isfinite(dist) & (dist <= limit[:, None])).sum(1).clamp(min=1)
    return 2 ** torch.floor(torch.log2(count.to(torch.float64))).to(torch.int64)


class _Accumulator:
    """Weighted sum of overlapping block estimates, sum(w k B) / sum(w k), k the window."""

    def __init__(self, shape, patch, window, dtype, device):
        self.batch, self.rows, self.cols = shape
        self.patch, self.window = patch, window
        positions = (self.rows - patch + 1) * (self.cols - patch + 1)
        self.num = torch.zeros(self.batch * positions, patch * patch, dtype=dtype, device=device)
        self.den = torch.zeros_like(self.num)

    def add(self, estimates, weights, index):
        """``estimates`` (groups x k x p^2) at global block indices ``index`` (groups x k)."""
        w = weights[:, None, None] * self.window
        self.num.index_add_(0, index.reshape(-1), (estimates * w).reshape(-1, self.patch**2))
        self.den.index_add_(0, index.reshape(-1), w.expand_as(estimates).reshape(-1, self.patch**2))

    def result(self):
        def fold(x):
            x = x.reshape(self.batch, -1, self.patch**2).transpose(1, 2)
            return F.fold(x, (self.rows, self.cols), self.patch).squeeze(1)

        return fold(self.num) / fold(self.den)


def bm3d(
    images: torch.Tensor,
    sigma,
    patch: int = 8,
    step: int = 3,
    radius: int = 8,
    matches: tuple[int, int] = (16, 32),
    threshold: float = 2.7,
    beta: float = 2.0,
    limits: tuple[float, float] = (math.inf, math.inf),
    joint: bool = False,
    chunk: int = 1 << 23,
    matching: dict | None = None,
) -> torch.Tensor:
    """BM3D of a batch of images (batch x H x W) with Gaussian noise of std ``sigma`` (per image).

    Stage 1: groups of the nearest blocks (at most ``matches[0]``, a power of two, no farther
    than ``limits[0] * sigma^2`` in mean squared difference), a separable 3-D transform (2-D DCT
    of each block, Haar along the group), hard thresholding at ``threshold * sigma``, groups
    weighted by 1 / (sigma^2 * non-zero coefficients). Stage 2: blocks matched on that basic
    estimate (at most ``matches[1]``, within
    ``limits[1] * sigma^2``) filtered by the empirical Wiener shrinkage
    |B|^2 / (|B|^2 + sigma^2) of the basic estimate's spectrum B, weighted by
    1 / (sigma^2 ||shrinkage||^2). Both stages average overlapping blocks with a Kaiser window
    (``beta``). Computes in float32; returns the input dtype. Images must be at least ``patch``
    pixels on each side; ``chunk`` bounds the number of group entries held at once.
    With ``joint`` the images are channels of one scene: blocks are matched once on all
    channels together (distances summed, as colour BM3D matches on luminance) and every channel
    is filtered along the same groups; the batch is then not split into chunks.
    ``matching``, a dict, keeps the block matching of both stages: an empty dict is filled, a
    filled one is reused instead of matching again (for a sequence of similar batches of the
    same shape, e.g. the iterations of L1HyMixDe).
    """
    if images.ndim != 3:
        raise ValueError(f"images must be batch x H x W, got shape {tuple(images.shape)}")
    if min(images.shape[-2:]) < patch:
        raise ValueError(f"images must be at least patch={patch} pixels on each side")
    work = images.to(torch.float32)
    sigma = torch.as_tensor(sigma, dtype=torch.float32, device=images.device).reshape(-1)
    sigma = sigma.expand(images.shape[0]).clamp(min=1e-12)
    per_image = math.prod(_grid_size(images.shape[-2:], patch, step)) * max(matches) * patch**2
    size = images.shape[0] if joint else max(1, chunk // max(per_image, 1))
    matching = {} if matching is None else matching
    out = [
        _bm3d_batch(
            work[i : i + size],
            sigma[i : i + size],
            *(patch, step, radius, matches, threshold, beta, limits, joint),
            matching.setdefault(i, {}),
        )
        for i in range(0, images.shape[0], size)
    ]
    return torch.cat(out).to(images.dtype)


def _grid_size(shape, patch, step):
    return [len(range(0, n - patch + 1, step)) + 1 for n in shape]


def _bm3d_batch(x, sigma, patch, step, radius, matches, threshold, beta, limits, joint, cache):
    shape = x.shape
    dtype, device = x.dtype, x.device
    c2 = dct_matrix(patch, dtype, device)
    t2 = torch.kron(c2, c2)  # 2-D DCT of a flattened block: coefficients = block @ t2.T
    window = torch.kaiser_window(patch, periodic=False, beta=beta, dtype=dtype, device=device)
    window = (window[:, None] * window[None, :]).reshape(1, 1, -1)
    blocks = F.unfold(x.unsqueeze(1), patch).transpose(1, 2).reshape(-1, patch**2)

    # stage 1: hard thresholding in the 3-D transform domain
    acc = _Accumulator(shape, patch, window, dtype, device)
    found = cache.get(1) or block_match(x, patch, step, radius, matches[0], joint)
    cache[1] = found
    for index, s, k in _grouped(found, shape, sigma, patch, limits[0]):
        g = _group_transform(k, dtype, device)
        spec = g @ (blocks[index] @ t2.T)
        keep = spec.abs() > threshold * s[:, None, None]
        nonzero = keep.sum((1, 2)).clamp(min=1).to(dtype)
        acc.add((g.T @ (spec * keep)) @ t2, 1.0 / (s**2 * nonzero), index)
    basic = acc.result()

    # stage 2: empirical Wiener filtering guided by the basic estimate
    guide_blocks = F.unfold(basic.unsqueeze(1), patch).transpose(1, 2).reshape(-1, patch**2)
    acc = _Accumulator(shape, patch, window, dtype, device)
    found = cache.get(2) or block_match(basic, patch, step, radius, matches[1], joint)
    cache[2] = found
    for index, s, k in _grouped(found, shape, sigma, patch, limits[1]):
        g = _group_transform(k, dtype, device)
        guide = (g @ (guide_blocks[index] @ t2.T)).pow(2)
        shrink = guide / (guide + s[:, None, None] ** 2)
        spec = shrink * (g @ (blocks[index] @ t2.T))
        weights = 1.0 / (s**2 * shrink.pow(2).sum((1, 2)).clamp(min=1e-12))
        acc.add((g.T @ spec) @ t2, weights, index)
    return acc.result()


def _grouped(found, shape, sigma, patch, limit):
    """Groups of matched blocks by size: (global block indices (groups x k), sigma, k)."""
    index, dist = found
    batch, rows, cols = shape
    positions = (rows - patch + 1) * (cols - patch + 1)
    index = index + (torch.arange(batch, device=index.device) * positions)[:, None, None]
    refs = index.shape[1]
    index, dist = index.reshape(batch * refs, -1), dist.reshape(batch * refs, -1)
    sig = sigma.repeat_interleave(refs)
    sizes = _group_sizes(dist, limit * sig**2)
    for k in sorted(set(sizes.tolist())):
        rows_k = sizes == k
        yield index[rows_k, :k], sig[rows_k], k
