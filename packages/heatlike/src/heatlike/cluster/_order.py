"""Exact order statistics (medians) per group and feature of row-distributed data, by a search
over the bit patterns of the values: 16 small allreduces of counts, no data moved."""

from __future__ import annotations

import itertools

import torch

import hpc_comm as hc

_MAGNITUDE = 0x7FFFFFFFFFFFFFFF
_INT64 = torch.iinfo(torch.int64)
# each round splits every search interval into 2**_LEVELS parts: 4 bits per round, 16 rounds
_LEVELS = 4


def sortable_keys(values: torch.Tensor) -> torch.Tensor:
    """int64 keys in the order of the float64 values (negative floats get their magnitude bits
    flipped; the map is its own inverse)."""
    bits = values.to(torch.float64).contiguous().view(torch.int64)
    return torch.where(bits < 0, bits ^ _MAGNITUDE, bits)


def values_of(keys: torch.Tensor) -> torch.Tensor:
    """The float64 values of keys made by ``sortable_keys``."""
    bits = torch.where(keys < 0, keys ^ _MAGNITUDE, keys)
    return bits.contiguous().view(torch.float64)


def _key_range(keys: torch.Tensor, rows) -> tuple[int, int]:
    low = keys.min() if keys.numel() else keys.new_tensor(_INT64.max)
    # an empty block's sentinel is min + 1 so that its negation fits int64
    high = keys.max() if keys.numel() else keys.new_tensor(_INT64.min + 1)
    bounds = torch.stack([low, -high]).to(torch.int64)
    rows.allreduce(bounds, hc.MIN)
    return int(bounds[0]), -int(bounds[1])


def _midpoint(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """floor((lo + hi) / 2) without overflowing int64."""
    return (lo >> 1) + (hi >> 1) + (lo & hi & 1)


def _pivots(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """2**_LEVELS - 1 ascending pivots splitting [lo, hi] into equal parts, stacked on a new
    first axis (by repeated midpoints, which cannot overflow)."""
    bounds = [lo, hi]
    for _ in range(_LEVELS):
        refined = [bounds[0]]
        for a, b in itertools.pairwise(bounds):
            refined += [_midpoint(a, b), b]
        bounds = refined
    return torch.stack(bounds[1:-1])


def _sorted_by_group(keys: torch.Tensor, groups: torch.Tensor, n_groups: int) -> list:
    """For each group, its local keys sorted along the rows, one row per feature: (f, n_g)."""
    return [torch.sort(keys[groups == g], dim=0).values.T.contiguous() for g in range(n_groups)]


def _count_at_most(sorted_keys: list, pivots: torch.Tensor) -> torch.Tensor:
    """How many local keys of each group and feature are <= each pivot; ``pivots`` has shape
    (P, s, groups, f), and so has the result."""
    counts = torch.zeros_like(pivots)
    for g, column_keys in enumerate(sorted_keys):
        if column_keys.shape[1] == 0:
            continue
        wanted = pivots[:, :, g, :].permute(2, 0, 1).reshape(column_keys.shape[0], -1)
        found = torch.searchsorted(column_keys, wanted.contiguous(), right=True)
        counts[:, :, g, :] = found.reshape(-1, *pivots.shape[:2]).permute(1, 2, 0)
    return counts


def group_order_statistics(rows, groups: torch.Tensor, n_groups: int, ranks: torch.Tensor):
    """The ``ranks[s, g, j]``-th smallest value (0-based) of feature j over the rows of group g.

    Each rank sorts its own values of every group and feature once; then every round counts,
    by binary search, the local values at or below 15 pivots per search interval, one
    allreduce adds the counts, and each interval shrinks to the part holding the wanted value.
    The search is over the 64-bit patterns of the values, so it ends after 16 rounds with the
    exact value.

    Parameters
    ----------
    rows : LocalRows
        The data (this rank's rows and how to combine counts over ranks).
    groups : torch.Tensor
        (local rows,) int64 group of each local row, in ``0 .. n_groups - 1``.
    n_groups : int
        Number of groups.
    ranks : torch.Tensor
        (s, n_groups, features) int64 wanted ranks, each below its group's size (an empty
        group's entries are ignored: give 0 and discard the result).

    Returns
    -------
    torch.Tensor
        (s, n_groups, features) float64 order statistics, the same on every rank and for every
        number of ranks (only integer counts are combined).
    """
    keys = sortable_keys(rows.data)
    low, high = _key_range(keys, rows)
    lo = torch.full(ranks.shape, low, dtype=torch.int64, device=keys.device)
    hi = torch.full(ranks.shape, high, dtype=torch.int64, device=keys.device)
    sorted_keys = _sorted_by_group(keys, groups.long(), n_groups)
    # invariant: the answer, the smallest key with more than ``rank`` values at or below it,
    # lies in [lo, hi]
    while bool((lo < hi).any()):
        pivots = _pivots(lo, hi)
        enough = rows.allreduce(_count_at_most(sorted_keys, pivots)) > ranks
        first = torch.where(enough.any(0), enough.to(torch.int8).argmax(0), len(pivots))
        below = pivots.gather(0, (first - 1).clamp(min=0)[None])[0] + 1
        at = pivots.gather(0, first.clamp(max=len(pivots) - 1)[None])[0]
        lo = torch.where(first > 0, below, lo)
        hi = torch.where(first < len(pivots), at, hi)
    return values_of(lo)


def group_medians(rows, groups: torch.Tensor, n_groups: int, sizes: torch.Tensor):
    """Median of every feature over the rows of each group (NumPy's: the mean of the two middle
    values for an even size); groups of size 0 give NaN.

    Parameters
    ----------
    rows : LocalRows
        The data.
    groups : torch.Tensor
        (local rows,) group of each local row.
    n_groups : int
        Number of groups.
    sizes : torch.Tensor
        (n_groups,) number of rows in each group over all ranks.

    Returns
    -------
    torch.Tensor
        (n_groups, features) float64 medians.
    """
    f = rows.data.shape[1]
    sizes = sizes.to(torch.int64)
    lower = ((sizes - 1).clamp(min=0) // 2)[:, None].expand(n_groups, f)
    upper = (sizes // 2).clamp(max=sizes.clamp(min=1) - 1)[:, None].expand(n_groups, f)
    both = group_order_statistics(rows, groups, n_groups, torch.stack([lower, upper]))
    medians = (both[0] + both[1]) / 2
    medians[sizes == 0] = float("nan")
    return medians
