"""Flat-buffer helpers: average gradients or values of many tensors with one allreduce."""

from __future__ import annotations

from collections.abc import Sequence

import torch

import hpc_comm as hc


def flatten(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """One contiguous 1-D copy of ``tensors``."""
    if not tensors:
        return torch.empty(0)
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def unflatten_into(flat: torch.Tensor, tensors: Sequence[torch.Tensor]) -> None:
    """Copy consecutive pieces of ``flat`` back into ``tensors``."""
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset : offset + n].view_as(t))
        offset += n


def allreduce_mean_(comm, flat: torch.Tensor) -> torch.Tensor:
    """Average ``flat`` over ``comm`` in place; nothing is sent on a communicator of one rank."""
    if comm is not None and comm.size > 1 and flat.numel() > 0:
        comm.allreduce(flat, op=hc.SUM)
        flat /= comm.size
    return flat


def average_grads_(comm, params: Sequence[torch.nn.Parameter]) -> None:
    """Average the gradients of ``params`` over ``comm`` with one allreduce (a missing gradient
    counts as zeros, so every rank sends the same buffer)."""
    if comm is None or comm.size == 1 or not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = allreduce_mean_(comm, flatten(grads))
    for p, g in zip(params, grads):
        if p.grad is None:
            p.grad = g
    unflatten_into(flat, [p.grad for p in params])


def average_values_(comm, params: Sequence[torch.Tensor]) -> None:
    """Average the values of ``params`` over ``comm`` with one allreduce."""
    if comm is None or comm.size == 1 or not params:
        return
    flat = allreduce_mean_(comm, flatten(params))
    with torch.no_grad():
        unflatten_into(flat, [p.data for p in params])
