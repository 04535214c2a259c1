"""A simulated slow interconnect: a Communicator wrapper that delays traffic between nodes.

This is a simulation for honest experiments on one machine, not a network model: every operation
on a communicator whose ranks sit on more than one node (real or emulated with
``HPC_COMM_RANKS_PER_NODE``), and every point-to-point message to or from another node (any
source counts as another node when the communicator spans nodes), is delayed by
``latency + nbytes / bandwidth`` seconds. ``nbytes`` is the
largest buffer this rank hands to or receives from the backend for that call (the message for
point-to-point, the vector for allreduce and bcast, the gathered result for allgather). Object
messages pay the latency only. Traffic that stays inside a node is not delayed.

Blocking operations: the transfer is taken to start when every peer has arrived, which is when
the real (fast, shared-memory) call returns; the call then sleeps for the full delay.

Non-blocking operations stay asynchronous: the transfer is taken to start when this rank starts
the operation (its peers start the same operation at about the same time in the codes modelled
here, e.g. DASO's global syncs), and completion is no earlier than start + delay: ``wait()``
sleeps only for what is left, ``test()`` reports False until then. Computation placed between
start and wait hides the delay, as on a network that progresses messages in the background.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from .communicator import ANY_SOURCE, Communicator, Request

__all__ = ["LinkModel", "LinkModelCommunicator", "LinkStats", "with_link_model"]


@dataclass(frozen=True)
class LinkModel:
    """The inter-node link: ``latency`` seconds per operation, ``bandwidth`` bytes per second."""

    latency: float = 0.0
    bandwidth: float = math.inf

    def __post_init__(self) -> None:
        if not isinstance(self.latency, (int, float)) or isinstance(self.latency, bool):
            raise TypeError(f"latency must be a number, got {type(self.latency).__name__}")
        if not isinstance(self.bandwidth, (int, float)) or isinstance(self.bandwidth, bool):
            raise TypeError(f"bandwidth must be a number, got {type(self.bandwidth).__name__}")
        if not (self.latency >= 0 and math.isfinite(self.latency)):
            raise ValueError(f"latency must be a finite number >= 0 seconds, got {self.latency}")
        if not self.bandwidth > 0:
            raise ValueError(f"bandwidth must be > 0 bytes per second, got {self.bandwidth}")

    def delay(self, nbytes: int) -> float:
        """Seconds an inter-node operation of ``nbytes`` takes at least."""
        return self.latency + nbytes / self.bandwidth


@dataclass
class LinkStats:
    """What crossed (or stayed inside) nodes on this rank, shared by a wrapper and its children.

    ``inter_seconds`` is the wall time this rank spent blocked in inter-node operations
    (blocking calls, and ``wait()`` of non-blocking ones): the communication time a step sees.
    """

    inter_bytes: int = 0
    intra_bytes: int = 0
    inter_calls: int = 0
    intra_calls: int = 0
    inter_seconds: float = 0.0
    by_op: dict[str, int] = field(default_factory=dict)

    def reset(self) -> None:
        """Set every counter back to zero and clear ``by_op`` (e.g. after a warm-up)."""
        self.inter_bytes = self.intra_bytes = self.inter_calls = self.intra_calls = 0
        self.inter_seconds = 0.0
        self.by_op.clear()


def _nbytes(*buffers) -> int:
    return max((b.numel() * b.element_size() for b in buffers if b is not None), default=0)


def _sleep_until(deadline: float) -> None:
    remaining = deadline - time.perf_counter()
    if remaining > 0:
        time.sleep(remaining)


class LinkModelCommunicator(Communicator):
    """``inner`` with inter-node operations slowed down to ``model`` (see the module docstring).

    Creating one is collective over ``inner`` (the ranks exchange their node ids once).
    Sub-communicators made with ``split``, ``node`` and ``leaders`` are wrapped too and share
    ``stats``. Freeing the wrapper frees only what it created, never ``inner`` itself.
    """

    def __init__(
        self,
        inner: Communicator,
        model: LinkModel,
        stats: LinkStats | None = None,
        _owns_inner: bool = False,
    ):
        if not isinstance(inner, Communicator):
            raise TypeError(f"inner must be a hpc_comm.Communicator, got {type(inner).__name__}")
        if not isinstance(model, LinkModel):
            raise TypeError(f"model must be a LinkModel, got {type(model).__name__}")
        super().__init__(inner.rank, inner.size, inner.node_id)
        self.check = inner.check
        self.inner, self.model = inner, model
        self.stats = LinkStats() if stats is None else stats
        self._owns_inner = _owns_inner
        self.node_ids = list(inner._allgather_obj(inner.node_id)) if inner.size > 1 else [0]
        self.crosses_nodes = len(set(self.node_ids)) > 1

    @property
    def backend(self) -> str:  # type: ignore[override]
        """The backend name of ``inner`` (the wrapper adds delays, not a backend)."""
        return self.inner.backend

    @property
    def handle(self) -> Any:
        """The backend object of ``inner`` (an mpi4py communicator, a process group, or None)."""
        return self.inner.handle

    # ------------------------------------------------------------- accounting
    def _crosses(self, peer: int | None) -> bool:
        if peer is None:
            return self.crosses_nodes
        if peer == ANY_SOURCE:
            return self.crosses_nodes
        return self.node_ids[peer] != self.node_ids[self._rank]

    def _count(self, op: str, nbytes: int, inter: bool) -> None:
        s = self.stats
        if inter:
            s.inter_bytes += nbytes
            s.inter_calls += 1
            s.by_op[op] = s.by_op.get(op, 0) + nbytes
        else:
            s.intra_bytes += nbytes
            s.intra_calls += 1

    def _blocking(self, op: str, nbytes: int, call, peer: int | None = None):
        inter = self._crosses(peer)
        self._count(op, nbytes, inter)
        if not inter:
            return call()
        start = time.perf_counter()
        result = call()
        # the transfer starts when the last peer has arrived, i.e. when the real call returns
        _sleep_until(time.perf_counter() + self.model.delay(nbytes))
        self.stats.inter_seconds += time.perf_counter() - start
        return result

    def _nonblocking(self, op: str, nbytes: int, start_call, peer: int | None = None) -> Request:
        inter = self._crosses(peer)
        self._count(op, nbytes, inter)
        req = start_call()
        if not inter:
            return req
        deadline = time.perf_counter() + self.model.delay(nbytes)
        stats = self.stats

        def test() -> bool:
            return req.test() and time.perf_counter() >= deadline

        def wait():
            began = time.perf_counter()
            result = req.wait()
            _sleep_until(deadline)
            stats.inter_seconds += time.perf_counter() - began
            return result

        return Request(test, wait)

    # ------------------------------------------------------- tensor primitives
    def _barrier(self) -> None:
        self._blocking("barrier", 0, self.inner._barrier)

    def _bcast(self, buf, root: int) -> None:
        self._blocking("bcast", _nbytes(buf), lambda: self.inner._bcast(buf, root))

    def _ibcast(self, buf, root: int) -> Request:
        return self._nonblocking("ibcast", _nbytes(buf), lambda: self.inner._ibcast(buf, root))

    def _allreduce(self, buf, op) -> None:
        self._blocking("allreduce", _nbytes(buf), lambda: self.inner._allreduce(buf, op))

    def _iallreduce(self, buf, op) -> Request:
        return self._nonblocking(
            "iallreduce", _nbytes(buf), lambda: self.inner._iallreduce(buf, op)
        )

    def _reduce(self, buf, op, root: int) -> None:
        self._blocking("reduce", _nbytes(buf), lambda: self.inner._reduce(buf, op, root))

    def _ireduce(self, buf, op, root: int) -> Request:
        return self._nonblocking(
            "ireduce", _nbytes(buf), lambda: self.inner._ireduce(buf, op, root)
        )

    def _allgatherv(self, send, recv, counts) -> None:
        self._blocking(
            "allgatherv", _nbytes(send, recv), lambda: self.inner._allgatherv(send, recv, counts)
        )

    def _allgather(self, send, recv) -> None:
        self._blocking("allgather", _nbytes(send, recv), lambda: self.inner._allgather(send, recv))

    def _gatherv(self, send, recv, counts, root: int) -> None:
        self._blocking(
            "gatherv",
            _nbytes(send, recv),
            lambda: self.inner._gatherv(send, recv, counts, root),
        )

    def _scatterv(self, send, recv, counts, root: int) -> None:
        self._blocking(
            "scatterv",
            _nbytes(send, recv),
            lambda: self.inner._scatterv(send, recv, counts, root),
        )

    def _alltoallv(self, send, send_counts, recv, recv_counts) -> None:
        self._blocking(
            "alltoallv",
            _nbytes(send, recv),
            lambda: self.inner._alltoallv(send, send_counts, recv, recv_counts),
        )

    def _reduce_scatter(self, send, recv, counts, op) -> None:
        self._blocking(
            "reduce_scatter",
            _nbytes(send),
            lambda: self.inner._reduce_scatter(send, recv, counts, op),
        )

    def _send(self, buf, dest: int, tag: int) -> None:
        self._blocking("send", _nbytes(buf), lambda: self.inner._send(buf, dest, tag), dest)

    def _isend(self, buf, dest: int, tag: int) -> Request:
        return self._nonblocking(
            "isend", _nbytes(buf), lambda: self.inner._isend(buf, dest, tag), dest
        )

    def _recv(self, buf, source: int, tag: int):
        return self._blocking(
            "recv", _nbytes(buf), lambda: self.inner._recv(buf, source, tag), source
        )

    def _irecv(self, buf, source: int, tag: int) -> Request:
        return self._nonblocking(
            "irecv", _nbytes(buf), lambda: self.inner._irecv(buf, source, tag), source
        )

    def _probe(self, source: int, tag: int):
        return self.inner._probe(source, tag)

    # ------------------------------------------------------- object primitives
    def _bcast_obj(self, obj: Any, root: int) -> Any:
        return self._blocking("bcast_obj", 0, lambda: self.inner._bcast_obj(obj, root))

    def _allgather_obj(self, obj: Any) -> list:
        return self._blocking("allgather_obj", 0, lambda: self.inner._allgather_obj(obj))

    def _gather_obj(self, obj: Any, root: int) -> list | None:
        return self._blocking("gather_obj", 0, lambda: self.inner._gather_obj(obj, root))

    def _isend_obj(self, obj: Any, dest: int, tag: int) -> Request:
        return self._nonblocking(
            "isend_obj", 0, lambda: self.inner._isend_obj(obj, dest, tag), dest
        )

    def _iprobe(self, source: int, tag: int):
        return self.inner._iprobe(source, tag)

    def _recv_obj(self, source: int, tag: int):
        return self._blocking("recv_obj", 0, lambda: self.inner._recv_obj(source, tag), source)

    # ------------------------------------------------------- sub-communicators
    def _split(self, color, key) -> Communicator | None:
        child = self.inner._split(color, key)
        if child is None:
            return None
        return LinkModelCommunicator(child, self.model, self.stats, _owns_inner=True)

    def _free(self) -> None:
        if self._owns_inner:
            self.inner.free()


def with_link_model(
    comm: Communicator, latency: float = 0.0, bandwidth: float = math.inf
) -> LinkModelCommunicator:
    """``comm`` behind a simulated inter-node link of ``latency`` s and ``bandwidth`` bytes/s
    (collective). With the defaults nothing is delayed and ``.stats`` only counts bytes."""
    return LinkModelCommunicator(comm, LinkModel(latency, bandwidth))
