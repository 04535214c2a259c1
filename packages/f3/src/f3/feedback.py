"""Fixed random feedback matrices B (C × d) that carry the output error to hidden blocks."""

from __future__ import annotations

import math

import torch

FEEDBACK_INITS = ("kaiming_uniform", "trinomial", "binomial", "identity")


def make_feedback(
    num_outputs: int, width: int, init: str = "kaiming_uniform", seed: int = 0
) -> torch.Tensor:
    """A ``num_outputs × width`` feedback matrix in float32, reproducible for ``seed``.

    ``kaiming_uniform``: U(−1/√width, 1/√width); ``trinomial``: uniform over {−1, 0, 1};
    ``binomial``: uniform over {0, 1}; ``identity``: [I, −I, I, …] tiled along the width.
    """
    if init not in FEEDBACK_INITS:
        raise ValueError(f"feedback init must be one of {FEEDBACK_INITS}, got {init!r}")
    if num_outputs < 1 or width < 1:
        raise ValueError(f"num_outputs and width must be >= 1, got {num_outputs} and {width}")
    gen = torch.Generator().manual_seed(int(seed))
    shape = (num_outputs, width)
    if init == "kaiming_uniform":
        bound = 1.0 / math.sqrt(width)
        return (torch.rand(shape, generator=gen) * 2 - 1) * bound
    if init == "trinomial":
        return torch.randint(-1, 2, shape, generator=gen).float()
    if init == "binomial":
        return torch.randint(0, 2, shape, generator=gen).float()
    column = torch.arange(width)
    tile = column // num_outputs
    sign = 1.0 - 2.0 * (tile % 2).float()
    matrix = torch.zeros(shape)
    matrix[column % num_outputs, column] = sign
    return matrix
