"""Micro-benchmarks of the collectives: latency and bandwidth over a sweep of message sizes.

The idea is the one of the OSU micro-benchmarks: for every operation and message size, run a few
warm-up calls, synchronise the ranks with a barrier, time ``iterations`` back-to-back calls with
``time.perf_counter`` and divide by ``iterations``. Every rank times itself; the reported latency
is the slowest rank's (an allreduce MAX over the ranks), so every rank returns the same rows.

>>> import hpc_comm as hc
>>> from hpc_comm import bench
>>> rows = bench.sweep(hc.world(), ops=("allreduce",), sizes=["8", "1MiB"])
>>> print(bench.format_table(rows))        # a Markdown table
>>> bench.plot(rows, "latency.png")        # needs the ``plot`` extra (matplotlib)

``sweep`` is collective: every rank of ``comm`` calls it with the same arguments. Arguments are
checked on every rank before the first collective, so bad input raises the same error everywhere.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported lazily, like everywhere in hpc-comm
    import torch

    from .communicator import Communicator

__all__ = [
    "DEFAULT_SIZES",
    "OPS",
    "BenchRow",
    "default_iterations",
    "default_sizes",
    "default_warmup",
    "format_size",
    "format_table",
    "parse_size",
    "parse_sizes",
    "plot",
    "sweep",
]

OPS = ("allreduce", "bcast", "allgather", "alltoall")
"""The operations ``sweep`` knows, in their default order."""

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

DEFAULT_SIZES = (8, 64, 512, 4 * KiB, 32 * KiB, 256 * KiB, MiB, 8 * MiB, 64 * MiB)
"""Default message sizes in bytes per rank: 8 B to 64 MiB, every power of 8 plus 1 MiB."""

# Byte budget of one timed loop: iterations ~ _BUDGET / nbytes, clamped to [_MIN_ITERS, _MAX_ITERS].
_BUDGET = 64 * MiB
_MIN_ITERS = 5
_MAX_ITERS = 1000
_MIN_WARMUP = 2

_UNITS = {"": 1, "b": 1, "k": KiB, "kib": KiB, "m": MiB, "mib": MiB, "g": GiB, "gib": GiB}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([A-Za-z]*)\s*$")


@dataclass(frozen=True)
class BenchRow:
    """One measured point of a sweep.

    ``op``: the operation (one of ``OPS``).
    ``nbytes``: the message size in bytes per rank: the buffer each rank reduces (allreduce), the
    buffer broadcast (bcast), each rank's contribution (allgather, which returns ``size`` times
    as much), and the block each rank sends to *each* rank (alltoall, whose send and receive
    buffers hold ``size`` such blocks), as the OSU benchmarks count it.
    ``iterations``: timed calls (warm-up calls not included).
    ``latency_us``: wall time of one call in microseconds, the mean over the timed calls on the
    slowest rank.
    ``bandwidth_MBps``: ``nbytes / latency``, in MB/s with 1 MB = 10**6 bytes; numerically
    ``nbytes / latency_us`` (bytes per microsecond are MB/s). It is the message size per rank
    divided by the latency, not the bytes the MPI library moves for its algorithm.
    """

    op: str
    nbytes: int
    iterations: int
    latency_us: float
    bandwidth_MBps: float


# ------------------------------------------------------------------------------------- sizes
def parse_size(text: str | int, name: str = "size") -> int:
    """A message size in bytes from ``8``, ``"8"``, ``"8B"``, ``"4KiB"``, ``"1MiB"``, ``"64MiB"``
    or ``"1GiB"`` (units are powers of 1024, case-insensitive; ``K``, ``M``, ``G`` are shorthands
    for KiB, MiB, GiB; spaces between number and unit are allowed).

    Raises ValueError naming ``name`` (the argument or option the text came from) for anything
    else, including zero, negative and fractional sizes and decimal units like ``KB``.
    """
    if isinstance(text, bool):
        raise ValueError(f"{name}: expected a size in bytes, got {text!r}")
    if isinstance(text, int):
        if text <= 0:
            raise ValueError(f"{name}: a size must be a positive number of bytes, got {text}")
        return text
    if not isinstance(text, str):
        raise ValueError(
            f"{name}: expected an int or a string like 8, 8B, 4KiB, 1MiB, got {type(text).__name__}"
        )
    match = _SIZE_RE.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        hint = ""
        if unit in ("kb", "mb", "gb"):
            hint = f" ({unit.upper()} is ambiguous: write {unit[0].upper()}iB for powers of 1024)"
        raise ValueError(
            f"{name}: expected a size like 8, 8B, 4KiB, 1MiB or 64MiB, got {text!r}{hint}"
        )
    value = int(match.group(1)) * _UNITS[unit]
    if value <= 0:
        raise ValueError(f"{name}: a size must be a positive number of bytes, got {text!r}")
    return value


def parse_sizes(text: str, name: str = "sizes") -> list[int]:
    """A comma-separated list of sizes (``"8,4KiB,1MiB"``) in bytes; ValueError naming ``name``
    if any entry is not a size ``parse_size`` accepts, or if the list is empty."""
    if not isinstance(text, str):
        raise ValueError(f"{name}: expected a comma-separated string, got {type(text).__name__}")
    parts = [p for p in (s.strip() for s in text.split(",")) if p]
    if not parts:
        raise ValueError(f"{name}: expected at least one size like 8, 4KiB, 1MiB, got {text!r}")
    return [parse_size(p, name) for p in parts]


def format_size(nbytes: int) -> str:
    """``nbytes`` in the largest binary unit that divides it exactly (``4096`` -> ``"4 KiB"``,
    ``1000`` -> ``"1000 B"``); ``parse_size`` reads the result back."""
    for unit, factor in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if nbytes >= factor and nbytes % factor == 0:
            return f"{nbytes // factor} {unit}"
    return f"{nbytes} B"


def default_sizes() -> list[int]:
    """``DEFAULT_SIZES`` as a new list: 8 B, 64 B, 512 B, 4 KiB, 32 KiB, 256 KiB, 1 MiB, 8 MiB,
    64 MiB."""
    return list(DEFAULT_SIZES)


def default_iterations(nbytes: int) -> int:
    """Timed calls for a message of ``nbytes``: about 64 MiB worth of messages, at least 5 and at
    most 1000 (1000 up to 64 KiB, 64 at 1 MiB, 8 at 8 MiB, 5 at 64 MiB)."""
    return max(_MIN_ITERS, min(_MAX_ITERS, _BUDGET // max(1, nbytes)))


def default_warmup(nbytes: int) -> int:
    """Untimed calls before the timed ones: a tenth of the timed calls, at least 2."""
    return max(_MIN_WARMUP, default_iterations(nbytes) // 10)


# ------------------------------------------------------------------------------------- sweep
def _check_count(value, name: str, minimum: int) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _resolve_dtype(dtype):
    import torch

    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        resolved = getattr(torch, dtype.removeprefix("torch."), None)
        if not isinstance(resolved, torch.dtype):
            raise ValueError(f"dtype: {dtype!r} is not a torch dtype name (e.g. 'float32')")
        return resolved
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype or its name, got {type(dtype).__name__}")
    return dtype


def _validate(ops, sizes, iterations, warmup, dtype) -> tuple[list[str], list[int], Any]:
    if isinstance(ops, str):
        ops = (ops,)
    ops = list(ops)
    if not ops:
        raise ValueError(f"ops must name at least one of {', '.join(OPS)}")
    for op in ops:
        if op not in OPS:
            raise ValueError(f"ops: unknown operation {op!r}; choose from {', '.join(OPS)}")
    sizes = default_sizes() if sizes is None else [parse_size(s, "sizes") for s in sizes]
    if not sizes:
        raise ValueError("sizes must hold at least one message size")
    _check_count(iterations, "iterations", 1)
    _check_count(warmup, "warmup", 0)
    dtype = _resolve_dtype(dtype)
    itemsize = dtype.itemsize
    for nbytes in sizes:
        if nbytes % itemsize:
            raise ValueError(
                f"sizes: {nbytes} bytes is not a whole number of {dtype} elements "
                f"({itemsize} bytes each)"
            )
    if "allreduce" in ops:
        from ._ops import ReduceOp, effective_op

        effective_op(ReduceOp.SUM, dtype)  # TypeError for dtypes that cannot be reduced
    return ops, sizes, dtype


def _make_call(comm: Communicator, op: str, numel: int, dtype) -> Callable[[], Any]:
    """A closure that runs ``op`` once on buffers allocated here (outside the timed loop)."""
    import torch

    if op == "allreduce":
        buf = torch.zeros(numel, dtype=dtype)  # zeros stay zeros: no overflow, no denormals
        return lambda: comm.allreduce(buf)
    if op == "bcast":
        buf = torch.zeros(numel, dtype=dtype)
        return lambda: comm.bcast(buf, 0)
    if op == "allgather":
        buf = torch.zeros(numel, dtype=dtype)
        return lambda: comm.allgather(buf)
    # alltoall: numel elements to every rank, equal counts
    buf = torch.zeros(numel * comm.size, dtype=dtype)
    counts = [numel] * comm.size
    return lambda: comm.alltoallv(buf, counts)


def _time_loop(comm: Communicator, call: Callable[[], Any], iterations: int, warmup: int) -> float:
    """Seconds per call on the slowest rank."""
    import torch

    for _ in range(warmup):
        call()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # as timeit does: a collection inside the loop is noise, not the operation
    try:
        comm.barrier()
        start = time.perf_counter()
        for _ in range(iterations):
            call()
        elapsed = time.perf_counter() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    slowest = torch.tensor([elapsed / iterations], dtype=torch.float64)
    comm.allreduce(slowest, "max")
    return float(slowest.item())


def sweep(
    comm: Communicator,
    ops: Sequence[str] = OPS,
    sizes: Iterable[int | str] | None = None,
    iterations: int | None = None,
    warmup: int | None = None,
    dtype: torch.dtype | str | None = None,
    progress: Callable[[BenchRow], Any] | None = None,
) -> list[BenchRow]:
    """Measure the latency of each of ``ops`` at each message size; one BenchRow per (op, size),
    ops in the order given, sizes in the order given. Collective over ``comm``.

    ``ops``: names from ``OPS``: ``allreduce`` (SUM, in place), ``bcast`` (from rank 0, in
    place), ``allgather`` (along dim 0, returns a new tensor) and ``alltoall`` (``alltoallv`` with
    equal counts).
    ``sizes``: message sizes in bytes per rank (see ``BenchRow.nbytes``), ints or strings that
    ``parse_size`` reads; default ``DEFAULT_SIZES`` (8 B ... 64 MiB). Each must be a multiple of
    the dtype's item size.
    ``iterations``/``warmup``: timed and untimed calls per point; None adapts them to the size
    (``default_iterations``, ``default_warmup``: many for small messages, few for large ones).
    ``dtype``: element type of the buffers (a torch dtype or its name; default float32).
    ``progress``: called with each BenchRow as soon as it is measured (on every rank).

    Timing: ``warmup`` calls, a barrier, ``iterations`` back-to-back calls timed with
    ``time.perf_counter`` (garbage collection paused), divided by ``iterations``; the largest of
    the ranks' times is reported (allreduce MAX), so all ranks return identical rows. Buffers are
    CPU tensors allocated before timing (allgather and alltoall allocate their results inside the
    call, as users see them). Cross-rank checks (``comm.check``) are left as they are and timed.
    """
    ops, sizes, dtype = _validate(ops, sizes, iterations, warmup, dtype)
    rows: list[BenchRow] = []
    for op in ops:
        for nbytes in sizes:
            n_iter = iterations if iterations is not None else default_iterations(nbytes)
            n_warm = warmup if warmup is not None else default_warmup(nbytes)
            call = _make_call(comm, op, nbytes // dtype.itemsize, dtype)
            seconds = _time_loop(comm, call, n_iter, n_warm)
            del call  # free the buffers before the next (possibly larger) size
            latency_us = seconds * 1e6
            row = BenchRow(
                op=op,
                nbytes=nbytes,
                iterations=n_iter,
                latency_us=latency_us,
                bandwidth_MBps=nbytes / latency_us if latency_us > 0 else math.inf,
            )
            rows.append(row)
            if progress is not None:
                progress(row)
    return rows


# ------------------------------------------------------------------------------------ report
def _fmt_float(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def format_table(rows: Iterable[BenchRow]) -> str:
    """A Markdown table of ``rows``: op, size, bytes, iterations, latency (µs), bandwidth (MB/s),
    one line per row in the given order. Latency and bandwidth are rounded to whole numbers from
    100 up and to three significant digits below."""
    lines = [
        "| op | size | bytes | iterations | latency (µs) | bandwidth (MB/s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.op} | {format_size(r.nbytes)} | {r.nbytes} | {r.iterations} | "
            f"{_fmt_float(r.latency_us)} | {_fmt_float(r.bandwidth_MBps)} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[BenchRow], path: str | os.PathLike, title: str | None = None) -> Path:
    """Write a PNG of latency against message size (log-log, one line per op) to ``path``,
    atomically (a temporary file in the same directory, then ``os.replace``). Returns the path.

    Needs matplotlib (``pip install 'hpc-comm[plot]'``). Call it on one rank only.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("rows: nothing to plot (the list is empty)")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
    except ImportError as exc:
        raise ImportError(
            "hpc_comm.bench.plot needs matplotlib: pip install 'hpc-comm[plot]'"
        ) from exc

    path = Path(path)
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ops = list(dict.fromkeys(r.op for r in rows))
    for op in ops:
        points = sorted((r.nbytes, r.latency_us) for r in rows if r.op == op)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=op)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ticks = sorted({r.nbytes for r in rows})
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: format_size(round(x))))
    ax.tick_params(axis="x", labelrotation=45)
    ax.set_xlabel("message size per rank")
    ax.set_ylabel("latency (µs)")
    ax.set_title(title or "hpc-comm collective latency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()

    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; a plot is for reading
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png", dpi=120)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
