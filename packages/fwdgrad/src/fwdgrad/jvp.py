"""Jacobian-vector products of a scalar function along a chunk of tangents, in forward mode."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.autograd.forward_ad as fwAD
from torch.func import jvp, vmap

# f(primals) -> scalar loss; primals is a tuple of tensors.
ScalarFn = Callable[[tuple[torch.Tensor, ...]], torch.Tensor]


def jvps_vectorised(
    f: ScalarFn, primals: Sequence[torch.Tensor], tangents: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, d) with d[i] = <grad f, v_i>, all tangents of the chunk in one vmapped jvp.

    ``tangents[b]`` has shape (c, *primals[b].shape). The primal does not depend on the vmapped
    tangent, so torch.func computes it once; each tangent adds the tangent half of the pass.
    """
    primals = tuple(primals)

    def along(*tangent):
        return jvp(f, (primals,), (tangent,))

    with torch.no_grad():
        loss, d = vmap(along, out_dims=(None, 0), randomness="same")(*tangents)
    return _scalar(loss), d.reshape(-1)


def jvps_sequential(
    f: ScalarFn, primals: Sequence[torch.Tensor], tangents: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same as `jvps_vectorised`, one dual-number forward pass per tangent.

    Works for any module forward-mode AD supports (in-place buffer updates, data-dependent
    control flow) but recomputes the primal for every tangent.
    """
    count = tangents[0].shape[0]
    d = torch.empty(count, dtype=primals[0].dtype, device=primals[0].device)
    loss = None
    with torch.no_grad(), fwAD.dual_level():
        for i in range(count):
            duals = tuple(fwAD.make_dual(p, t[i]) for p, t in zip(primals, tangents))
            primal, tangent = fwAD.unpack_dual(f(duals))
            if loss is None:
                loss = primal.detach().clone()
            d[i] = _scalar(tangent) if tangent is not None else 0.0
    return _scalar(loss), d


def _scalar(value: torch.Tensor) -> torch.Tensor:
    if value.numel() != 1:
        raise ValueError(f"the loss function must return a scalar, got shape {tuple(value.shape)}")
    return value.reshape(())
