"""Many tensors as one flat buffer: a model's gradients or parameters in one collective call.

Data-parallel methods (DASO, AB-training, OIALR, forward gradients) all average the gradients
or the values of a list of tensors. One allreduce of a concatenated buffer costs one latency
instead of one per tensor; these helpers do the packing once, for all of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._ops import SUM
from .communicator import Communicator

__all__ = [
    "average_gradients",
    "average_values",
    "broadcast_values",
    "flatten",
    "flatten_grads",
    "unflatten_grads_into",
    "unflatten_into",
]


def _total(tensors: Sequence[torch.Tensor]) -> int:
    return sum(t.numel() for t in tensors)


def _check_size(flat: torch.Tensor, tensors: Sequence[torch.Tensor]) -> None:
    if flat.dim() != 1 or flat.numel() != _total(tensors):
        raise ValueError(
            f"flat must be 1-D with {_total(tensors)} elements (the tensors' total), "
            f"got shape {tuple(flat.shape)}"
        )


@torch.no_grad()
def flatten(tensors: Sequence[torch.Tensor], dtype: torch.dtype | None = None) -> torch.Tensor:
    """One contiguous 1-D copy of ``tensors`` (cast to ``dtype`` if given)."""
    if not tensors:
        return torch.empty(0, dtype=dtype or torch.get_default_dtype())
    flat = torch.cat([t.detach().reshape(-1) for t in tensors])
    return flat if dtype is None or flat.dtype == dtype else flat.to(dtype)


@torch.no_grad()
def unflatten_into(flat: torch.Tensor, tensors: Sequence[torch.Tensor]) -> None:
    """Copy consecutive pieces of ``flat`` into ``tensors`` in place (cast to each one's dtype)."""
    _check_size(flat, tensors)
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset : offset + n].view_as(t))
        offset += n


@torch.no_grad()
def flatten_grads(params: Sequence[torch.Tensor]) -> torch.Tensor:
    """The gradients of ``params`` as one flat buffer; a missing gradient counts as zeros, so
    every rank hands the same number of elements to the collective."""
    return flatten([p.grad if p.grad is not None else torch.zeros_like(p) for p in params])


@torch.no_grad()
def unflatten_grads_into(flat: torch.Tensor, params: Sequence[torch.Tensor]) -> None:
    """Write ``flat`` into the ``.grad`` of ``params``, creating the gradients that are missing."""
    _check_size(flat, params)
    offset = 0
    for p in params:
        n = p.numel()
        piece = flat[offset : offset + n].view_as(p)
        if p.grad is None:
            p.grad = piece.to(p.dtype, copy=True)
        else:
            p.grad.copy_(piece)
        offset += n


def _check_comm(comm) -> None:
    if not isinstance(comm, Communicator):
        raise TypeError(f"comm must be a hpc_comm.Communicator, got {type(comm).__name__}")


def average_gradients(
    params: Sequence[torch.Tensor], comm: Communicator, weight: float | None = None
) -> None:
    """Average the gradients of ``params`` over ``comm`` with one allreduce (collective).

    With ``weight`` each rank's gradients are scaled by its weight and summed (a weighted mean
    when the weights add up to 1, e.g. each rank's share of a global batch); without it every
    rank counts 1/size. Missing gradients count as zeros and are created. On one rank without a
    weight nothing is sent and nothing changes.
    """
    _check_comm(comm)
    params = list(params)
    if not params or (comm.size == 1 and weight is None):
        return
    flat = flatten_grads(params)
    if weight is not None:
        flat *= float(weight)
    comm.allreduce(flat, op=SUM)
    if weight is None:
        flat /= comm.size
    unflatten_grads_into(flat, params)


def average_values(params: Sequence[torch.Tensor], comm: Communicator) -> None:
    """Average the values of ``params`` (parameters or buffers) over ``comm`` with one allreduce
    (collective); on one rank nothing is sent."""
    _check_comm(comm)
    params = list(params)
    if not params or comm.size == 1:
        return
    flat = flatten(params)
    comm.allreduce(flat, op=SUM)
    flat /= comm.size
    unflatten_into(flat, params)


def broadcast_values(params: Sequence[torch.Tensor], comm: Communicator, root: int = 0) -> None:
    """Copy ``root``'s values of ``params`` to every rank of ``comm`` with one bcast
    (collective); on one rank nothing is sent."""
    _check_comm(comm)
    params = list(params)
    if not params or comm.size == 1:
        return
    flat = flatten(params)
    comm.bcast(flat, root=root)
    unflatten_into(flat, params)
