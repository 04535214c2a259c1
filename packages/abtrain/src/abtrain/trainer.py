"""ABTrainer: runs after ``backward()`` and does AB-training's group sync, merges and re-splits."""

from __future__ import annotations

import torch
from torch import nn

import hpc_comm as hc
from hpc_comm.flat import average_gradients, broadcast_values, flatten

from .layers import ABLayer, ab_layers, truncation_rank
from .schedule import TRAIN_COMMS, Schedule, group_layout

log = hc.get_logger(__name__)


def _resize_state_tensor(value: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Slice or zero-pad a 2-D optimiser moment to ``shape`` (keeps the leading block)."""
    out = torch.zeros(shape, dtype=value.dtype, device=value.device)
    rows, cols = min(shape[0], value.shape[0]), min(shape[1], value.shape[1])
    out[:rows, :cols] = value[:rows, :cols]
    return out


def resize_optimizer_state(optimizer, param: torch.Tensor, old_shape: torch.Size) -> None:
    """Bring the moments of ``param`` that had ``old_shape`` to its current shape (Adam's
    ``exp_avg``, ``exp_avg_sq``, SGD's ``momentum_buffer``...)."""
    state = optimizer.state.get(param)
    if not state:
        return
    for key, value in list(state.items()):
        if torch.is_tensor(value) and value.ndim == 2 and value.shape == old_shape:
            state[key] = _resize_state_tensor(value, param.shape)


class ABTrainer:
    """AB-training around a converted model and its optimiser.

    Call ``step()`` after ``loss.backward()`` instead of ``optimizer.step()``. It averages the
    gradients (over all ranks in full-rank phases; inside the own group, or not at all with
    ``train_comm="individual"``, in AB phases), steps the optimiser, and on schedule splits W into
    A·B, merges the groups' factors (``sync_mode``) and re-splits with truncation. Modules that
    ``convert_model`` kept full rank are averaged over all ranks every step. Call ``finish()`` at
    the end so every rank holds the same merged model, and ``close()`` (or use ``with``) to free
    the group communicator.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        comm: hc.Communicator | None = None,
        *,
        warmup_steps: int = 100,
        sync_every: int = 100,
        full_rank_steps: int = 10,
        cutoff: float = 0.1,
        sync_mode: str = "full",
        group_size: int = -1,
        train_comm: str = "groups",
        lr_rebound_steps: int = 0,
        rebound_start_lr: float = 1e-5,
        broadcast_initial: bool = True,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        self.schedule = Schedule(warmup_steps, sync_every, full_rank_steps)
        if not isinstance(cutoff, (int, float)) or not 0.0 <= cutoff < 1.0:
            raise ValueError(f"cutoff must be a number in [0, 1), got {cutoff!r}")
        if train_comm not in TRAIN_COMMS:
            raise ValueError(f"train_comm must be one of {TRAIN_COMMS}, got {train_comm!r}")
        if not isinstance(lr_rebound_steps, int) or lr_rebound_steps < 0:
            raise ValueError(f"lr_rebound_steps must be an int >= 0, got {lr_rebound_steps!r}")
        self.layers: list[tuple[str, ABLayer]] = list(ab_layers(model))
        if not self.layers:
            raise ValueError("model has no ABLinear / ABConv2d layer: call convert_model first")
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        for name, layer in self.layers:
            if not all(id(p) in held for p in (layer.weight, layer.a, layer.b)):
                raise ValueError(
                    f"optimizer does not hold the parameters of layer {name!r}: build it after "
                    "convert_model"
                )
        self.comm = comm if comm is not None else hc.world()
        self.layout = group_layout(self.comm.size, group_size, sync_mode)
        self.model, self.optimizer = model, optimizer
        self.cutoff, self.sync_mode, self.train_comm = float(cutoff), sync_mode, train_comm
        self.lr_rebound_steps, self.rebound_start_lr = lr_rebound_steps, float(rebound_start_lr)
        self.role = self.layout.role_of(self.comm.rank)
        self.group_comm = self.comm.split(self.layout.group_of(self.comm.rank), self.comm.rank)
        self.group_size = self.group_comm.size
        self._sort_parameters()
        self.step_count = 0
        self.in_ab = False
        self.rank_history: list[list[int]] = []
        self._rebound_done = lr_rebound_steps
        self.broadcast_numel = 0
        if broadcast_initial and self.comm.size > 1:
            params = list(model.parameters())
            self.broadcast_numel = sum(p.numel() for p in params)
            broadcast_values(params, self.comm)
        if self.schedule.warmup_steps == 0:
            self.split()

    def _sort_parameters(self) -> None:
        """Sort parameters into always-synced ones (modules kept full rank), the AB layers' W/A/B,
        and the rest (biases, 1-D and other unconverted parameters)."""
        always = []
        for module in self.model.modules():
            if getattr(module, "_abtrain_keep_full_rank", False):
                always.extend(module.parameters())
        self.always_params = list({id(p): p for p in always}.values())
        factor_ids = {id(p) for _, layer in self.layers for p in (layer.weight, layer.a, layer.b)}
        always_ids = {id(p) for p in self.always_params}
        self.other_params = [
            p
            for p in self.model.parameters()
            if id(p) not in factor_ids and id(p) not in always_ids and p.requires_grad
        ]
        self._always_ids = always_ids

    # ----------------------------------------------------------------- stepping
    @property
    def phase(self) -> str:
        """``ab`` while the groups train factors, ``full`` otherwise."""
        return "ab" if self.in_ab else "full"

    def step(self) -> None:
        """Average the gradients as the phase demands, step the optimiser, then split / merge /
        re-split if the schedule says so."""
        if self.in_ab:
            average_gradients([p for p in self.always_params if p.requires_grad], self.comm)
            if self.train_comm == "groups":
                trained = [
                    p
                    for p in self.model.parameters()
                    if p.requires_grad and id(p) not in self._always_ids
                ]
                average_gradients(trained, self.group_comm)
        else:
            ordered = [p for p in self.always_params if p.requires_grad] + [
                p
                for p in self.model.parameters()
                if p.requires_grad and id(p) not in self._always_ids
            ]
            average_gradients(ordered, self.comm)
        self._optimizer_step()
        self.step_count += 1
        for action in self.schedule.actions_after(self.step_count):
            if action == "split":
                self.split()
            elif action == "merge":
                self.merge()
            else:
                self.split(cutoff=self.cutoff)

    def _optimizer_step(self) -> None:
        if self._rebound_done >= self.lr_rebound_steps:
            self.optimizer.step()
            return
        fraction = self._rebound_done / self.lr_rebound_steps
        targets = [group["lr"] for group in self.optimizer.param_groups]
        for group, target in zip(self.optimizer.param_groups, targets):
            start = min(self.rebound_start_lr, target)
            group["lr"] = start + (target - start) * fraction
        try:
            self.optimizer.step()
        finally:
            for group, target in zip(self.optimizer.param_groups, targets):
                group["lr"] = target
        self._rebound_done += 1

    def _start_rebound(self) -> None:
        self._rebound_done = 0 if self.lr_rebound_steps else self._rebound_done

    # ---------------------------------------------------------- split / merge
    def split(self, cutoff: float | None = None) -> list[int]:
        """Split every AB layer's W into A·B and switch to AB training (this rank's role). With a
        ``cutoff`` the rank keeps s_i > cutoff·s_1, agreed over all ranks by MAX so shapes match.
        A no-op while already split. Returns the ranks."""
        if self.in_ab:
            log.debug("split requested while already split: ignored")
            return self.ranks()
        svds = [layer.svd() for _, layer in self.layers]
        ranks = [truncation_rank(s, cutoff) for _, s, _ in svds]
        if cutoff is not None and self.comm.size > 1:
            agreed = torch.tensor(ranks, dtype=torch.int64)
            self.comm.allreduce(agreed, op=hc.MAX)
            ranks = [int(r) for r in agreed]
        for (_, layer), svd, rank in zip(self.layers, svds, ranks):
            old = (layer.a.shape, layer.b.shape)
            layer.split(rank=rank, svd=svd)
            if old[0] != layer.a.shape and len(old[0]) == 2:
                resize_optimizer_state(self.optimizer, layer.a, old[0])
                resize_optimizer_state(self.optimizer, layer.b, old[1])
            layer.set_mode(self.role)
        self.in_ab = True
        self.rank_history.append(ranks)
        self._start_rebound()
        log.debug("split at step %d, ranks %s", self.step_count, ranks)
        return ranks

    def merge(self) -> None:
        """Merge the factors of all ranks into one W (``sync_mode``), average the other
        parameters over all ranks and switch to full-rank training. A no-op when not split."""
        if not self.in_ab:
            log.debug("merge requested while not split: ignored")
            return
        size = self.comm.size
        is_a, is_b = self.role == "a", self.role == "b"
        n_a = len(self.layout.ranks_with_role("a"))
        n_b = size - n_a
        pieces = [p.detach() for p in self.other_params]
        for _, layer in self.layers:
            a, b = layer.a.detach(), layer.b.detach()
            if self.sync_mode == "full":
                pieces.append(a @ b)
            elif self.sync_mode == "with-stale":
                pieces += [a, b]
            elif self.sync_mode == "only-learned":
                pieces += [a * is_a, b * is_b]
            else:
                pieces.append(b)
        flat = flatten(pieces)
        if size > 1:
            self.comm.allreduce(flat, op=hc.SUM)
        offset = 0

        def take(like: torch.Tensor) -> torch.Tensor:
            nonlocal offset
            piece = flat[offset : offset + like.numel()].view_as(like)
            offset += like.numel()
            return piece

        with torch.no_grad():
            for p in self.other_params:
                p.copy_(take(p) / size)
            for _, layer in self.layers:
                a, b = layer.a.detach(), layer.b.detach()
                if self.sync_mode == "full":
                    w = take(a @ b) / size
                elif self.sync_mode == "with-stale":
                    w = (take(a) / size) @ (take(b) / size)
                elif self.sync_mode == "only-learned":
                    a_sum, b_sum = take(a), take(b)
                    a_new = a_sum / n_a if n_a else a
                    b_new = b_sum / n_b if n_b else b
                    w = a_new @ b_new
                else:
                    w = a @ (take(b) / size)
                layer.set_weight_matrix(w)
                layer.set_mode("full")
        self.in_ab = False
        self._start_rebound()
        log.debug("merged (%s) at step %d", self.sync_mode, self.step_count)

    def finish(self) -> None:
        """Merge if still split, so that every rank ends with the same full-rank model."""
        self.merge()

    def ranks(self) -> list[int]:
        """The current rank of each AB layer (its full min(m, n) before the first split)."""
        return [layer.rank or min(layer.matrix_shape) for _, layer in self.layers]

    # -------------------------------------------------------------- cleanup
    def close(self) -> None:
        """Free the group communicator. Idempotent."""
        if self.group_comm is not None:
            self.group_comm.free()
            self.group_comm = None

    def __enter__(self) -> ABTrainer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
