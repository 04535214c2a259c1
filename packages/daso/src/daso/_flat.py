"""Packing a model's parameters and gradients into one flat buffer and back."""

from __future__ import annotations

import torch


def trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


@torch.no_grad()
def pack_params(params: list[torch.Tensor], dtype: torch.dtype | None = None) -> torch.Tensor:
    """One contiguous copy of ``params`` (optionally cast to ``dtype``)."""
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    return flat if dtype is None or flat.dtype == dtype else flat.to(dtype)


@torch.no_grad()
def unpack_params(flat: torch.Tensor, params: list[torch.Tensor]) -> None:
    """Copy ``flat`` back into ``params`` (casting to each parameter's dtype)."""
    offset = 0
    for p in params:
        n = p.numel()
        p.copy_(flat[offset : offset + n].view_as(p))
        offset += n


@torch.no_grad()
def pack_grads(params: list[torch.Tensor]) -> torch.Tensor:
    """The gradients of ``params`` as one flat buffer (zeros where a gradient is missing)."""
    return torch.cat(
        [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
    )


@torch.no_grad()
def unpack_grads(flat: torch.Tensor, params: list[torch.Tensor]) -> None:
    offset = 0
    for p in params:
        n = p.numel()
        piece = flat[offset : offset + n].view_as(p)
        if p.grad is None:
            p.grad = piece.clone()
        else:
            p.grad.copy_(piece)
        offset += n
