"""The communicator surface Heat users touch (``MPI_WORLD``, ``chunk``, ``MPI``) over hpc-comm."""

from __future__ import annotations

import functools
import operator
import types as _pytypes
from collections.abc import Sequence

import torch

import hpc_comm as hc

__all__ = [
    "MPI",
    "MPI_SELF",
    "MPI_WORLD",
    "MPICommunication",
    "get_comm",
    "sanitize_comm",
    "use_comm",
]

# Heat exposes mpi4py's MPI module; heatlike never imports mpi4py, so this namespace holds what
# Heat users pass around: the reduction operators (hpc-comm's) and the world communicator.
MPI = _pytypes.SimpleNamespace(
    SUM=hc.SUM,
    PROD=hc.PROD,
    MIN=hc.MIN,
    MAX=hc.MAX,
    BAND=hc.BAND,
    BOR=hc.BOR,
    LAND=hc.MIN,
    LOR=hc.MAX,
    IN_PLACE=None,
    ANY_SOURCE=hc.ANY_SOURCE,
    ANY_TAG=hc.ANY_TAG,
)

_PY_REDUCE = {
    hc.SUM: operator.add,
    hc.PROD: operator.mul,
    hc.MIN: min,
    hc.MAX: max,
    hc.BAND: operator.and_,
    hc.BOR: operator.or_,
}


def chunk_counts(n: int, parts: int) -> list[int]:
    """Heat's layout of ``n`` rows on ``parts`` ranks: the first ``n % parts`` hold one more."""
    return hc.chunk_counts(n, parts)


def offsets_of(counts: Sequence[int]) -> list[int]:
    """Where each rank's rows start (exclusive prefix sums)."""
    return hc.offsets(counts)


class MPICommunication:
    """A group of ranks, as Heat's ``MPICommunication``: ``rank``, ``size``, ``chunk``,
    ``counts_displs_shape``, ``Split``/``Free`` and a few Heat-style collectives. ``handle`` is
    the hpc-comm communicator that does the work."""

    def __init__(self, handle: hc.Communicator | None = None):
        self.handle = hc.world() if handle is None else handle

    @property
    def rank(self) -> int:
        """This process's index in the group, ``0 .. size - 1``."""
        return self.handle.rank

    @property
    def size(self) -> int:
        """The number of ranks in the group."""
        return self.handle.size

    def __repr__(self) -> str:
        return f"MPICommunication(rank={self.rank}, size={self.size})"

    def is_distributed(self) -> bool:
        """True when there is more than one rank."""
        return self.handle.size > 1

    def chunk(self, shape, split, rank: int | None = None, w_size: int | None = None, sparse=False):
        """Rank ``rank``'s piece of an array of global ``shape`` split on ``split``: its offset
        along the split axis, its local shape and the slices that cut it from the global array."""
        shape = tuple(int(s) for s in shape)
        rank = self.rank if rank is None else rank
        size = self.size if w_size is None else w_size
        if split is None:
            return 0, shape, tuple(slice(0, s) for s in shape)
        split = _check_axis(split, len(shape), "split")
        counts = chunk_counts(shape[split], size)
        start = sum(counts[:rank])
        local = (*shape[:split], counts[rank], *shape[split + 1 :])
        slices = tuple(
            slice(start, start + counts[rank]) if i == split else slice(0, s)
            for i, s in enumerate(shape)
        )
        return start, local, slices

    def counts_displs_shape(self, shape, axis):
        """Every rank's count and displacement along ``axis``, and this rank's local shape."""
        shape = tuple(int(s) for s in shape)
        axis = _check_axis(axis, len(shape), "axis")
        counts = chunk_counts(shape[axis], self.size)
        out = (*shape[:axis], counts[self.rank], *shape[axis + 1 :])
        return tuple(counts), tuple(offsets_of(counts)), out

    # --- Heat-style collectives on Python objects (lower case) and on buffers (upper case) ---
    def Barrier(self) -> None:
        """Wait until every rank of the group has called it (also ``barrier``)."""
        self.handle.barrier()

    barrier = Barrier

    def bcast(self, obj=None, root: int = 0):
        """Broadcast a picklable object from ``root``."""
        return self.handle.bcast_obj(obj, root)

    def allgather(self, obj) -> list:
        """Every rank's object, in rank order."""
        return self.handle.allgather_obj(obj)

    def gather(self, obj, root: int = 0):
        """Every rank's picklable object as a list in rank order on ``root``; None on the
        other ranks."""
        return self.handle.gather_obj(obj, root)

    def allreduce(self, obj, op=hc.SUM):
        """Reduce a Python object (number, or anything ``op`` combines) over all ranks."""
        if isinstance(obj, torch.Tensor):
            return self.handle.allreduce(obj.clone(), op)
        return functools.reduce(_PY_REDUCE[op], self.handle.allgather_obj(obj))

    def Allreduce(self, sendbuf, recvbuf, op=hc.SUM) -> None:
        """Reduce tensors (or arrays' local tensors) into ``recvbuf``; ``sendbuf`` may be
        ``MPI.IN_PLACE`` (None)."""
        target = _local_tensor(recvbuf)
        if sendbuf is not None:
            target.copy_(_local_tensor(sendbuf))
        self.handle.allreduce(target, op)

    def Bcast(self, buf, root: int = 0) -> None:
        """Broadcast ``root``'s tensor (or an array's local tensor) into ``buf`` on every rank,
        in place; ``buf`` has the same shape and dtype on every rank."""
        self.handle.bcast(_local_tensor(buf), root)

    def Split(self, color: int = 0, key: int = 0) -> MPICommunication | None:
        """A sub-communicator of the ranks with the same ``color``; free it with ``Free()`` or
        use it in a ``with`` block."""
        child = self.handle.split(color, key)
        return None if child is None else MPICommunication(child)

    def Free(self) -> None:
        """Release the communicator and every communicator split from it (idempotent); a
        ``with`` block calls it on exit."""
        self.handle.free()

    def __enter__(self) -> MPICommunication:
        return self

    def __exit__(self, *exc) -> None:
        self.Free()

    def __getattr__(self, name):
        if name == "handle":
            raise AttributeError(name)
        return getattr(self.handle, name)


def _local_tensor(buf) -> torch.Tensor:
    return buf.larray if hasattr(buf, "larray") else buf


def _check_axis(axis, ndim: int, name: str) -> int:
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TypeError(f"{name} must be an int or None, got {type(axis).__name__}")
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise ValueError(f"{name}={axis} is out of range for {ndim} dimensions")
    return axis % max(ndim, 1)


MPI_WORLD = MPICommunication()
# This rank alone; hpc-comm makes it without a collective, so importing heatlike splits nothing.
MPI_SELF = MPICommunication(hc.self_comm())
MPI.COMM_WORLD = MPI_WORLD
_default_comm = MPI_WORLD


def get_comm() -> MPICommunication:
    """The communicator new arrays use when none is given."""
    return _default_comm


def use_comm(comm: MPICommunication | None = None) -> None:
    """Make ``comm`` the default communicator (``None`` restores ``MPI_WORLD``)."""
    global _default_comm
    _default_comm = sanitize_comm(comm)


def sanitize_comm(comm) -> MPICommunication:
    """The MPICommunication for ``comm`` (None for the default, or an hpc-comm communicator)."""
    if comm is None:
        return _default_comm
    if isinstance(comm, MPICommunication):
        return comm
    if isinstance(comm, hc.Communicator):
        return MPICommunication(comm)
    raise TypeError(f"comm must be an MPICommunication or None, got {type(comm).__name__}")
