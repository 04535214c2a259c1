"""A MemNet-style network (Tai, Yang, Liu & Xu 2017) on windows of bands, as in HyDe's MemNet.

2-D convolutions with the bands of a window as channels: a feature layer, ``blocks`` memory
blocks (``recursions`` applications of one shared residual unit, then a 1x1 gate over the
block's short-term and all earlier long-term memories), a reconstruction layer and a global
residual. A cube with more bands is denoised window by window (windows overlap, averaged).
"""

from __future__ import annotations

import torch
from torch import nn


class _Residual(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
        )

    def forward(self, x):
        return x + self.body(x)


class _MemoryBlock(nn.Module):
    def __init__(self, width: int, recursions: int, earlier: int):
        super().__init__()
        self.unit = _Residual(width)  # one unit, applied ``recursions`` times (shared weights)
        self.recursions = recursions
        self.gate = nn.Conv2d(width * (recursions + earlier), width, 1)

    def forward(self, x, long_term):
        short, h = [], x
        for _ in range(self.recursions):
            h = self.unit(h)
            short.append(h)
        return self.gate(torch.cat(short + long_term, dim=1))


class MemNet(nn.Module):
    """Input and output (batch, band_window, H, W)."""

    def __init__(self, band_window: int = 8, width: int = 16, blocks: int = 2, recursions: int = 2):
        super().__init__()
        self.config = {
            "band_window": band_window,
            "width": width,
            "blocks": blocks,
            "recursions": recursions,
        }
        self.head = nn.Conv2d(band_window, width, 3, padding=1)
        self.blocks = nn.ModuleList(
            _MemoryBlock(width, recursions, earlier=i + 1) for i in range(blocks)
        )
        self.tail = nn.Sequential(nn.ReLU(), nn.Conv2d(width, band_window, 3, padding=1))

    def forward(self, x):
        h = self.head(x)
        memories = [h]
        for block in self.blocks:
            h = block(h, memories)
            memories.append(h)
        return x + self.tail(h)

    def denoise_bands(self, x: torch.Tensor, step: int | None = None) -> torch.Tensor:
        """(batch, 1, bands, H, W) -> same, by overlapping windows of ``band_window`` bands."""
        window = self.config["band_window"]
        bands = x.shape[2]
        if bands < window:
            raise ValueError(f"the cube needs at least {window} bands, got {bands}")
        step = step or max(1, window // 2)
        starts = list(range(0, bands - window + 1, step))
        if starts[-1] + window < bands:
            starts.append(bands - window)
        out = torch.zeros_like(x)
        count = torch.zeros(1, 1, bands, 1, 1, dtype=x.dtype, device=x.device)
        for s in starts:
            out[:, :, s : s + window] += self(x[:, 0, s : s + window]).unsqueeze(1)
            count[:, :, s : s + window] += 1
        return out / count
