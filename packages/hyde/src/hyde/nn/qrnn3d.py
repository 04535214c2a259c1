"""QRNN3D (Wei, Fu & Huang 2020): 3-D convolutions with quasi-recurrent pooling along the bands."""

from __future__ import annotations

import torch
from torch import nn


def qrnn_pool(z: torch.Tensor, f: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    """h_t = f_t * h_{t-1} + (1 - f_t) * z_t along dim 2 (bands) of (batch, C, bands, H, W)."""
    steps = range(z.shape[2] - 1, -1, -1) if reverse else range(z.shape[2])
    h = torch.zeros_like(z[:, :, 0])
    out = [None] * z.shape[2]
    for t in steps:
        h = f[:, :, t] * h + (1 - f[:, :, t]) * z[:, :, t]
        out[t] = h
    return torch.stack(out, dim=2)


class QRNNLayer(nn.Module):
    """A 3-D convolution giving candidate Z (tanh) and forget gate F (sigmoid), then pooling."""

    def __init__(self, cin: int, cout: int, stride=(1, 1, 1), reverse: bool = False, up=False):
        super().__init__()
        if up:
            self.conv = nn.Sequential(
                nn.Upsample(scale_factor=(1, 2, 2), mode="trilinear", align_corners=False),
                nn.Conv3d(cin, 2 * cout, 3, padding=1),
            )
        else:
            self.conv = nn.Conv3d(cin, 2 * cout, 3, stride=stride, padding=1)
        self.reverse = reverse

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, f = self.conv(x).chunk(2, dim=1)
        return qrnn_pool(torch.tanh(z), torch.sigmoid(f), self.reverse)


class QRNN3D(nn.Module):
    """Encoder-decoder of QRNN layers with alternating directions and additive skips.

    Input and output: (batch, 1, bands, H, W); the network predicts the clean cube as input plus
    a residual. ``depth`` down/up-sampling stages (stride 2 in space), ``channels`` at the top.
    H and W must be divisible by 2**depth.
    """

    def __init__(self, channels: int = 16, depth: int = 1, layers_per_stage: int = 1):
        super().__init__()
        self.config = {"channels": channels, "depth": depth, "layers_per_stage": layers_per_stage}
        flip = iter([False, True] * (4 * depth * layers_per_stage + 4))
        self.head = QRNNLayer(1, channels, reverse=next(flip))
        self.down = nn.ModuleList()
        self.up = nn.ModuleList()
        width = channels
        for _ in range(depth):
            stage = [QRNNLayer(width, 2 * width, stride=(1, 2, 2), reverse=next(flip))]
            stage += [
                QRNNLayer(2 * width, 2 * width, reverse=next(flip))
                for _ in range(layers_per_stage - 1)
            ]
            self.down.append(nn.Sequential(*stage))
            width *= 2
        for _ in range(depth):
            stage = [
                QRNNLayer(width, width, reverse=next(flip)) for _ in range(layers_per_stage - 1)
            ]
            stage.append(QRNNLayer(width, width // 2, reverse=next(flip), up=True))
            self.up.append(nn.Sequential(*stage))
            width //= 2
        self.tail = nn.Conv3d(channels, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        skips = [h]
        for stage in self.down:
            h = stage(h)
            skips.append(h)
        skips.pop()
        for stage in self.up:
            h = stage(h) + skips.pop()
        return x + self.tail(h)
