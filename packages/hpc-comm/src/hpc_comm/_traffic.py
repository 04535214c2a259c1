"""Traffic accounting: bytes and calls per operation on this rank, for benchmarks and reports."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from dataclasses import dataclass, field

_active: list[Traffic] = []


@dataclass
class Traffic:
    """Counters filled while a ``traffic()`` block is open.

    ``bytes_sent[op]`` is the payload this rank handed to the backend for ``op`` (the send buffer),
    ``bytes_received[op]`` the size of the buffer it received into, ``calls[op]`` how many calls were
    made, and ``copies[op]`` how many staging copies hpc-comm had to make (non-contiguous tensors,
    device staging). What the MPI library puts on the wire for its chosen algorithm is not modelled.
    """

    bytes_sent: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    bytes_received: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    copies: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def total_bytes_sent(self) -> int:
        return sum(self.bytes_sent.values())

    @property
    def total_bytes_received(self) -> int:
        return sum(self.bytes_received.values())

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def as_dict(self) -> dict[str, dict[str, int]]:
        ops = sorted(set(self.calls) | set(self.bytes_sent) | set(self.bytes_received))
        return {
            op: {
                "calls": self.calls.get(op, 0),
                "bytes_sent": self.bytes_sent.get(op, 0),
                "bytes_received": self.bytes_received.get(op, 0),
                "copies": self.copies.get(op, 0),
            }
            for op in ops
        }


@contextlib.contextmanager
def traffic():
    """Count what every communicator of this process hands to its backend inside the block.

    >>> with traffic() as t:
    ...     comm.allreduce(x)
    >>> t.bytes_sent["allreduce"]
    """
    counters = Traffic()
    _active.append(counters)
    try:
        yield counters
    finally:
        _active.remove(counters)


def record(op: str, sent: int = 0, received: int = 0, calls: int = 1) -> None:
    """Add one call of ``op`` to every open counter (a no-op when none is open)."""
    for counters in _active:
        counters.calls[op] += calls
        if sent:
            counters.bytes_sent[op] += sent
        if received:
            counters.bytes_received[op] += received


def record_copy(op: str, n: int = 1) -> None:
    """Note that ``op`` made ``n`` staging copies."""
    for counters in _active:
        counters.copies[op] += n
