"""The AB-training schedule (warm-up, AB phases, merges, full-rank steps) and the group layout."""

from __future__ import annotations

from dataclasses import dataclass

SYNC_MODES = ("full", "with-stale", "only-learned", "only-b")
TRAIN_COMMS = ("groups", "individual")


def _check_int(name: str, value, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return value


@dataclass(frozen=True)
class Schedule:
    """When to split, merge and re-split, counted in completed optimiser steps (1-based).

    Steps 1..warmup are full-rank data parallel; the split happens after step ``warmup``. Then a
    merge follows every ``sync_every`` steps (after steps warmup + k·sync_every), and
    ``full_rank_steps`` full-rank steps later the weights are re-split with truncation.
    """

    warmup_steps: int
    sync_every: int
    full_rank_steps: int

    def __post_init__(self):
        _check_int("warmup_steps", self.warmup_steps, 0)
        _check_int("sync_every", self.sync_every, 1)
        _check_int("full_rank_steps", self.full_rank_steps, 0)
        if self.full_rank_steps >= self.sync_every:
            raise ValueError(
                f"full_rank_steps must be smaller than sync_every ({self.sync_every}), "
                f"got {self.full_rank_steps}"
            )

    def actions_after(self, step: int) -> tuple[str, ...]:
        """What happens after completed step ``step`` (0 = before training): ``split`` (the first,
        untruncated), ``merge``, ``resplit`` (truncated), in that order."""
        if step < self.warmup_steps:
            return ()
        if step == self.warmup_steps:
            return ("split",)
        since = (step - self.warmup_steps) % self.sync_every
        actions = []
        if since == 0:
            actions.append("merge")
        if since == self.full_rank_steps and step - self.warmup_steps >= self.sync_every:
            actions.append("resplit")
        return tuple(actions)

    def phase_of(self, step: int) -> str:
        """``full`` or ``ab``: how step ``step`` (1-based) trains."""
        if step <= self.warmup_steps:
            return "full"
        since_split = step - self.warmup_steps - 1
        cycle, pos = divmod(since_split, self.sync_every)
        return "full" if cycle >= 1 and pos < self.full_rank_steps else "ab"


@dataclass(frozen=True)
class GroupLayout:
    """Which ranks train together and what: ``groups[g]`` lists the ranks of group g, ``roles[g]``
    is ``a`` or ``b``."""

    groups: tuple[tuple[int, ...], ...]
    roles: tuple[str, ...]

    def group_of(self, rank: int) -> int:
        """Index of the group that holds ``rank``; ValueError if no group does."""
        for index, members in enumerate(self.groups):
            if rank in members:
                return index
        raise ValueError(f"rank {rank} is in no group")

    def role_of(self, rank: int) -> str:
        """``a`` or ``b``: the factor that ``rank``'s group trains."""
        return self.roles[self.group_of(rank)]

    def ranks_with_role(self, role: str) -> list[int]:
        """Every rank whose group trains ``role`` (``a`` or ``b``), in group order."""
        return [
            r for g, members in enumerate(self.groups) for r in members if self.roles[g] == role
        ]


def group_layout(world_size: int, group_size: int = -1, sync_mode: str = "full") -> GroupLayout:
    """Split ``world_size`` ranks into consecutive groups of ``group_size`` (-1: two halves);
    leftover ranks join the first groups one each. The first half of the groups (rounded down)
    train A, the rest B; with ``only-b`` every group trains B."""
    _check_int("world_size", world_size, 1)
    if not isinstance(group_size, int) or isinstance(group_size, bool):
        raise TypeError(f"group_size must be an int, got {type(group_size).__name__}")
    if group_size == 0 or group_size < -1:
        raise ValueError(f"group_size must be -1 (two halves) or >= 1, got {group_size}")
    if sync_mode not in SYNC_MODES:
        raise ValueError(f"sync_mode must be one of {SYNC_MODES}, got {sync_mode!r}")
    if group_size == -1:
        sizes = [s for s in (world_size // 2, world_size - world_size // 2) if s > 0]
    else:
        count = max(1, world_size // group_size)
        sizes = [min(group_size, world_size)] * count
        for extra in range(world_size - sum(sizes)):
            sizes[extra % count] += 1
    groups, start = [], 0
    for size in sizes:
        groups.append(tuple(range(start, start + size)))
        start += size
    n_a = 0 if sync_mode == "only-b" else len(groups) // 2
    roles = tuple("a" if g < n_a else "b" for g in range(len(groups)))
    return GroupLayout(tuple(groups), roles)
