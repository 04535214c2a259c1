"""Moving rows between ranks: reflow to a new layout, resplit to another axis, align operands.

Every function here sends each rank only what it will hold afterwards (one message per pair of
ranks that share rows, written straight into the result where the rows are contiguous); the one
exception, ``resplit(x, None)``, makes the array replicated and so gathers by definition.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .communication import chunk_counts, offsets_of
from .dndarray import DNDarray

__all__ = ["align", "balance", "redistribute", "reflow", "resplit", "resplit_tensor"]


def _intersect(start: int, length: int, lo: int, hi: int) -> tuple[int, int]:
    a, b = max(start, lo), min(start + length, hi)
    return a, max(b - a, 0)


def reflow(
    pieces: Sequence[torch.Tensor],
    layouts: Sequence[Sequence[tuple[int, int]]],
    dim: int,
    target_counts: Sequence[int],
    comm,
    empty: torch.Tensor,
) -> torch.Tensor:
    """Rows along ``dim`` to the layout ``target_counts``.

    ``pieces`` are this rank's blocks; ``layouts[r]`` lists rank r's blocks as (global start,
    length), in the order of rank r's ``pieces`` (every rank knows every layout, so each rank
    computes what it receives without asking). ``empty`` has the right dtype and other dims.
    """
    size, rank = comm.size, comm.rank
    target_offsets = offsets_of(target_counts)
    lo, n = target_offsets[rank], target_counts[rank]
    if size == 1:
        order = sorted(range(len(pieces)), key=lambda i: layouts[0][i][0])
        parts = [pieces[i] for i in order if layouts[0][i][1] > 0]
        return torch.cat(parts, dim) if parts else empty
    shape = list(empty.shape)
    shape[dim] = n
    out = torch.empty(shape, dtype=empty.dtype, device=empty.device)
    handle = comm.handle
    requests = []
    for r in _peers(rank, size):  # every piece of rank r that overlaps this rank's new rows
        for g, length in sorted(layouts[r]):
            a, m = _intersect(g, length, lo, lo + n)
            if m and out.numel():
                requests.append(handle.irecv(out.narrow(dim, a - lo, m), r, _REFLOW_TAG))
    mine = sorted(zip(layouts[rank], pieces), key=lambda gp: gp[0][0])
    for j in _peers(rank, size):  # the same pieces, in the same order, seen from the sender
        t_lo, t_hi = target_offsets[j], target_offsets[j] + target_counts[j]
        for (g, length), tensor in mine:
            a, m = _intersect(g, length, t_lo, t_hi)
            if m and tensor.numel():
                requests.append(handle.isend(tensor.narrow(dim, a - g, m), j, _REFLOW_TAG))
    for (g, length), tensor in mine:  # rows that stay on this rank
        a, m = _intersect(g, length, lo, lo + n)
        if m:
            out.narrow(dim, a - lo, m).copy_(tensor.narrow(dim, a - g, m))
    for request in requests:
        request.wait()
    return out


_REFLOW_TAG = 7300


def _block_layouts(counts: Sequence[int]) -> list[list[tuple[int, int]]]:
    return [[(o, c)] for o, c in zip(offsets_of(counts), counts)]


def _empty_rows(local: torch.Tensor, dim: int) -> torch.Tensor:
    return local.narrow(dim, 0, 0)


def redistribute(x: DNDarray, target_counts: Sequence[int]) -> DNDarray:
    """``x`` with ``target_counts`` rows per rank along its split axis (out of place)."""
    if x.split is None:
        raise ValueError("redistribute needs a split array")
    target_counts = tuple(int(c) for c in target_counts)
    if len(target_counts) != x.comm.size or sum(target_counts) != x.gshape[x.split]:
        raise ValueError(
            f"target counts must have {x.comm.size} entries adding up to {x.gshape[x.split]}, "
            f"got {list(target_counts)}"
        )
    if tuple(x.counts) == target_counts:
        return x
    local = reflow(
        [x.larray],
        _block_layouts(x.counts),
        x.split,
        target_counts,
        x.comm,
        _empty_rows(x.larray, x.split),
    )
    return DNDarray._make(local, x.gshape, x.split, x.comm, x.device, target_counts)


def balance(x: DNDarray) -> DNDarray:
    """``x`` in Heat's balanced layout."""
    if x.split is None or x.is_balanced():
        return x
    return redistribute(x, chunk_counts(x.gshape[x.split], x.comm.size))


def resplit_tensor(local, gshape, split_from, counts_from, split_to, counts_to, comm):
    """This rank's block of the array split on ``split_to`` with ``counts_to``, from its block
    split on ``split_from`` with ``counts_from``.

    Each rank's own part is copied straight into the new block; every other part travels as one
    point-to-point message that MPI reads from (writes into) the tensor itself when the part is
    contiguous, which is the case for the send side of a move to split 0 and the receive side of
    a move from split 0. Otherwise it is staged through one buffer.
    """
    size, rank = comm.size, comm.rank
    off_from, off_to = offsets_of(counts_from), offsets_of(counts_to)
    shape = list(gshape)
    shape[split_to] = counts_to[rank]
    out = torch.empty(shape, dtype=local.dtype, device=local.device)

    def part_out(r):  # where rank r's rows land in the new block
        return out.narrow(split_from, off_from[r], counts_from[r])

    def part_in(j):  # the piece of this rank's block that rank j will hold
        return local.narrow(split_to, off_to[j], counts_to[j])

    handle = comm.handle
    requests = [
        handle.irecv(part_out(r), r, _RESPLIT_TAG)
        for r in _peers(rank, size)
        if counts_from[r] and counts_to[rank] and out.numel()
    ]
    requests += [
        handle.isend(part_in(j), j, _RESPLIT_TAG)
        for j in _peers(rank, size)
        if counts_to[j] and counts_from[rank] and local.numel()
    ]
    part_out(rank).copy_(part_in(rank))
    for request in requests:
        request.wait()
    return out


_RESPLIT_TAG = 7301


def _peers(rank: int, size: int):
    """The other ranks, starting after this one (spreads the first messages over the ranks)."""
    return [(rank + k) % size for k in range(1, size)]


def resplit(x: DNDarray, axis: int | None = None, counts: Sequence[int] | None = None) -> DNDarray:
    """``x`` split along ``axis`` (None: replicated on every rank), balanced unless ``counts``
    gives the rows per rank. Split-to-split moves go through one alltoallv."""
    if axis is not None:
        if not isinstance(axis, int) or isinstance(axis, bool):
            raise TypeError(f"axis must be an int or None, got {type(axis).__name__}")
        if not -x.ndim <= axis < max(x.ndim, 1) or x.ndim == 0:
            raise ValueError(f"axis={axis} is out of range for an array of {x.ndim} dimensions")
        axis %= x.ndim
    comm = x.comm
    if axis is None:
        if x.split is None:
            return x
        local = comm.handle.allgatherv(x.larray.contiguous(), dim=x.split)
        return DNDarray._make(local, x.gshape, None, comm, x.device)
    counts = tuple(chunk_counts(x.gshape[axis], comm.size) if counts is None else counts)
    if x.split is None:
        start = sum(counts[: comm.rank])
        local = x.larray.narrow(axis, start, counts[comm.rank])
        return DNDarray._make(local, x.gshape, axis, comm, x.device, counts)
    if x.split == axis:
        return redistribute(x, counts)
    if comm.size == 1:
        return DNDarray._make(x.larray, x.gshape, axis, comm, x.device, counts)
    local = resplit_tensor(x.larray, x.gshape, x.split, x.counts, axis, counts, comm)
    return DNDarray._make(local, x.gshape, axis, comm, x.device, counts)


def align(x: DNDarray, out_shape: tuple, split: int | None, counts) -> torch.Tensor:
    """``x``'s local tensor, ready to broadcast against this rank's block of an array of
    ``out_shape`` split on ``split`` with ``counts`` (NumPy broadcasting, trailing axes aligned).

    The operand that has the split axis at full extent is moved into that layout; one that is
    broadcast along it (extent 1 or missing) is made replicated, which costs at most its size.
    """
    lead = len(out_shape) - x.ndim
    axis = None if split is None else split - lead
    full = axis is not None and axis >= 0 and x.gshape[axis] == out_shape[split]
    if not full:
        if x.split is not None:
            x = resplit(x, None)
        return x.larray
    if x.split is None:
        start = sum(counts[: x.comm.rank])
        return x.larray.narrow(axis, start, counts[x.comm.rank])
    return resplit(x, axis, counts).larray
