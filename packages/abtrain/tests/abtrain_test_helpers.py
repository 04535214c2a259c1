"""Tiny seeded models and data for the abtrain tests: any rank can rebuild any rank's batch."""

import itertools

import torch
from torch import nn


def tiny_mlp(seed: int = 0, dtype=torch.float32, widths=(6, 8, 5, 3)) -> nn.Sequential:
    """A small tanh MLP, the same on every rank for a seed."""
    torch.manual_seed(seed)
    layers = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(fan_in, fan_out, dtype=dtype))
        if i < len(widths) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def batch(seed: int, rank: int, step: int, n: int = 12, features: int = 6, classes: int = 3):
    """Rank ``rank``'s mini-batch at ``step``: any rank can rebuild any other rank's batch."""
    g = torch.Generator().manual_seed(100_003 * seed + 1_009 * rank + step)
    x = torch.randn(n, features, generator=g, dtype=torch.float64)
    y = torch.randint(0, classes, (n,), generator=g)
    return x, y
