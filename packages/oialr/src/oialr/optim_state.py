"""Optimiser state that follows a parameter when OIALR rotates or shrinks its S matrix."""

from __future__ import annotations

import torch

from hpc_comm import get_logger

__all__ = ["STATE_MODES", "move_state", "transform_state"]

log = get_logger(__name__)

STATE_MODES = ("rotate", "slice", "reset")

# Running means of the gradient: linear in it, so they rotate exactly like the gradient of S.
_LINEAR_KEYS = ("exp_avg", "momentum_buffer")
# Running means of the squared gradient (elementwise).
_SQUARE_KEYS = ("exp_avg_sq", "max_exp_avg_sq")


def transform_state(
    optimizer: torch.optim.Optimizer,
    param: torch.Tensor,
    left: torch.Tensor,
    right: torch.Tensor,
    mode: str = "rotate",
) -> None:
    """Adapt ``optimizer``'s state of ``param`` (a x b) to that of S' = leftᵀ S right.

    ``left``/``right`` are a x r' and b x r' with orthonormal columns, so the gradient of S' is
    leftᵀ G right (a check: a = b = r; the conversion: the tall weight, left = U, right = V). ``rotate``: first moments and momentum buffers are mapped exactly that way;
    second moments by the squared entries, (left∘left)ᵀ v (right∘right), which is their
    expectation for uncorrelated gradient entries and keeps them non-negative; scalars (step)
    are kept. ``slice``: every rxr tensor is cut to [:r', :r'] (no rotation). ``reset``: the
    state is dropped, as for a new parameter.
    """
    if mode not in STATE_MODES:
        raise ValueError(f"mode: expected one of {STATE_MODES}, got {mode!r}")
    state = optimizer.state.get(param)
    if not state:
        return
    if mode == "reset":
        del optimizer.state[param]
        return
    old_shape = (left.shape[0], right.shape[0])
    new_r = left.shape[1]
    for key, value in list(state.items()):
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != old_shape:
            continue
        if mode == "slice":
            state[key] = value[:new_r, :new_r].clone()
            continue
        lft = left.to(device=value.device, dtype=torch.float64)
        rgt = right.to(device=value.device, dtype=torch.float64)
        v = value.to(torch.float64)
        if key in _LINEAR_KEYS:
            new = lft.T @ v @ rgt
        elif key in _SQUARE_KEYS:
            new = (lft * lft).T @ v @ (rgt * rgt)
        else:
            log.warning("optimizer state %r of unknown kind: sliced, not rotated", key)
            new = v[:new_r, :new_r]
        state[key] = new.to(value.dtype).contiguous()


def move_state(
    optimizer: torch.optim.Optimizer, old: torch.Tensor, new: torch.Tensor, keep_state: bool = False
) -> bool:
    """Put ``new`` where ``old`` was in the optimizer's param groups.

    ``old``'s state moves to ``new`` with ``keep_state``, else it is dropped. Returns False when
    ``old`` is not optimised by ``optimizer``.
    """
    if new is old:
        return True
    for group in optimizer.param_groups:
        for i, p in enumerate(group["params"]):
            if p is old:
                group["params"][i] = new
                state = optimizer.state.pop(old, None)
                if keep_state and state is not None:
                    optimizer.state[new] = state
                return True
    return False
