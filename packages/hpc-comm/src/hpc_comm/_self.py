"""The ``self`` backend: one rank, no dependencies; used when no launcher started the process."""

from __future__ import annotations

import pickle
from collections import deque
from typing import Any

from ._ops import ReduceOp
from .communicator import ANY_TAG, Communicator, Request, Status


class SelfCommunicator(Communicator):
    """A communicator of size 1. Collectives are identities; messages to oneself are queued."""

    backend = "self"

    def __init__(self):
        super().__init__(rank=0, size=1, node_id=0)
        self._tensors: deque[tuple[int, Any]] = deque()
        self._objects: deque[tuple[int, bytes]] = deque()

    def _barrier(self) -> None:
        pass

    def _bcast(self, buf, root: int) -> None:
        pass

    def _ibcast(self, buf, root: int) -> Request:
        return Request.completed(buf)

    def _allreduce(self, buf, op: ReduceOp) -> None:
        pass

    def _iallreduce(self, buf, op: ReduceOp) -> Request:
        return Request.completed(buf)

    def _reduce(self, buf, op: ReduceOp, root: int) -> None:
        pass

    def _ireduce(self, buf, op: ReduceOp, root: int) -> Request:
        return Request.completed(buf)

    def _allgatherv(self, send, recv, counts) -> None:
        recv.copy_(send)

    def _gatherv(self, send, recv, counts, root) -> None:
        recv.copy_(send)

    def _scatterv(self, send, recv, counts, root) -> None:
        recv.copy_(send)

    def _alltoallv(self, send, send_counts, recv, recv_counts) -> None:
        recv.copy_(send)

    def _reduce_scatter(self, send, recv, counts, op) -> None:
        recv.copy_(send)

    # Messages to oneself: a send is buffered (a copy), so it never blocks.
    def _send(self, buf, dest: int, tag: int) -> None:
        self._tensors.append((tag, buf.clone()))

    def _isend(self, buf, dest: int, tag: int) -> Request:
        self._send(buf, dest, tag)
        return Request.completed()

    def _take(self, queue: deque, tag: int):
        for i, (t, payload) in enumerate(queue):
            if tag in (ANY_TAG, t):
                del queue[i]
                return t, payload
        return None

    def _recv(self, buf, source: int, tag: int) -> Status:
        found = self._take(self._tensors, tag)
        if found is None:
            raise RuntimeError(
                "recv on a size-1 communicator with no pending message: it would wait forever"
            )
        t, payload = found
        nbytes = payload.numel() * payload.element_size()
        if payload.numel() > buf.numel():
            raise ValueError(
                f"message of {nbytes} bytes does not fit the receive buffer "
                f"of {buf.numel() * buf.element_size()} bytes"
            )
        buf[: payload.numel()].copy_(payload)
        return Status(0, t, nbytes)

    def _irecv(self, buf, source: int, tag: int) -> Request:
        # Matched when first tested or waited for, so an isend posted later still arrives.
        def test() -> bool:
            return any(tag in (ANY_TAG, t) for t, _ in self._tensors)

        return Request(test, lambda: self._recv(buf, source, tag))

    def _probe(self, source: int, tag: int) -> Status:
        for t, payload in self._tensors:
            if tag in (ANY_TAG, t):
                return Status(0, t, payload.numel() * payload.element_size())
        raise RuntimeError(
            "probe on a size-1 communicator with no pending message: it would wait forever"
        )

    def _bcast_obj(self, obj: Any, root: int) -> Any:
        return pickle.loads(pickle.dumps(obj))

    def _allgather_obj(self, obj: Any) -> list:
        return [pickle.loads(pickle.dumps(obj))]

    def _gather_obj(self, obj: Any, root: int) -> list:
        return [pickle.loads(pickle.dumps(obj))]

    def _isend_obj(self, obj: Any, dest: int, tag: int) -> Request:
        self._objects.append((tag, pickle.dumps(obj)))
        return Request.completed()

    def _iprobe(self, source: int, tag: int) -> Status | None:
        for t, payload in self._objects:
            if tag in (ANY_TAG, t):
                return Status(0, t, len(payload))
        return None

    def _recv_obj(self, source: int, tag: int) -> tuple[Any, Status]:
        found = self._take(self._objects, tag)
        if found is None:
            raise RuntimeError(
                "recv_obj on a size-1 communicator with no pending message: it would wait forever"
            )
        t, payload = found
        return pickle.loads(payload), Status(0, t, len(payload))

    def _split(self, color: int | None, key: int) -> Communicator | None:
        return None if color is None else SelfCommunicator()

    def _free(self) -> None:
        self._tensors.clear()
        self._objects.clear()
