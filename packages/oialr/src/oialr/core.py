"""The OIALR controller: converts a model to low rank after a warm-up, then re-orthogonalises
and prunes its layers on a schedule, data-parallel over hpc-comm."""

from __future__ import annotations

import copy
import math
import os
import tempfile
from dataclasses import asdict, dataclass

import torch
from torch import nn

from hpc_comm import get_logger
from hpc_comm.flat import average_gradients as flat_average_gradients

from .layers import (
    LowRankConv,
    LowRankLinear,
    LowRankMultiheadAttention,
    LowRankWeight,
    is_eligible,
)
from .optim_state import STATE_MODES, move_state, transform_state

__all__ = [
    "OIALR",
    "LayerReport",
    "average_gradients",
    "broadcast_parameters",
    "load_checkpoint",
    "merge",
    "pruned_rank",
    "save_checkpoint",
]

log = get_logger(__name__)

_LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.MultiheadAttention)


def pruned_rank(sigma, cutoff_fraction: float, min_rank: int = 1) -> int:
    """The new rank for singular values ``sigma`` (non-increasing) of an rxr S.

    i* is the first index with sigma_i < cutoff_fraction·sigma_1. No such index: r stays. Otherwise the
    rank becomes i*, but never less than half of r in one update (⌊r/2⌋ while r/2 > min_rank),
    and never below ``min_rank``.
    """
    sigma = torch.as_tensor(sigma, dtype=torch.float64).flatten()
    r = sigma.numel()
    below = torch.nonzero(sigma < cutoff_fraction * sigma[0]).flatten()
    if below.numel() == 0:
        return r
    first = int(below[0])
    if first < r / 2 and r / 2 > min_rank:
        new = r // 2
    elif first < min_rank:
        new = min_rank
    else:
        new = first
    return max(1, min(r, new))


@dataclass
class LayerReport:
    """Rank and size of one factorised weight."""

    name: str
    rows: int
    cols: int
    rank: int
    full_rank: int
    trainable: int
    full_size: int


def _as_params(model_or_params) -> list[torch.Tensor]:
    if isinstance(model_or_params, nn.Module):
        return list(model_or_params.parameters())
    return list(model_or_params)


def average_gradients(model_or_params, comm) -> None:
    """Average the gradients of the trainable parameters over ``comm`` (one allreduce).

    Parameters without a gradient on this rank contribute zeros, so every rank calls the same
    collective with the same size.
    """
    if comm is None:
        return
    params = [p for p in _as_params(model_or_params) if p.requires_grad]
    flat_average_gradients(params, comm)


@torch.no_grad()
def broadcast_parameters(model: nn.Module, comm, root: int = 0) -> None:
    """Copy ``root``'s parameters and buffers to every rank of ``comm``."""
    if comm is None or comm.size == 1:
        return
    for t in [*model.parameters(), *model.buffers()]:
        buf = t.detach().contiguous()
        comm.bcast(buf, root=root)
        if buf.data_ptr() != t.data_ptr():
            t.copy_(buf)


def _check_fraction(name: str, value, low: float, high: float, closed_low: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    ok = (low <= value if closed_low else low < value) and value <= high
    if not ok:
        bracket = "[" if closed_low else "("
        raise ValueError(f"{name}: expected a value in {bracket}{low}, {high}], got {value}")
    return float(value)


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value}")
    return value


def _matrix_shapes(module: nn.Module) -> list[tuple[int, int]]:
    if isinstance(module, nn.MultiheadAttention):
        return LowRankMultiheadAttention.projection_shapes(module)
    w = module.weight
    return [(w.shape[0], math.prod(w.shape[1:]))]


def _layer_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Linear / Conv1d / Conv2d / MultiheadAttention modules in module order (not inside an MHA)."""
    found, inside = [], []
    for name, module in model.named_modules():
        if any(name.startswith(prefix + ".") for prefix in inside):
            continue
        if isinstance(module, nn.MultiheadAttention):
            inside.append(name)
        if isinstance(module, _LAYER_TYPES) and not isinstance(
            module, (LowRankLinear, LowRankConv, LowRankMultiheadAttention)
        ):
            found.append((name, module))
    return found


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def _old_weights(module: nn.Module) -> list[torch.Tensor]:
    """The dense weight Parameters a conversion replaces, in the order of the new factors."""
    if isinstance(module, nn.MultiheadAttention):
        if module._qkv_same_embed_dim:
            return [module.in_proj_weight, module.out_proj.weight]
        return [*(getattr(module, f"{p}_proj_weight") for p in "qkv"), module.out_proj.weight]
    return [module.weight]


def _empty_lowrank(module: nn.Module, factorized) -> nn.Module:
    """The low-rank replacement of ``module`` with zero factors (filled in by the caller)."""
    if isinstance(module, nn.MultiheadAttention):
        return LowRankMultiheadAttention(module, decompose=False)
    if isinstance(module, nn.Linear):
        w = module.weight
        new = LowRankLinear(
            module.in_features,
            module.out_features,
            bias=False,
            factorized=factorized,
            dtype=w.dtype,
            device=w.device,
        )
        new.bias = module.bias
        return new
    return LowRankConv(module, factorized)


def _factors_of(module: nn.Module) -> list[LowRankWeight]:
    return [m for m in module.modules() if isinstance(m, LowRankWeight)]


class OIALR:
    """Orthogonality-informed adaptive low-rank training of ``model``.

    Call `step` once per training step, after ``optimizer.step()``. After ``delay`` steps
    every eligible layer (Linear, Conv1d/2d, MultiheadAttention; short side >= long side ·
    ``eligibility_ratio``) is replaced by its SVD U·S·Vᵀ with only S (and the bias) trainable.
    At the conversion and then every ``stability_frequency`` steps a *check* runs: the c-th check
    (c = 1, 2, ...) processes the last min(L, c·k) of the L factorised weights in module order
    (the output side first), with k = max(1, ⌈layer_share_step·L⌉). Processing a weight means:
    SVD of S, fold its singular vectors into U and Vᵀ (W unchanged, S diagonal), and prune the
    rank with `pruned_rank` (cut-off ``sigma_cutoff_fraction``·sigma_1, at most halving per
    check, never below max(1, ⌊min_rank_fraction·n⌋) for n columns of the tall matrix). A weight
    just processed skips the next ``stable_update_delay`` checks.

    ``keep_first_layer`` / ``keep_last_layer`` keep the first / last Linear-Conv-MHA module of
    the model (eligible or not) at full rank. ``optimizer_state`` is how the optimiser's state
    of S follows a check (see `oialr.optim_state.transform_state`); at the conversion the
    dense weight's state is projected onto S (first moments exactly, Uᵀ M V; second moments by
    the squared bases; the step count kept), or dropped with ``optimizer_state="reset"``.
    With a ``comm`` of several ranks,
    each weight's SVD runs on rank (index mod size) and is broadcast; gradients are averaged by
    `average_gradients`.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        delay: int = 1000,
        stability_frequency: int = 100,
        sigma_cutoff_fraction: float = 0.1,
        keep_first_layer: bool = False,
        keep_last_layer: bool = True,
        layer_share_step: float = 0.1,
        stable_update_delay: int = 0,
        min_rank_fraction: float = 0.01,
        eligibility_ratio: float = 0.1,
        optimizer_state: str = "rotate",
        skip: tuple[str, ...] = (),
        factorized: bool | str = "auto",
        comm=None,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"optimizer: expected a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        if optimizer_state not in STATE_MODES:
            raise ValueError(
                f"optimizer_state: expected one of {STATE_MODES}, got {optimizer_state!r}"
            )
        if factorized not in (True, False, "auto"):
            raise ValueError(f"factorized: expected True, False or 'auto', got {factorized!r}")
        self.model, self.optimizer, self.comm = model, optimizer, comm
        self.delay = _check_int("delay", delay, 0)
        self.stability_frequency = _check_int("stability_frequency", stability_frequency, 1)
        self.sigma_cutoff_fraction = _check_fraction(
            "sigma_cutoff_fraction", sigma_cutoff_fraction, 0.0, 1.0
        )
        self.layer_share_step = _check_fraction(
            "layer_share_step", layer_share_step, 0.0, 1.0, closed_low=False
        )
        self.stable_update_delay = _check_int("stable_update_delay", stable_update_delay, 0)
        self.min_rank_fraction = _check_fraction("min_rank_fraction", min_rank_fraction, 0.0, 1.0)
        self.eligibility_ratio = _check_fraction("eligibility_ratio", eligibility_ratio, 0.0, 1.0)
        self.keep_first_layer, self.keep_last_layer = bool(keep_first_layer), bool(keep_last_layer)
        self.optimizer_state, self.factorized = optimizer_state, factorized
        self.skip = tuple(skip)
        self.full_param_count = sum(p.numel() for p in model.parameters())
        self.step_count = 0
        self.checks_done = 0
        self.next_check: int | None = None
        self.converted = False
        self._skip_left: dict[str, int] = {}
        self.rank_history: list[tuple[int, dict[str, int]]] = []
        # Called as callback(factor, old_S) when a weight's S is replaced by one of a new shape.
        self.shape_callbacks: list = []
        if self.delay == 0:
            self.convert()
            self.next_check = self.stability_frequency

    # ----------------------------------------------------------------------------- queries
    def layers(self) -> list[tuple[str, LowRankWeight]]:
        """The factorised weights (name, module) in module order."""
        return [(n, m) for n, m in self.model.named_modules() if isinstance(m, LowRankWeight)]

    def ranks(self) -> dict[str, int]:
        """Current rank of every factorised weight."""
        return {n: m.rank for n, m in self.layers()}

    def trainable_count(self) -> int:
        """Number of entries in the model's parameters with ``requires_grad`` now."""
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def trainable_fraction(self) -> float:
        """Trainable parameters now / parameters of the full-rank model."""
        return self.trainable_count() / self.full_param_count

    def report(self) -> list[LayerReport]:
        """Per factorised weight: shape, rank, trainable entries of S and the dense size."""
        return [
            LayerReport(n, m.rows, m.cols, m.rank, m.full_rank, m.rank**2, m.rows * m.cols)
            for n, m in self.layers()
        ]

    def eligible_modules(self) -> list[tuple[str, nn.Module]]:
        """The modules the conversion will factorise (after keep_first/last and ``skip``)."""
        modules = _layer_modules(self.model)
        kept = set()
        if modules and self.keep_first_layer:
            kept.add(modules[0][0])
        if modules and self.keep_last_layer:
            kept.add(modules[-1][0])
        out = []
        for name, module in modules:
            if name in kept or name in self.skip or name == "":
                continue
            if all(is_eligible(r, c, self.eligibility_ratio) for r, c in _matrix_shapes(module)):
                out.append((name, module))
        return out

    # ----------------------------------------------------------------------------- schedule
    def step(self) -> bool:
        """Advance one training step; returns True when layers were converted or updated."""
        self.step_count += 1
        if not self.converted:
            if self.step_count < self.delay:
                return False
            self.convert()
            self.next_check = self.step_count
        if self.step_count < self.next_check:
            return False
        self._check()
        self.next_check = self.step_count + self.stability_frequency
        return True

    def convert(self) -> None:
        """Replace every eligible module by its full-rank U·S·Vᵀ factorisation (now)."""
        if self.converted:
            return
        self._convert_structure(decompose=True)
        self.converted = True
        log.info(
            "converted %d weights to low rank at step %d; trainable %.1f%%",
            len(self.layers()),
            self.step_count,
            100 * self.trainable_fraction(),
        )

    def _owner(self, index: int) -> int:
        return index % self.comm.size if self.comm is not None else 0

    def _is_distributed(self) -> bool:
        return self.comm is not None and self.comm.size > 1

    def _convert_structure(self, decompose: bool) -> None:
        index = 0
        for name, module in self.eligible_modules():
            old = _old_weights(module)
            new = _empty_lowrank(module, self.factorized)
            for weight, factor in zip(old, _factors_of(new), strict=True):
                if decompose:
                    self._decompose(factor, weight, self._owner(index))
                    self._project_state(weight, factor)
                if not move_state(self.optimizer, weight, factor.S, keep_state=decompose):
                    log.warning("%s: its weight is not in the optimizer; S is not trained", name)
                index += 1
            _replace(self.model, name, new)
        self._skip_left = {n: 0 for n, _ in self.layers()}

    @torch.no_grad()
    def _project_state(self, weight: torch.Tensor, factor: LowRankWeight) -> None:
        """Carry the optimiser state of the dense ``weight`` over to S = Uᵀ W V.

        The gradient of S is Uᵀ G V, so first moments map exactly that way and second moments
        by the squared entries (see `transform_state`); the step count is kept. With
        ``optimizer_state="reset"`` the state is dropped instead (S starts fresh).
        """
        state = self.optimizer.state.get(weight)
        if not state:
            return
        if self.optimizer_state == "reset":
            del self.optimizer.state[weight]
            return
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.shape == weight.shape:
                state[key] = factor.to_tall(value)
        # there is no basis to slice in at the conversion: "slice" projects as "rotate" does
        transform_state(self.optimizer, weight, factor.U, factor.Vh.T, "rotate")

    @torch.no_grad()
    def _decompose(self, factor: LowRankWeight, weight: torch.Tensor, owner: int) -> None:
        if not self._is_distributed() or self.comm.rank == owner:
            factor.set_from_matrix(weight)
        if self._is_distributed():
            sigma = torch.diagonal(factor.S).clone()
            flat = torch.cat([factor.U.reshape(-1), sigma, factor.Vh.reshape(-1)]).contiguous()
            self.comm.bcast(flat, root=owner)
            m, r = factor.U.shape
            n = factor.Vh.shape[1]
            u, s, vh = torch.split(flat, [m * r, r, r * n])
            factor.set_factors(u.view(m, r), torch.diag(s), vh.view(r, n))

    def _check(self) -> None:
        self.checks_done += 1
        layers = self.layers()
        share = max(1, math.ceil(self.layer_share_step * len(layers)))
        count = min(len(layers), self.checks_done * share)
        for index in range(len(layers) - count, len(layers)):
            name, factor = layers[index]
            if self._skip_left.get(name, 0) > 0:
                self._skip_left[name] -= 1
                continue
            self._update(factor, self._owner(index))
            self._skip_left[name] = self.stable_update_delay
        self.rank_history.append((self.step_count, self.ranks()))
        log.debug(
            "check %d at step %d: ranks %s, trainable %.1f%%",
            self.checks_done,
            self.step_count,
            self.ranks(),
            100 * self.trainable_fraction(),
        )

    @torch.no_grad()
    def _update(self, factor: LowRankWeight, owner: int) -> None:
        """Re-orthogonalise and prune one weight; the owner rank computes, all ranks adopt."""
        r = factor.rank
        m, n = factor.U.shape[0], factor.Vh.shape[1]
        local = not self._is_distributed() or self.comm.rank == owner
        if local:
            us, sigma, vsh = torch.linalg.svd(factor.S.to(torch.float64))
            min_rank = max(1, math.floor(self.min_rank_fraction * n))
            new_r = pruned_rank(sigma, self.sigma_cutoff_fraction, min_rank)
            left, right = us[:, :new_r], vsh[:new_r].T
            dtype = factor.S.dtype
            u_new = (factor.U.to(torch.float64) @ left).to(dtype).to(torch.float64)
            vh_new = (right.T @ factor.Vh.to(torch.float64)).to(dtype).to(torch.float64)
            s_new = sigma[:new_r].to(dtype).to(torch.float64)
        if self._is_distributed():
            device = factor.S.device
            header = torch.tensor([new_r if local else 0], dtype=torch.int64, device=device)
            self.comm.bcast(header, root=owner)
            new_r = int(header[0])
            sizes = [m * new_r, new_r, new_r * n, r * new_r, r * new_r]
            if local:
                parts = (u_new, s_new, vh_new, left, right)
                flat = torch.cat([p.reshape(-1) for p in parts]).contiguous()
            else:
                flat = torch.empty(sum(sizes), dtype=torch.float64, device=device)
            self.comm.bcast(flat, root=owner)
            u, s, vh, lf, rt = torch.split(flat, sizes)
            u_new, s_new, vh_new = u.view(m, new_r), s, vh.view(new_r, n)
            left, right = lf.view(r, new_r), rt.view(r, new_r)
        transform_state(self.optimizer, factor.S, left, right, self.optimizer_state)
        self._set_factors(factor, u_new, torch.diag(s_new), vh_new)

    def _set_factors(self, factor: LowRankWeight, u, s, vh) -> None:
        old = factor.S
        factor.set_factors(u, s, vh)
        if factor.S is not old:
            move_state(self.optimizer, old, factor.S, keep_state=True)
            for callback in self.shape_callbacks:
                callback(factor, old)

    def average_gradients(self) -> None:
        """Average the gradients of the trainable parameters over ``comm``."""
        average_gradients(self.model, self.comm)

    # ----------------------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """The schedule's state (the model and optimizer hold the tensors)."""
        return {
            "step_count": self.step_count,
            "checks_done": self.checks_done,
            "next_check": self.next_check,
            "converted": self.converted,
            "skip_left": dict(self._skip_left),
            "ranks": self.ranks(),
            "full_param_count": self.full_param_count,
            "rank_history": [(s, dict(r)) for s, r in self.rank_history],
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore the schedule; converts the model's structure if the checkpoint was converted.

        Call it before ``model.load_state_dict`` and ``optimizer.load_state_dict`` (the factor
        shapes are taken from the model's state dict).
        """
        if state["converted"] and not self.converted:
            self._convert_structure(decompose=False)
            self.converted = True
        ranks = self.ranks()
        if state["converted"] and set(ranks) != set(state["ranks"]):
            raise ValueError(
                f"state: its layers {sorted(state['ranks'])} differ from this model's {sorted(ranks)}"
            )
        for name, factor in self.layers():
            r = state["ranks"][name]
            if r != factor.rank:  # placeholders of the checkpoint's shapes; values come later
                kw = {"dtype": factor.S.dtype, "device": factor.S.device}
                u = torch.zeros(factor.U.shape[0], r, **kw)
                vh = torch.zeros(r, factor.Vh.shape[1], **kw)
                self._set_factors(factor, u, torch.zeros(r, r, **kw), vh)
        self.step_count = state["step_count"]
        self.checks_done = state["checks_done"]
        self.next_check = state["next_check"]
        self._skip_left = dict(state["skip_left"])
        self.full_param_count = state["full_param_count"]
        self.rank_history = [(s, dict(r)) for s, r in state["rank_history"]]

    def layer_reports(self) -> list[dict]:
        """``report()`` with each entry as a plain dict (for JSON tables)."""
        return [asdict(r) for r in self.report()]


def merge(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in which every low-rank layer is a plain layer with W = U S Vᵀ."""
    merged = copy.deepcopy(model)
    targets = [
        (n, m)
        for n, m in merged.named_modules()
        if isinstance(m, (LowRankLinear, LowRankConv, LowRankMultiheadAttention))
    ]
    outer = [(n, m) for n, m in targets if not any(n.startswith(o + ".") for o, _ in targets)]
    for name, module in outer:
        dense = module.to_dense()
        dense.train(module.training)
        if name == "":
            return dense
        _replace(merged, name, dense)
    return merged


def save_checkpoint(path, model: nn.Module, optimizer, controller: OIALR, **extra) -> None:
    """Write model, optimizer and OIALR state to ``path`` atomically."""
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "oialr": controller.state_dict(),
        **extra,
    }
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".oialr-", suffix=".pt")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path, model: nn.Module, optimizer, controller: OIALR) -> dict:
    """Restore what `save_checkpoint` wrote (in the order shapes require)."""
    payload = torch.load(path, map_location="cpu", weights_only=False)
    controller.load_state_dict(payload["oialr"])
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    return payload
