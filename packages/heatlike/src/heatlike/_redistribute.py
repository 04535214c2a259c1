"""Moving rows between ranks: reflow to a new layout, resplit to another axis, align operands.

Every function here sends each rank only what it will hold afterwards (one message per pair of
ranks that share rows, written straight into the result where the rows are contiguous); the one
exception, ``resplit(x, None)``, makes the array replicated and so gathers by definition.
"""

from __future__ import annotations

import math
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

    Each rank's own part is copied straight into the new block. The part for (from) another rank
    is a block of the old (new) local tensor cut along another axis, so one side of each message
    is usually strided. A part of at most ``_PIECE`` bytes travels as one message (staged once
    where it is strided); a larger one travels in row pieces of about ``_PIECE`` bytes along its
    first axis, both sides cutting it alike: a strided piece is staged through one of a few
    reused buffers small enough to stay in cache, a contiguous piece goes to MPI in place. A
    12.8 MB strided part staged whole costs two fresh allocations (page faults) and two copies
    that miss the cache; in pieces it costs neither allocation and cache-resident copies.
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
    receives = [
        (r, part_out(r))
        for r in _peers(rank, size)
        if counts_from[r] and counts_to[rank] and out.numel()
    ]
    sends = [
        (j, part_in(j))
        for j in _peers(rank, size)
        if counts_to[j] and counts_from[rank] and local.numel()
    ]

    def cut(sender, receiver, part):  # row pieces where the receiver's part is strided
        # The receiver's new block is contiguous, so its part from ``sender`` (cut along
        # split_from) is strided unless every axis before split_from has extent 1 or the sender
        # holds the whole extent; both ranks compute this from the layouts alone. Where only the
        # sender's part is strided, one staged message measured as fast as pieces (0 -> 1 at 2
        # ranks: 16.7 ms whole, 18.1 ms in pieces, median of 24).
        shape = list(gshape)
        shape[split_to] = counts_to[receiver]
        strided = math.prod(shape[:split_from]) > 1 and counts_from[sender] < shape[split_from]
        return _pieces_of(part) if strided and local.device.type == "cpu" else [part]

    receives = [(r, cut(r, rank, p)) for r, p in receives]
    sends = [(j, cut(rank, j, p)) for j, p in sends]
    if all(len(pieces) == 1 for _, pieces in receives + sends):
        requests = [handle.irecv(p, r, _RESPLIT_TAG) for r, (p,) in receives]
        requests += [handle.isend(p, j, _RESPLIT_TAG) for j, (p,) in sends]
        part_out(rank).copy_(part_in(rank))
        for request in requests:
            request.wait()
        return out
    _exchange_in_pieces(handle, receives, sends, lambda: part_out(rank).copy_(part_in(rank)))
    return out


# Bytes of one piece of a large resplit message, and pieces in flight per message. Measured at 2
# ranks, resplit 1 -> 0 of 200,000 x 64 float32 (12.8 MB messages), median of 16 calls each,
# interleaved: whole messages 36-38 ms; 2 MiB x 2 in flight 22 ms; 4 MiB x 2 25 ms; 1 MiB x 3
# 33 ms; 256 KiB x 4 32 ms.
_PIECE = 1 << 21
_DEPTH = 2


def _pieces_of(part: torch.Tensor) -> list[torch.Tensor]:
    """``part`` as consecutive row pieces along its first axis of about ``_PIECE`` bytes (one
    piece when it is small or its first axis is short). Sender and receiver hold parts of the
    same shape, so they cut them alike."""
    nbytes = part.numel() * part.element_size()
    if nbytes <= _PIECE or part.dim() == 0 or part.shape[0] < 2:
        return [part]
    rows = max(1, part.shape[0] * _PIECE // nbytes)
    return list(torch.split(part, rows, dim=0))


class _Lane:
    """The pieces of one message between this rank and one peer, in order, with at most
    ``depth`` in flight; strided pieces go through reused staging buffers."""

    def __init__(self, peer: int, pieces: list, depth: int):
        self.peer, self.pieces, self.next = peer, pieces, 0
        self.flight: list = []  # (request, piece, buffer or None), oldest first
        self.spare: list = []
        self.depth = depth

    def _buffer(self, piece):
        for k, buf in enumerate(self.spare):
            if buf.numel() >= piece.numel():
                return self.spare.pop(k)[: piece.numel()].view(piece.shape)
        return torch.empty(piece.shape, dtype=piece.dtype)

    def post(self, handle, send: bool) -> None:
        while self.next < len(self.pieces) and len(self.flight) < self.depth:
            piece = self.pieces[self.next]
            self.next += 1
            buf = None if piece.is_contiguous() else self._buffer(piece)
            if send:
                if buf is not None:
                    buf.copy_(piece)
                req = handle.isend(piece if buf is None else buf, self.peer, _RESPLIT_TAG)
            else:
                req = handle.irecv(piece if buf is None else buf, self.peer, _RESPLIT_TAG)
            self.flight.append((req, piece, buf))

    def progress(self, handle, send: bool) -> bool:
        """Retire the oldest pieces that have arrived (left); post more. True when done."""
        while self.flight and self.flight[0][0].test():
            _, piece, buf = self.flight.pop(0)
            if buf is not None:
                if not send:
                    piece.copy_(buf)
                self.spare.append(buf.view(-1))
        self.post(handle, send)
        return not self.flight and self.next == len(self.pieces)


def _exchange_in_pieces(handle, receives, sends, own_copy) -> None:
    """Every receive and send of a resplit as pipelined pieces (see ``resplit_tensor``)."""
    depth = _DEPTH
    lanes = [(_Lane(r, p, depth), False) for r, p in receives]
    lanes += [(_Lane(j, p, depth), True) for j, p in sends]
    for lane, send in lanes:  # receives first, so that the first pieces find them posted
        lane.post(handle, send)
    own_copy()
    while lanes:
        lanes = [(lane, send) for lane, send in lanes if not lane.progress(handle, send)]


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
