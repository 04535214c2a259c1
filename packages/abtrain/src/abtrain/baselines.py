"""Baselines in the same harness: plain data parallelism and PowerSGD gradient compression."""

from __future__ import annotations

import torch
from torch import nn

import hpc_comm as hc
from hpc_comm.flat import average_gradients, broadcast_values, flatten, unflatten_into


def _check_model_and_optimizer(model, optimizer) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
        )


def _broadcast_parameters(comm, model: nn.Module) -> None:
    broadcast_values(list(model.parameters()), comm)


def _allreduce_mean_(comm, flat: torch.Tensor) -> None:
    """Average ``flat`` over ``comm`` in place; nothing is sent on one rank."""
    if comm.size > 1 and flat.numel() > 0:
        comm.allreduce(flat, op=hc.SUM)
        flat /= comm.size


class DataParallelTrainer:
    """Synchronous data parallelism: one allreduce (mean) of all gradients every step."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        comm: hc.Communicator | None = None,
        *,
        broadcast_initial: bool = True,
    ):
        _check_model_and_optimizer(model, optimizer)
        self.model, self.optimizer = model, optimizer
        self.comm = comm if comm is not None else hc.world()
        self.step_count = 0
        if broadcast_initial:
            _broadcast_parameters(self.comm, model)

    def step(self) -> None:
        """Average the gradients over all ranks and step the optimiser."""
        average_gradients([p for p in self.model.parameters() if p.requires_grad], self.comm)
        self.optimizer.step()
        self.step_count += 1

    def finish(self) -> None:
        """Nothing to do: all ranks already hold the same model."""

    def close(self) -> None:
        """Nothing to free."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def powersgd_compressible(shape: torch.Size, rank: int) -> bool:
    """Whether a gradient of ``shape`` is sent as rank-``rank`` factors: it must be at least 2-D and
    r·(m+n) must be smaller than m·n."""
    if len(shape) < 2:
        return False
    m = shape[0]
    n = int(torch.Size(shape[1:]).numel())
    r = min(rank, m, n)
    return r * (m + n) < m * n


class PowerSGDTrainer:
    """PowerSGD (Vogels et al. 2019): each ≥2-D gradient M (viewed mxn) is sent as rank-r factors.

    With error feedback e: M ← M + e; P = M·Q, averaged over all ranks and orthonormalised;
    Q = Mᵀ·P, averaged; the step uses P·Qᵀ and e ← M - P·Qᵀ. Q is warm-started from the last step
    and begins as the same seeded Gaussian on every rank. 1-D gradients and matrices too small to
    compress are averaged uncompressed (in the same allreduce as P). The first ``warmup_steps``
    steps are plain data parallelism.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        comm: hc.Communicator | None = None,
        *,
        rank: int = 4,
        warmup_steps: int = 0,
        seed: int = 0,
        broadcast_initial: bool = True,
    ):
        _check_model_and_optimizer(model, optimizer)
        if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
            raise ValueError(f"rank must be an int >= 1, got {rank!r}")
        if not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an int >= 0, got {warmup_steps!r}")
        self.model, self.optimizer = model, optimizer
        self.comm = comm if comm is not None else hc.world()
        self.rank, self.warmup_steps = rank, warmup_steps
        self.step_count = 0
        params = [p for p in model.parameters() if p.requires_grad]
        self.compressed = [p for p in params if powersgd_compressible(p.shape, rank)]
        ids = {id(p) for p in self.compressed}
        self.uncompressed = [p for p in params if id(p) not in ids]
        generator = torch.Generator().manual_seed(seed)
        self.q = {}
        self.error = {}
        for p in self.compressed:
            m, n = p.shape[0], p.numel() // p.shape[0]
            r = min(rank, m, n)
            self.q[p] = torch.randn(n, r, generator=generator, dtype=p.dtype).to(p.device)
            self.error[p] = torch.zeros(m, n, dtype=p.dtype, device=p.device)
        if broadcast_initial:
            _broadcast_parameters(self.comm, model)

    def step(self) -> None:
        """Compress and average the gradients, then step the optimiser."""
        if self.step_count < self.warmup_steps:
            average_gradients([p for p in self.model.parameters() if p.requires_grad], self.comm)
        else:
            self._compressed_average()
        self.optimizer.step()
        self.step_count += 1

    def _compressed_average(self) -> None:
        for p in self.compressed + self.uncompressed:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        matrices = {}
        for p in self.compressed:
            matrices[p] = p.grad.reshape(self.error[p].shape) + self.error[p]
        ps = [matrices[p] @ self.q[p] for p in self.compressed]
        first = flatten(ps + [p.grad for p in self.uncompressed])
        _allreduce_mean_(self.comm, first)
        unflatten_into(first, ps + [p.grad for p in self.uncompressed])
        ps = [torch.linalg.qr(pm, mode="reduced").Q for pm in ps]
        qs = [matrices[p].T @ pm for p, pm in zip(self.compressed, ps)]
        second = flatten(qs)
        _allreduce_mean_(self.comm, second)
        unflatten_into(second, qs)
        for p, pm, qm in zip(self.compressed, ps, qs):
            approx = pm @ qm.T
            self.error[p] = matrices[p] - approx
            self.q[p] = qm
            p.grad.copy_(approx.view_as(p.grad))

    def finish(self) -> None:
        """Nothing to do: all ranks already hold the same model."""

    def close(self) -> None:
        """Nothing to free."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
