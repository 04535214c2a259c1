"""Synchronous data parallelism in the same harness as DASO: the baseline it is measured against."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

import hpc_comm as hc
from daso._flat import trainable
from hpc_comm.flat import flatten, flatten_grads, unflatten_grads_into, unflatten_into


class SyncDataParallel:
    """Average gradients over all ranks after every backward pass, then step (as DDP does).

    ``hierarchical=True`` reduces in three stages: sum inside each node, sum across the node
    leaders, broadcast inside each node; only the leaders talk across nodes.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        comm: hc.Communicator | None = None,
        hierarchical: bool = False,
        scaler=None,
        sync_initial: bool = True,
    ):
        comm = hc.world() if comm is None else comm
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        if not isinstance(comm, hc.Communicator):
            raise TypeError(f"comm must be a hpc_comm.Communicator, got {type(comm).__name__}")
        if not isinstance(hierarchical, bool):
            raise TypeError(f"hierarchical must be a bool, got {type(hierarchical).__name__}")
        self.model, self.optimizer, self.comm, self.scaler = model, optimizer, comm, scaler
        self.hierarchical = hierarchical
        self.params = trainable(model)
        if not self.params:
            raise ValueError("model must have at least one parameter with requires_grad=True")
        self.last_batch: int | None = None
        if hierarchical:
            self._node, self._leaders = comm.node(), comm.leaders()
        if sync_initial and comm.size > 1:
            flat = flatten(self.params)
            comm.bcast(flat, root=0)
            unflatten_into(flat, self.params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients through the wrapped optimizer's ``zero_grad``."""
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def average_gradients(self) -> None:
        """Replace every trainable parameter's gradient by its mean over all ranks (collective).

        A missing gradient counts as zeros. Nothing happens on a single rank.
        """
        if self.comm.size == 1:
            return
        flat = flatten_grads(self.params)
        if self.hierarchical:
            self._node.allreduce(flat)
            if self._leaders is not None:
                self._leaders.allreduce(flat)
            self._node.bcast(flat, root=0)
        else:
            self.comm.allreduce(flat)
        flat /= self.comm.size
        unflatten_grads_into(flat, self.params)

    def step(self) -> None:
        """Average the gradients over all ranks, then step the optimizer (through ``scaler``
        when one is given). Collective."""
        self.average_gradients()
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()

    @contextlib.contextmanager
    def epoch(self, n_batches: int) -> Iterator[SyncDataParallel]:
        """For symmetry with DASO: nothing is ever in flight between steps."""
        self.last_batch = n_batches - 1
        yield self

    def epoch_loss_logic(self, loss) -> float:
        """The training loss averaged over all ranks (collective)."""
        value = loss.item() if isinstance(loss, torch.Tensor) else float(loss)
        total = torch.tensor([value], dtype=torch.float64)
        self.comm.allreduce(total)
        return total.item() / self.comm.size

    def state_dict(self) -> dict:
        """The optimizer's state, and the scaler's when there is one (not the model's)."""
        state = {"optimizer": self.optimizer.state_dict()}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned."""
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])

    def close(self) -> None:
        """Nothing to free: node() and leaders() belong to ``comm``."""
