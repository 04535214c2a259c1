"""The forward-gradient estimator: k jvps in forward mode, combined into one gradient estimate."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from hpc_comm import get_logger

from .aggregation import (
    aggregate,
    check_aggregation,
    coefficients,
    scaling_factor,
    uses_gram,
    well_conditioned,
)
from .jvp import jvps_sequential, jvps_vectorised
from .tangents import SuppliedTangents, TangentStream, check_sampler

log = get_logger(__name__)

# tangent memory per chunk when chunk_size is not given: k = 16 tangents of a 4M-parameter model
# fit in one chunk, so they are drawn once (two chunks draw them twice, for V^T V and for V c)
DEFAULT_CHUNK_BYTES = 512 * 2**20


@dataclass
class ForwardGradientResult:
    """An estimate and what it was made of.

    ``grad`` has the structure of the parameters; ``loss`` is the (local) loss at the
    parameters; ``jvps`` holds, per tangent group (one group, or one per tensor with
    ``per_layer``), the k directional derivatives after any allreduce; ``k`` the tangents used per
    group (k > n keeps n for the projection and orthonormal tangents).
    """

    grad: Any
    loss: torch.Tensor
    jvps: list[torch.Tensor]
    k: list[int]

    def rebuilt(self, rebuild: Callable[[list], Any]) -> ForwardGradientResult:
        """The result with ``grad`` (a list of blocks) rebuilt into the parameters' structure."""
        self.grad = rebuild(self.grad)
        return self


def forward_gradient(
    f: Callable[[Any], torch.Tensor],
    params: Any,
    k: int = 1,
    aggregation: str = "mean",
    tangents: str | Any = "normal",
    generator: int | torch.Generator | None = None,
    **options: Any,
) -> Any:
    """Estimate the gradient of the scalar ``f(params)`` from k forward-mode jvps.

    ``params`` is a tensor, a sequence of tensors or a dict of tensors; ``f`` is called with the
    same structure and the estimate is returned in it. ``aggregation`` is ``single`` (k = 1),
    ``mean`` (unbiased), ``sum`` or ``projection`` (onto the span of the tangents). ``tangents`` is
    ``normal``, ``rademacher``, ``orthonormal`` or user tangents (the structure of ``params``, each
    tensor with a leading dimension k). ``generator`` is an int seed or a torch.Generator that the
    seed is drawn from. Keyword options: see `forward_gradient_result`.
    """
    return forward_gradient_result(f, params, k, aggregation, tangents, generator, **options).grad


def forward_gradient_result(
    f: Callable[[Any], torch.Tensor],
    params: Any,
    k: int = 1,
    aggregation: str = "mean",
    tangents: str | Any = "normal",
    generator: int | torch.Generator | None = None,
    *,
    per_layer: bool = False,
    scaling: str = "none",
    chunk_size: int | None = None,
    vectorize: bool | str = "auto",
    comm=None,
    local_weight: float | None = None,
) -> ForwardGradientResult:
    """`forward_gradient` returning the loss and the jvps too.

    per_layer: each parameter tensor gets its own k tangents and its own aggregation (k jvps
    per tensor) instead of one tangent over all parameters. scaling: ``none``, ``unbiased`` or
    ``norm`` (see `fwdgrad.aggregation.scaling_factor`). chunk_size: tangents per vmapped
    pass; tangents are regenerated from their seeds rather than stored, so memory grows with the
    chunk, not with k (default: as many as fit in 512 MiB). vectorize: True (vmap), False (one
    dual-number pass per tangent) or ``auto`` (vmap, falling back when the model cannot be
    vmapped; a chunk of one tangent takes the dual-number pass, which saves vmap's overhead). comm / local_weight: data-parallel estimate; every rank passes its part of the batch
    in ``f``, the same seed, and its share of the global batch (default 1/size); only the k jvps
    are allreduced.
    """
    blocks, rebuild = _flatten(params, "params")
    k = _check_k(k, tangents, blocks, rebuild)
    weight = check_options(k, aggregation, scaling, chunk_size, vectorize, comm, local_weight)
    primals = [b.detach() for b in blocks]
    stream = _make_stream(tangents, primals, generator, rebuild)
    kind = stream.kind
    groups = [[b] for b in range(len(primals))] if per_layer else [list(range(len(primals)))]

    jvp_runner = _JvpRunner(f, primals, rebuild, vectorize)
    passes = []
    for group in groups:
        n = sum(primals[b].numel() for b in group)
        k_used = min(k, n) if uses_gram(aggregation, kind) else k
        passes.append(_jvp_pass(jvp_runner, stream, group, n, k_used, chunk_size, aggregation))
    return combine(
        passes, groups, stream, primals, aggregation, scaling, comm, weight, jvp_runner.loss
    ).rebuilt(rebuild)


def combine(
    passes, groups, stream, primals, aggregation, scaling, comm, weight, loss, out=None
) -> ForwardGradientResult:
    """Allreduce the jvps of all groups (with ``comm``) and aggregate them into the estimate.

    ``passes`` holds one `_GroupPass` per group of parameter blocks; ``grad`` of the result is
    the list of blocks (see `ForwardGradientResult.rebuilt`). ``out``: optional tensors, one per
    block (or None for a block), contiguous and of the block's shape and dtype, that the estimate
    is written into (the result's blocks are then these tensors): a step that reuses them does
    not pay for fresh pages.
    """
    jvps = torch.cat([p.jvps for p in passes])
    if comm is not None:
        jvps.mul_(weight)
        comm.allreduce(jvps)
    estimate: list[torch.Tensor | None] = [None] * len(primals)
    offset = 0
    for group, gpass in zip(groups, passes):
        d = jvps[offset : offset + gpass.k]
        offset += gpass.k
        gpass.jvps = d
        _aggregate_group(
            estimate, primals, stream, group, gpass, aggregation, scaling, stream.kind, out
        )
    for b, p in enumerate(primals):
        target = None if out is None else out[b]
        if target is None:
            estimate[b] = torch.zeros_like(p) if estimate[b] is None else estimate[b]
        elif estimate[b] is None:
            estimate[b] = target.zero_()
        elif estimate[b] is not target:
            estimate[b] = target.copy_(estimate[b])
    return ForwardGradientResult(
        grad=estimate, loss=loss, jvps=[p.jvps for p in passes], k=[p.k for p in passes]
    )


@dataclass
class _GroupPass:
    """The jvp pass of one tangent group: its jvps, chunk bounds and whatever it could keep."""

    k: int
    n: int
    bounds: list[tuple[int, int]]
    jvps: torch.Tensor
    kept: list[torch.Tensor] | None  # the tangents when there is a single chunk
    gram: torch.Tensor | None  # V^T V, diagonal blocks filled during the pass
    gram_done: bool = False  # the pass filled all of V^T V
    buffers: list[torch.Tensor] | None = None  # reusable chunk buffers for regenerated tangents


class _JvpRunner:
    """Calls the vmapped or the sequential jvp on a subset of the parameters."""

    def __init__(self, f, primals, rebuild, vectorize):
        self.f, self.primals, self.rebuild = f, primals, rebuild
        self.vectorize = vectorize
        self.loss: torch.Tensor | None = None

    def __call__(self, group: list[int], tangents: list[torch.Tensor]) -> torch.Tensor:
        def restricted(sub: tuple[torch.Tensor, ...]) -> torch.Tensor:
            full = list(self.primals)
            for b, value in zip(group, sub):
                full[b] = value
            return self.f(self.rebuild(full))

        sub_primals = [self.primals[b] for b in group]
        # one tangent: the dual-number pass does the same work without vmap's overhead
        single = self.vectorize == "auto" and tangents[0].shape[0] == 1
        if self.vectorize is False or single:
            loss, d = jvps_sequential(restricted, sub_primals, tangents)
        else:
            try:
                loss, d = jvps_vectorised(restricted, sub_primals, tangents)
            except (RuntimeError, NotImplementedError) as exc:
                if self.vectorize is True:
                    raise
                log.warning("vmap failed (%s); using one dual-number pass per tangent", exc)
                self.vectorize = False
                loss, d = jvps_sequential(restricted, sub_primals, tangents)
        if self.loss is None:
            self.loss = loss
        return d


def _jvp_pass(runner, stream, group, n, k, chunk_size, aggregation) -> _GroupPass:
    itemsize = runner.primals[group[0]].element_size()
    bounds = chunk_bounds(k, chunk_size or max(1, DEFAULT_CHUNK_BYTES // max(1, n * itemsize)))
    need_gram = uses_gram(aggregation, stream.kind) and len(bounds) > 1
    gram = torch.zeros(k, k, dtype=torch.float64) if need_gram else None
    parts, kept = [], None
    for start, stop in bounds:
        chunk = stream.chunk(start, stop, group)
        parts.append(runner(group, chunk))
        if len(bounds) == 1:
            kept = chunk
        elif need_gram:
            gram[start:stop, start:stop] = _cross(chunk, chunk)
    jvps = torch.cat(parts)
    return _GroupPass(k=k, n=n, bounds=bounds, jvps=jvps, kept=kept, gram=gram)


def chunk_bounds(k: int, max_chunk: int) -> list[tuple[int, int]]:
    """[start, stop) ranges of at most ``max_chunk`` tangents, as even as possible."""
    count = math.ceil(k / max(1, max_chunk))
    size = math.ceil(k / count)
    return [(s, min(k, s + size)) for s in range(0, k, size)]


def _cross(left: list[torch.Tensor], right: list[torch.Tensor]) -> torch.Tensor:
    """Sum over blocks of left_b right_b^T (tangents as rows), accumulated in float64."""
    total = None
    for a, b in zip(left, right):
        if a is b:
            block = self_gram(a.reshape(a.shape[0], -1))
        else:
            block = (a.reshape(a.shape[0], -1) @ b.reshape(b.shape[0], -1).T).double()
        total = block if total is None else total + block
    return total


def self_gram(rows: torch.Tensor) -> torch.Tensor:
    """rows rows^T in float64, for a matrix with the tangents as its rows.

    CPU float32 and float64 go through NumPy's ``a @ a.T``, which BLAS computes as a symmetric
    product (``syrk``): one triangle, half the multiply-adds of torch's full product, and an
    exactly symmetric result. On a 2-core EPYC (AVX2, one thread) V^T V of 64 float32 tangents
    of 2**20 entries took 77 ms that way and 121 ms with torch (16 tangents: 9.5 and 11.6 ms).
    The rule is fixed rather than timed, so that every rank of a data-parallel run rounds the
    same way and the replicas stay identical.
    """
    if (
        rows.device.type == "cpu"
        and rows.dtype in (torch.float32, torch.float64)
        and not rows.requires_grad
    ):
        array = rows.numpy()
        return torch.from_numpy(array @ array.T).double()
    return (rows @ rows.T).double()


def _aggregate_group(
    estimate, primals, stream, group, gpass: _GroupPass, aggregation, scaling, kind, out=None
):
    """Add the group's estimate to ``estimate`` (a list with a tensor or None per block)."""
    d = gpass.jvps
    if gpass.kept is not None:  # one chunk: the tangents are at hand
        gram = None
        if uses_gram(aggregation, kind):
            gram = gpass.gram if gpass.gram_done else _cross(gpass.kept, gpass.kept)
        if gram is not None and not well_conditioned(gram):  # nearly dependent: QR of V
            matrix = torch.cat([t.reshape(t.shape[0], -1) for t in gpass.kept], dim=1).T
            flat = aggregate(matrix, d.to(matrix.dtype), aggregation, scaling, kind)
            for b, piece in zip(group, _split(flat, [primals[b] for b in group])):
                _accumulate(estimate, b, piece)
            return
        gpass.gram = gram
    elif gpass.gram is not None and not gpass.gram_done:
        sizes = [primals[b].numel() for b in group]
        _fill_gram(gpass.gram, stream, group, sizes, gpass.bounds)
    coef = coefficients(d, aggregation, kind, gpass.gram)
    coef = coef * scaling_factor(aggregation, scaling, gpass.n, gpass.k, kind)
    for start, stop in gpass.bounds:
        chunk = gpass.kept
        if chunk is None and gpass.buffers is None:
            chunk = stream.chunk(start, stop, group)
        elif chunk is None:
            chunk = stream.chunk(start, stop, group, out=gpass.buffers)
        c = coef[start:stop]
        for b, tangent in zip(group, chunk):
            _add_combination(estimate, b, c.to(tangent.dtype), tangent, out)


def _add_combination(estimate: list, b: int, c: torch.Tensor, tangents, out) -> None:
    """estimate[b] += sum_i c_i tangents[i], written into ``out[b]`` when it starts there.

    One matrix-vector product over the tangents as the rows of a matrix; into a given tensor it
    is about eight times faster than ``tensordot`` into fresh memory for one tangent of 2**20
    entries (0.33 vs 2.8 ms), and a little faster for 16.
    """
    rows = tangents.reshape(tangents.shape[0], -1).t()
    if estimate[b] is not None:
        estimate[b].view(-1).addmv_(rows, c)
        return
    target = None if out is None else out[b]
    if target is None:
        target = torch.empty(tangents.shape[1:], dtype=tangents.dtype, device=tangents.device)
    if c.numel() == 1:  # a scaled copy, about half the time of a one-column product
        torch.mul(tangents[0], c[0], out=target)
    else:
        torch.mv(rows, c, out=target.view(-1))
    estimate[b] = target


def _accumulate(estimate: list, b: int, value: torch.Tensor) -> None:
    """estimate[b] += value, where None stands for zero (saves zero-filling every block)."""
    if estimate[b] is None:
        estimate[b] = value
    else:
        estimate[b].add_(value)


def _fill_gram(gram, stream, group, sizes, bounds) -> None:
    """Complete V^T V, whose diagonal chunk blocks the jvp pass filled, regenerating tangents.

    If all k tangents of the largest parameter tensor fit in the memory of one chunk (of all
    tensors), one pass tensor by tensor: V^T V = sum_b V_b^T V_b, every tangent drawn once more.
    Otherwise the off-diagonal blocks V_a^T V_b chunk pair by chunk pair (two chunks in memory at
    a time; the generation grows with the square of the number of chunks).
    """
    k = bounds[-1][1]
    chunk = max(stop - start for start, stop in bounds)
    if k * max(sizes) <= chunk * sum(sizes):
        gram.zero_()
        for b in group:
            block = stream.chunk(0, k, [b])
            gram.add_(_cross(block, block))
        return
    for i, (s1, e1) in enumerate(bounds):
        left = None
        for s2, e2 in bounds[i + 1 :]:
            left = left if left is not None else stream.chunk(s1, e1, group)
            block = _cross(left, stream.chunk(s2, e2, group))
            gram[s1:e1, s2:e2] = block
            gram[s2:e2, s1:e1] = block.T


def _split(flat: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    pieces = torch.split(flat, [t.numel() for t in like])
    return [p.reshape(t.shape).to(t.dtype) for p, t in zip(pieces, like)]


def _flatten(params: Any, name: str) -> tuple[list[torch.Tensor], Callable[[list], Any]]:
    """The tensors of ``params`` in order, and a function that rebuilds the structure."""
    if isinstance(params, torch.Tensor):
        return [params], lambda ts: ts[0]
    if isinstance(params, Mapping):
        keys = list(params)
        tensors = [params[key] for key in keys]
        rebuild = lambda ts: dict(zip(keys, ts))  # noqa: E731
    elif isinstance(params, Sequence) and not isinstance(params, (str, bytes)):
        tensors = list(params)
        rebuild = (lambda ts: tuple(ts)) if isinstance(params, tuple) else (lambda ts: list(ts))
    else:
        raise TypeError(
            f"{name} must be a tensor, a sequence or a dict of tensors, got {type(params).__name__}"
        )
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise TypeError(f"{name} must hold at least one tensor and only tensors")
    if not all(t.is_floating_point() for t in tensors):
        raise TypeError(f"{name} must be floating-point tensors")
    return tensors, rebuild


def check_options(k, aggregation, scaling, chunk_size, vectorize, comm, local_weight) -> float:
    """Raise on a bad option (naming it); returns this rank's weight of the jvps."""
    check_aggregation(aggregation, scaling)
    if aggregation == "single" and k != 1:
        raise ValueError(f"aggregation='single' needs k=1, got k={k}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    if vectorize not in (True, False, "auto"):
        raise ValueError(f"vectorize must be True, False or 'auto', got {vectorize!r}")
    return _check_weight(local_weight, comm)


def _check_k(k, tangents, blocks, rebuild) -> int:
    if isinstance(tangents, str):
        check_sampler(tangents)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        return k
    supplied = _supplied_blocks(tangents, blocks)
    count = supplied[0].shape[0]
    if k not in (None, count) and k != 1:
        raise ValueError(f"k={k} does not match the {count} supplied tangents")
    return count


def _supplied_blocks(tangents, blocks) -> list[torch.Tensor]:
    supplied, _ = _flatten(tangents, "tangents")
    if len(supplied) != len(blocks):
        raise ValueError(
            f"tangents must have one tensor per parameter ({len(blocks)}), got {len(supplied)}"
        )
    count = supplied[0].shape[0] if supplied[0].dim() > 0 else 0
    for t, p in zip(supplied, blocks):
        if tuple(t.shape) != (count, *p.shape) or count < 1:
            raise ValueError(
                f"each tangent tensor must have shape (k, *param.shape) with one k >= 1; got "
                f"{tuple(t.shape)} for a parameter of shape {tuple(p.shape)}"
            )
    return supplied


def _make_stream(tangents, primals, generator, rebuild):
    if not isinstance(tangents, str):
        supplied = _supplied_blocks(tangents, primals)
        return SuppliedTangents([t.detach().to(p.dtype) for t, p in zip(supplied, primals)])
    seed = base_seed(generator)
    first = primals[0]
    return TangentStream(
        [p.shape for p in primals], seed, tangents, dtype=first.dtype, device=first.device
    )


def base_seed(generator: int | torch.Generator | None) -> int:
    """The seed tangents are derived from: an int as given, else drawn from a generator (the
    global torch generator when None), so successive calls get fresh tangents."""
    if isinstance(generator, bool):
        raise TypeError("generator must be an int seed, a torch.Generator or None, not a bool")
    if isinstance(generator, int):
        return generator
    if generator is None:
        return int(torch.randint(0, 2**62, (1,)).item())
    if isinstance(generator, torch.Generator):
        return int(
            torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item()
        )
    raise TypeError(
        f"generator must be an int seed, a torch.Generator or None, got {type(generator).__name__}"
    )


def _check_weight(local_weight, comm) -> float:
    if local_weight is None:
        return 1.0 / comm.size if comm is not None else 1.0
    if isinstance(local_weight, bool) or not isinstance(local_weight, (int, float)):
        raise TypeError(f"local_weight must be a float, got {type(local_weight).__name__}")
    if not (0.0 <= float(local_weight) <= 1.0):
        raise ValueError(
            f"local_weight must be in [0, 1] (this rank's share of the batch), got {local_weight}"
        )
    return float(local_weight)
