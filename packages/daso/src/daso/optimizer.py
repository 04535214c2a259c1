"""The DASO wrapper around a user's model and torch optimiser."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

import hpc_comm as hc
from daso._flat import FlatParameters, trainable
from daso.schedule import BatchPlan, SkipSchedule, plan_batch
from daso.topology import Topology, check_node_size
from hpc_comm.flat import flatten_grads, unflatten_grads_into

log = hc.get_logger(__name__)

DOWNCAST_TYPES = (None, torch.float32, torch.bfloat16, torch.float16)


@dataclass
class _PendingSync:
    """An asynchronous global sync in flight (every rank keeps one; only members have requests)."""

    group: int  # the local rank whose global group sent
    sent_batch: int
    due: int
    requests: list = field(default_factory=list)
    buffer: torch.Tensor | None = None


def _check_int(name: str, value, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


class DASO:
    """Distributed asynchronous and selective optimisation around ``optimizer``.

    Every batch: gradients are averaged inside the node (skipped on some batches when
    ``local_skip`` > 1), the local optimiser steps, then the global schedule runs:

    - blocking sync (warm-up, cool-down, the last batch of every epoch): the global group of the
      current local rank averages its parameters, which are then broadcast inside each node;
    - asynchronous sync (cycling phase, every ``global_skip`` batches): that group starts a
      non-blocking allreduce of its parameters; ``B`` batches later they are merged as
      ``θ ← (2B·θ_now + Σ θ_stale) / (2B + P)`` and broadcast inside each node.

    The sending group rotates over the local ranks 0 … g-1. Call ``step()`` after
    ``loss.backward()`` and ``epoch_loss_logic(loss)`` once per epoch; run each epoch inside
    ``with daso.epoch(n_batches):`` (or set ``last_batch``) so the last batch syncs blocking.

    ``downcast`` (bfloat16, float16, float32 or None): the dtype the *asynchronous* syncs send
    parameters in. Blocking syncs always send the parameters' own dtype, so warm-up equals
    synchronous data parallelism and the parameters kept after each epoch carry no rounding.

    The trainable parameters (same objects, same values) are re-stored as views of one flat
    buffer, which the syncs communicate and merge in place; it is rebuilt if something replaces
    a parameter's storage (``model.to``), and mixed dtypes fall back to packed copies.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        total_epochs: int,
        comm: hc.Communicator | None = None,
        warmup_epochs: int = 4,
        cooldown_epochs: int = 4,
        max_global_skips: int = 8,
        stability_level: float = 0.05,
        skip_reduction_factor: int = 2,
        local_skip_factor: int = 4,
        sending_chunk_size: int = 10_000_000,
        downcast: torch.dtype | None = torch.bfloat16,
        node_size: int | None = None,
        scaler=None,
        sync_initial: bool = True,
        record_trace: bool = False,
    ):
        comm = hc.world() if comm is None else comm
        self._check_args(model, optimizer, comm, downcast, stability_level)
        _check_int("total_epochs", total_epochs, 1)
        _check_int("warmup_epochs", warmup_epochs, 0)
        _check_int("cooldown_epochs", cooldown_epochs, 0)
        _check_int("max_global_skips", max_global_skips, 1)
        _check_int("skip_reduction_factor", skip_reduction_factor, 2)
        _check_int("local_skip_factor", local_skip_factor, 1)
        _check_int("sending_chunk_size", sending_chunk_size, 1)
        check_node_size(comm, node_size)
        self.model, self.optimizer, self.comm, self.scaler = model, optimizer, comm, scaler
        self.params = trainable(model)
        if not self.params:
            raise ValueError("model must have at least one parameter with requires_grad=True")
        self._store = FlatParameters(self.params)
        self.downcast = None if downcast in (None, torch.float32) else downcast
        self.sending_chunk_size = sending_chunk_size
        self.schedule = SkipSchedule(
            total_epochs=total_epochs,
            warmup_epochs=warmup_epochs,
            cooldown_epochs=cooldown_epochs,
            max_global_skips=max_global_skips,
            stability_level=float(stability_level),
            skip_reduction_factor=skip_reduction_factor,
            local_skip_factor=local_skip_factor,
        )
        self.last_batch: int | None = None
        self.batch = 0
        self.trace: list[tuple] | None = [] if record_trace else None
        self._send_group = 0
        self._pending: list[_PendingSync] = []
        self._epoch_done = False
        self.topology = Topology.build(comm, node_size)  # collective from here on
        if sync_initial:
            self._bcast(comm, 0)

    # ------------------------------------------------------------ validation
    @staticmethod
    def _check_args(model, optimizer, comm, downcast, stability_level) -> None:
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        if not isinstance(comm, hc.Communicator):
            raise TypeError(f"comm must be a hpc_comm.Communicator, got {type(comm).__name__}")
        if downcast not in DOWNCAST_TYPES:
            raise ValueError(
                f"downcast must be one of torch.bfloat16, torch.float16, torch.float32 or None, "
                f"got {downcast!r}"
            )
        if not isinstance(stability_level, (int, float)) or isinstance(stability_level, bool):
            raise TypeError(
                f"stability_level must be a float, got {type(stability_level).__name__}"
            )
        if not 0.0 <= stability_level < 1.0:
            raise ValueError(f"stability_level must be in [0, 1), got {stability_level}")

    # ---------------------------------------------------------- properties
    @property
    def global_skip(self) -> int:
        """Batches between global syncs in this epoch (0: a blocking sync after every batch)."""
        return self.schedule.global_skip

    @property
    def local_skip(self) -> int:
        """Batches between node-local gradient averages in this epoch (0 or 1: every batch)."""
        return self.schedule.local_skip

    @property
    def batches_to_wait(self) -> int:
        """Batches an asynchronous global sync stays in flight before it is merged (at most
        until the epoch's last batch)."""
        return self.schedule.batches_to_wait

    @property
    def epochs_done(self) -> int:
        """Epochs finished so far, as counted by ``epoch_loss_logic``."""
        return self.schedule.epoch

    def pending_requests(self) -> list:
        """The non-blocking requests of global syncs still in flight on this rank."""
        return [r for p in self._pending for r in p.requests if not r.done]

    # ------------------------------------------------------------ training
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients through the wrapped optimiser's ``zero_grad``."""
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        """Average gradients in the node, step the local optimiser, run the global schedule."""
        if self.last_batch is None:
            raise ValueError(
                "last_batch must be set (number of batches - 1) or use `with daso.epoch(n):`"
            )
        if self._parameters_changed():
            raise RuntimeError(
                "the model's trainable parameters changed since DASO last read them (a low-rank "
                "conversion, a pruned or frozen layer): call refresh_parameters() on every rank "
                "before the next step"
            )
        s = self.schedule
        plan = plan_batch(
            self.batch,
            self.last_batch,
            s.global_skip,
            s.local_skip,
            s.batches_to_wait,
            tuple(p.due for p in self._pending),
        )
        if plan.local_sync:
            self._average_grads_in_node()
        self._optimizer_step()
        self._run_global(plan)
        self._advance()

    def _parameters_changed(self) -> bool:
        # self.params keeps the old objects alive, so an equal id is the same parameter
        current = trainable(self.model)
        return len(current) != len(self.params) or any(
            a is not b for a, b in zip(current, self.params)
        )

    def refresh_parameters(self) -> None:
        """Re-read the model's trainable parameters after their set or shapes changed.

        For layers that change during training, such as OIALR's low-rank conversion and rank
        pruning. Global syncs in flight carry the old parameters: they are waited for and
        dropped, and no new communication is started. Call it on every rank at the same step
        (the next sync's message size follows the new parameters); the change itself must leave
        the ranks of a node with equal parameters, as OIALR does by broadcasting each SVD.
        """
        params = trainable(self.model)
        if not params:
            raise ValueError("model must have at least one parameter with requires_grad=True")
        for pending in self._pending:
            for request in pending.requests:
                request.wait()
        if self._pending:
            log.debug(
                "parameters refreshed: dropped %d global sync(s) in flight", len(self._pending)
            )
        self._pending.clear()
        self.params = params
        self._store = FlatParameters(params)

    def _run_global(self, plan: BatchPlan) -> None:
        for _ in plan.receive:  # due batches are non-decreasing, so these are the oldest
            self._receive(self._pending.pop(0))
        if plan.send == "blocking":
            self._blocking_sync()
        elif plan.send == "async":
            self._start_async(plan.due)
        if self.trace is not None and plan.local_sync:
            self.trace.append(("local", self.batch))

    def _advance(self) -> None:
        if self.batch == self.last_batch:
            self.batch, self._send_group, self._epoch_done = 0, 0, True
        else:
            self.batch += 1

    def _optimizer_step(self) -> None:
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()

    def _average_grads_in_node(self) -> None:
        g = self.topology.ranks_per_node
        if g == 1:
            return
        flat = flatten_grads(self.params)
        self.topology.node.allreduce(flat)
        flat /= g
        unflatten_grads_into(flat, self.params)

    def _chunks(self, flat: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.split(flat, self.sending_chunk_size))

    def _rotate(self) -> int:
        group = self._send_group
        self._send_group = (group + 1) % self.topology.ranks_per_node
        return group

    @torch.no_grad()
    def _blocking_sync(self) -> None:
        group = self._rotate()
        top = self.topology
        flat = self._store.values()
        if top.local_rank == group:
            for chunk in self._chunks(flat):
                top.group.allreduce(chunk)
            flat /= top.nodes
        self._bcast(top.node, group, flat)
        if self.trace is not None:
            self.trace.append(("sync", self.batch, group))

    @torch.no_grad()
    def _start_async(self, due: int) -> None:
        group = self._rotate()
        top = self.topology
        pending = _PendingSync(group=group, sent_batch=self.batch, due=due)
        if top.local_rank == group:
            flat = self._store.values()
            pending.buffer = flat.to(self.downcast or flat.dtype, copy=True)
            pending.requests = [top.group.iallreduce(c) for c in self._chunks(pending.buffer)]
        self._pending.append(pending)
        if self.trace is not None:
            self.trace.append(("send", self.batch, group, due))

    @torch.no_grad()
    def _receive(self, pending: _PendingSync) -> None:
        top = self.topology
        flat = self._store.values()
        if top.local_rank == pending.group:
            for request in pending.requests:
                request.wait()
            weight = 2.0 * (pending.due - pending.sent_batch)
            # θ ← (2B·θ_now + Σ θ_stale) / (2B + P), in place on the parameters' buffer
            flat.mul_(weight).add_(pending.buffer).div_(weight + top.nodes)
        self._bcast(top.node, pending.group, flat)
        if self.trace is not None:
            self.trace.append(("recv", self.batch, pending.group, pending.sent_batch))

    def _bcast(self, comm: hc.Communicator, root: int, flat: torch.Tensor | None = None) -> None:
        flat = self._store.values() if flat is None else flat
        if comm.size > 1:
            comm.bcast(flat, root=root)
        self._store.store(flat)

    # ------------------------------------------------------------- epochs
    @contextlib.contextmanager
    def epoch(self, n_batches: int) -> Iterator[DASO]:
        """Run one epoch of ``n_batches`` calls to ``step()``.

        On normal exit every global sync has been received and the parameters agree on all ranks
        (if the loop stopped early, a blocking sync closes the epoch). If the body raises, every
        request in flight is waited for and dropped before the exception propagates; this needs
        no new collective, so it is safe when every rank raises (parameters may then differ
        between nodes until the next blocking sync).
        """
        _check_int("n_batches", n_batches, 1)
        if self.batch != 0:
            raise RuntimeError("an epoch is already in progress (batch counter is not 0)")
        self.last_batch = n_batches - 1
        try:
            yield self
        except BaseException:
            self.abort()
            raise
        if self.batch != 0:
            self.finish_epoch()

    def finish_epoch(self) -> None:
        """Close an epoch early (collective): receive every pending sync, then sync blocking."""
        self._run_global(BatchPlan(False, tuple(range(len(self._pending))), "blocking"))
        self.batch, self._send_group, self._epoch_done = 0, 0, True

    def abort(self) -> None:
        """Wait for every request in flight, drop the stale parameters, reset the batch counter.
        No new communication is started."""
        dropped = len(self._pending)
        for pending in self._pending:
            for request in pending.requests:
                request.wait()
        self._pending.clear()
        self.batch, self._send_group = 0, 0
        if dropped:
            log.warning("epoch aborted: dropped %d global sync(s) in flight", dropped)

    def epoch_loss_logic(self, loss) -> float:
        """Call once after each epoch with this rank's training loss (collective). Averages it
        over all ranks, advances the schedule (warm-up, plateau rule, cool-down) and returns the
        average."""
        if isinstance(loss, torch.Tensor):
            if loss.numel() != 1:
                raise ValueError(f"loss must be a scalar, got a tensor of shape {loss.shape}")
            loss = loss.item()
        if not isinstance(loss, (int, float)) or isinstance(loss, bool):
            raise TypeError(f"loss must be a float or a scalar tensor, got {type(loss).__name__}")
        if not self._epoch_done:
            raise RuntimeError("epoch_loss_logic must be called once, after an epoch's last step")
        total = torch.tensor([float(loss)], dtype=torch.float64)
        self.comm.allreduce(total)
        average = total.item() / self.comm.size
        self._epoch_done = False
        plateau = self.schedule.end_epoch(average)
        log.debug(
            "epoch %d: loss %.5g%s -> global_skip %d, local_skip %d, batches_to_wait %d",
            self.schedule.epoch,
            average,
            " (plateau)" if plateau else "",
            self.global_skip,
            self.local_skip,
            self.batches_to_wait,
        )
        return average

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Schedule, optimiser (and scaler) state; only between epochs, when nothing is in flight."""
        if self.batch != 0 or self._pending:
            raise RuntimeError("state_dict() is only available between epochs")
        state = {
            "schedule": self.schedule.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch_done": self._epoch_done,
        }
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned; only between epochs.

        Raises
        ------
        ValueError
            If ``state`` is not a dict with the keys ``state_dict`` writes.
        RuntimeError
            If called in the middle of an epoch or with a global sync in flight.
        """
        if not isinstance(state, dict) or "schedule" not in state or "optimizer" not in state:
            raise ValueError("state must be a dict from DASO.state_dict()")
        if self.batch != 0 or self._pending:
            raise RuntimeError("load_state_dict() is only available between epochs")
        self.schedule.load_state_dict(state["schedule"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._epoch_done = bool(state.get("epoch_done", False))
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])

    # ------------------------------------------------------------ cleanup
    def close(self) -> None:
        """Wait for anything in flight and free the sub-communicators."""
        self.abort()
        self.topology.free()

    def __enter__(self) -> DASO:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
