"""Row-distributed data matrices, shared by the estimators: argument checks, the float type,
row moments, rows by global index, class labels, a ring pass of row blocks, get/set_params.

A ``comm`` argument here is an hpc-comm communicator (a DNDarray's ``comm.handle``)."""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

import hpc_comm as hc

from .._redistribute import redistribute, resplit
from ..dndarray import DNDarray
from ..factories import array

__all__ = [
    "LocalRows",
    "Params",
    "as_matrix",
    "check_int",
    "check_number",
    "classes_of",
    "float_type",
    "generator",
    "labels_like",
    "moments",
    "ring",
    "rows_on_split0",
    "wrap_rows",
]


def as_matrix(x, name: str = "x", comm=None) -> DNDarray:
    """``x`` as a 2-d DNDarray (a NumPy array or tensor becomes a replicated one)."""
    if not isinstance(x, DNDarray):
        if not isinstance(x, (np.ndarray, torch.Tensor, list, tuple)):
            raise TypeError(f"{name} must be a DNDarray or an array-like, got {type(x).__name__}")
        x = array(x, comm=comm)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-dimensional (samples, features), got shape {x.shape}")
    if x.larray.dtype.is_complex:
        raise TypeError(f"{name} must be real, got {x.dtype.__name__}")
    return x


def float_type(*arrays: DNDarray) -> torch.dtype:
    """float64 if any input is float64, float32 otherwise (ints and halves compute in float32)."""
    return torch.float64 if any(a.larray.dtype == torch.float64 for a in arrays) else torch.float32


def check_int(value, name: str, low: int = 1) -> int:
    """``value`` as an int >= ``low``; ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def check_number(value, name: str, low: float = 0.0, strict: bool = False) -> float:
    """``value`` as a float >= ``low`` (> with ``strict``); ValueError naming ``name``."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or np.isnan(value) or (value <= low if strict else value < low):
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be a number {relation} {low}, got {value!r}")
    return float(value)


def rows_on_split0(x: DNDarray) -> DNDarray:
    """``x`` split along its rows, or replicated as it was (a column split is moved, one
    alltoallv)."""
    return resplit(x, 0) if x.split == 1 else x


def wrap_rows(local: torch.Tensor, like: DNDarray, columns: int | None = None) -> DNDarray:
    """A DNDarray whose rows are laid out as ``like``'s (``local`` holds this rank's rows)."""
    shape = (like.gshape[0],) if local.dim() == 1 else (like.gshape[0], local.shape[1])
    if columns is not None:
        shape = (like.gshape[0], columns)
    split = 0 if like.split == 0 else None
    counts = like.counts if split == 0 else None
    return DNDarray._make(local, shape, split, like.comm, like.device, counts)


def labels_like(y, x: DNDarray, name: str = "y") -> torch.Tensor:
    """This rank's entries of the 1-d ``y`` for the rows of ``x`` (moved if laid out otherwise)."""
    if not isinstance(y, DNDarray):
        if not isinstance(y, (np.ndarray, torch.Tensor, list, tuple)):
            raise TypeError(f"{name} must be a DNDarray or an array-like, got {type(y).__name__}")
        y = array(y, comm=x.comm)
    if y.ndim == 2 and y.gshape[1] == 1:
        y = DNDarray._make(
            y.larray.reshape(-1), (y.gshape[0],), y.split if y.split == 0 else None, y.comm,
            y.device, y.counts if y.split == 0 else None,
        )  # fmt: skip
    if y.ndim != 1 or y.gshape[0] != x.gshape[0]:
        raise ValueError(f"{name} must be 1-d with {x.gshape[0]} entries, got shape {y.shape}")
    if x.split is None:
        return resplit(y, None).larray
    if y.split is None:
        return y.larray.narrow(0, x.offset, x.lshape[0])
    return redistribute(y, x.counts).larray


def moments(local: torch.Tensor, comm, groups: torch.Tensor | None = None, n_groups: int = 1):
    """Count, mean and sum of squared deviations of the rows of every group, over all ranks
    (float64, two passes: sums first, then squares around the global mean; two allreduces).

    ``local`` is this rank's (rows, features) block, ``groups`` each row's group in
    ``0 .. n_groups-1`` (all rows in group 0 when None). ``comm`` is None for data that every
    rank holds whole. Returns (counts (g,), means (g, f), m2 (g, f)).
    """
    t = local.to(torch.float64)
    groups = (
        torch.zeros(t.shape[0], dtype=torch.int64, device=t.device)
        if groups is None
        else groups.long()
    )
    f = t.shape[1]
    sums = torch.zeros(n_groups, f + 1, dtype=torch.float64, device=t.device)
    sums[:, :f].index_add_(0, groups, t)
    sums[:, f].index_add_(0, groups, torch.ones_like(groups, dtype=torch.float64))
    if comm is not None:
        comm.allreduce(sums, hc.SUM)
    counts = sums[:, f]
    means = sums[:, :f] / counts.clamp(min=1)[:, None]
    m2 = torch.zeros(n_groups, f, dtype=torch.float64, device=t.device)
    m2.index_add_(0, groups, (t - means[groups]) ** 2)
    if comm is not None:
        comm.allreduce(m2, hc.SUM)
    return counts, means, m2


@dataclass
class LocalRows:
    """This rank's rows of a data matrix as a float tensor, with what is needed to combine
    per-row results over ranks. ``comm`` is None when every rank holds every row (replicated
    data needs no collective: summing over ranks would count each row ``size`` times)."""

    data: torch.Tensor
    offset: int
    counts: tuple
    comm: object | None

    @classmethod
    def of(cls, x: DNDarray, dtype: torch.dtype) -> LocalRows:
        """The rows of ``x`` (replicated or split along rows) converted to ``dtype``."""
        if x.split is None:
            return cls(x.larray.to(dtype), 0, (x.gshape[0],), None)
        comm = x.comm.handle if x.comm.size > 1 else None
        return cls(x.larray.to(dtype), x.offset, tuple(x.counts), comm)

    @property
    def n(self) -> int:
        """The number of rows over all ranks."""
        return sum(self.counts)

    @property
    def rank(self) -> int:
        """This rank's position in ``counts`` (0 for replicated data)."""
        return 0 if self.comm is None else self.comm.rank

    def allreduce(self, t: torch.Tensor, op=hc.SUM) -> torch.Tensor:
        """``t`` combined over the ranks that hold different rows (in place)."""
        if self.comm is not None:
            self.comm.allreduce(t, op)
        return t

    def global_indices(self) -> torch.Tensor:
        """The global row index of every local row."""
        return torch.arange(self.offset, self.offset + self.data.shape[0], device=self.data.device)

    def rows_at(self, indices) -> torch.Tensor:
        """The rows at the global ``indices``, on every rank (one allreduce: each rank fills
        the rows it holds, the others stay zero, so the sum is exact)."""
        idx = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
        out = self.data.new_zeros((idx.shape[0], self.data.shape[1]))
        mine = (idx >= self.offset) & (idx < self.offset + self.data.shape[0])
        out[mine] = self.data[idx[mine] - self.offset]
        return self.allreduce(out)


def classes_of(y_local: torch.Tensor, comm) -> torch.Tensor:
    """The sorted distinct values of a distributed label vector (``comm`` None: replicated)."""
    mine = torch.unique(y_local.detach().cpu())
    if comm is None:
        return mine
    every = comm.allgather_obj(mine.numpy())
    return torch.as_tensor(np.unique(np.concatenate(every))).to(mine.dtype)


def ring(blocks: Sequence[torch.Tensor], counts: Sequence[int], comm) -> Iterator:
    """Every rank's row blocks in turn: yields (owner rank, [blocks]) ``comm.size`` times,
    starting with this rank's own.

    While the caller works on one step's blocks, they travel on to the next rank and the
    previous rank's arrive (non-blocking send and receive), so each rank holds at most two
    blocks per tensor at any time and never the whole of any operand.
    """
    size, rank = comm.size, comm.rank
    right, left = (rank + 1) % size, (rank - 1) % size
    current = [b.contiguous() for b in blocks]
    for step in range(size):
        owner = (rank - step) % size
        pending = []
        if step + 1 < size:
            incoming = counts[(owner - 1) % size]
            nxt = [b.new_empty((incoming, *b.shape[1:])) for b in current]
            for i, (out, buf) in enumerate(zip(current, nxt)):
                pending.append(comm.irecv(buf, source=left, tag=step * len(current) + i))
                pending.append(comm.isend(out, dest=right, tag=step * len(current) + i))
        yield owner, current
        for req in pending:
            req.wait()
        if pending:
            current = nxt


def generator(random_state, comm) -> np.random.Generator:
    """A NumPy generator that draws the same numbers on every rank of the hpc-comm ``comm``:
    seeded with ``random_state`` (an int), or with a seed rank 0 draws and broadcasts (None)."""
    if random_state is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0]) if comm.rank == 0 else None
        random_state = comm.bcast_obj(seed, 0)
    elif isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        raise ValueError(f"random_state must be an int or None, got {random_state!r}")
    return np.random.default_rng(int(random_state))


class Params:
    """scikit-learn's ``get_params``/``set_params``: the hyperparameters are the arguments of
    ``__init__``, stored under the same names."""

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [
            p.name
            for p in signature.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self, deep: bool = True) -> dict:
        """The hyperparameters as a dict (``deep`` is accepted for scikit-learn's signature)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set hyperparameters by name; returns the estimator."""
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"{name!r} is not a parameter of {type(self).__name__}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
