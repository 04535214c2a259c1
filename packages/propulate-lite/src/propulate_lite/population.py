"""Individuals and the population a worker knows, kept ranked by loss as individuals arrive."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

Uid = tuple[int, int, int]  # (run segment, breeding worker, that worker's generation)
Handle = tuple[Uid, int]  # (uid, migration steps): one copy of an individual on one island


class Individual(Mapping):
    """A point of the search space (a read-only mapping name -> value) with its evaluation.

    ``loss`` is NaN until evaluated; ``failed`` marks an evaluation that raised or gave NaN.
    ``island`` is where this copy lives, ``current`` the island-local worker responsible for
    emigrating it, ``migration_steps`` how often it moved.
    """

    __slots__ = (
        "_values",
        "active",
        "cancelled",
        "current",
        "evaltime",
        "failed",
        "generation",
        "island",
        "loss",
        "migration_steps",
        "timestamp",
        "uid",
        "worker",
    )

    def __init__(self, values: Mapping[str, Any]):
        self._values = dict(values)
        self.loss = math.nan
        self.uid: Uid = (0, 0, 0)
        self.island = 0
        self.worker = 0
        self.generation = 0
        self.current = 0
        self.migration_steps = 0
        self.active = True
        self.failed = False
        self.cancelled = False
        self.evaltime = 0.0
        self.timestamp = 0.0

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    @property
    def handle(self) -> Handle:
        """(uid, migration_steps): tells this copy apart from copies of the same individual."""
        return (self.uid, self.migration_steps)

    def with_values(self, values: Mapping[str, Any]) -> Individual:
        """A new, unevaluated individual with these values."""
        return Individual(values)

    def copy(self) -> Individual:
        """A new individual with the same values and every attribute (loss, uid, island, flags)."""
        twin = Individual(self._values)
        for slot in self.__slots__[1:]:
            setattr(twin, slot, getattr(self, slot))
        return twin

    def __getstate__(self):
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, state):
        for slot, value in zip(self.__slots__, state, strict=True):
            setattr(self, slot, value)

    def __repr__(self) -> str:
        return f"Individual({self._values}, loss={self.loss:.6g}, uid={self.uid})"


class Ranked(Sequence):
    """A read-only view of individuals in ascending loss order (what propagators receive)."""

    sorted_by_loss = True

    def __init__(self, entries: list, arrivals: list | None = None):
        self._entries = entries
        # every individual the worker has taken in, in arrival order (append-only): lets a
        # propagator with state (CMA-ES) read only what is new since its last call
        self.arrivals = arrivals

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [e[2] for e in self._entries[index]]
        return self._entries[index][2]


class Population:
    """Every individual a worker has seen (the history), with the active ones ranked by loss.

    Adding and deactivating cost O(log n) comparisons plus a list insertion, so the cost per
    evaluation stays flat as the run grows; nothing re-sorts the whole history.
    ``owner`` is this worker's island-local index: its own active individuals (``current ==
    owner``) are ranked separately, for choosing emigrants and pollination victims.
    """

    def __init__(self, owner: int = 0):
        self.owner = owner
        self._by_handle: dict[Handle, Individual] = {}
        self._ranked: list = []
        self._own: list = []
        self._retired: set[Handle] = set()
        self._arrivals: list[Individual] = []
        self._order = 0
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._by_handle)

    def __iter__(self) -> Iterator[Individual]:
        return iter(self._by_handle.values())

    def __contains__(self, handle) -> bool:
        return handle in self._by_handle

    def get(self, handle: Handle) -> Individual | None:
        """The copy with ``handle``; None if this worker has not received it."""
        return self._by_handle.get(handle)

    def add(self, ind: Individual) -> bool:
        """Store ``ind``; False (and counted in ``duplicates``) if this copy is already here."""
        if ind.handle in self._by_handle:
            self.duplicates += 1
            return False
        if ind.handle in self._retired:  # its deactivation notice overtook it
            self._retired.discard(ind.handle)
            ind.active = False
        self._by_handle[ind.handle] = ind
        self._arrivals.append(ind)
        if ind.active and not ind.failed:
            self._order += 1
            entry = (ind.loss, self._order, ind)
            # (loss, order) is unique, so tuples compare in C without reaching the individual
            bisect.insort(self._ranked, entry)
            if ind.current == self.owner:
                bisect.insort(self._own, entry)
        return True

    def deactivate(self, handle: Handle) -> Individual | None:
        """Mark a copy inactive (emigrated or replaced); remembers handles not seen yet."""
        ind = self._by_handle.get(handle)
        if ind is None:
            self._retired.add(handle)
            return None
        if ind.active and not ind.failed:
            _remove(self._ranked, ind)
            if ind.current == self.owner:
                _remove(self._own, ind)
        ind.active = False
        return ind

    def active(self) -> Ranked:
        """The active, successfully evaluated individuals, best first."""
        return Ranked(self._ranked, self._arrivals)

    def own(self) -> Ranked:
        """The active individuals this worker is responsible for, best first."""
        return Ranked(self._own)

    def best(self, n: int = 1) -> list[Individual]:
        """The ``n`` active, successfully evaluated individuals with the lowest loss, best first
        (fewer when fewer exist)."""
        return self.active()[:n]

    def snapshot(self) -> dict:
        """Handle -> (values, loss, active, failed, island): for comparing two populations."""
        return {
            h: (dict(i), i.loss, i.active, i.failed, i.island) for h, i in self._by_handle.items()
        }


def _remove(entries: list, ind: Individual) -> None:
    lo = bisect.bisect_left(entries, (ind.loss, -1))
    for pos in range(lo, len(entries)):
        if entries[pos][2] is ind:
            del entries[pos]
            return
        if entries[pos][0] != ind.loss:
            break
