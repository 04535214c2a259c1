"""hpc-comm on torch tensors against raw mpi4py on NumPy buffers, measured in the same run.

    mpiexec -n 2 python packages/hpc-comm/benchmarks/compare_mpi4py.py
    mpiexec -n 2 python packages/hpc-comm/benchmarks/compare_mpi4py.py --quick
    mpiexec -n 2 python packages/hpc-comm/benchmarks/compare_mpi4py.py \\
        --output docs/benchmarks/hpc-comm.md --note "idle machine"

For allreduce (SUM, in place), bcast (from rank 0, in place) and allgather, at message sizes from
8 B to 64 MiB per rank, it times

* the anchor: mpi4py's buffer methods on NumPy arrays on ``MPI.COMM_WORLD``
  (``Allreduce(MPI.IN_PLACE, a)``, ``Bcast(a, 0)``, ``Allgather(a, out)`` into a preallocated
  ``out``), where ``a`` and ``out`` are NumPy views (``x.numpy()``) of the very memory hpc-comm
  is handed, and
* hpc-comm: ``comm.allreduce(x)``, ``comm.bcast(x, 0)``, ``comm.allgather(x, out=...)`` on the
  world communicator ``hpc_comm.world()``, where ``x`` is allocated by torch (``torch.zeros``)
  as in user code;
* optionally (``--own-memory``, on by default) mpi4py again on NumPy arrays of its own
  (``np.empty``, then written): two equal calls on two buffers differ at large sizes by where
  the kernel put the pages (measured here: up to 50 % at 16 MiB between two NumPy arrays), so
  the goal compares the libraries on the same memory and this column shows the placement effect.

The variants are interleaved: each round times one block of back-to-back calls of every variant,
the order cycling through every permutation so that no variant always runs first or last, and
load from other processes hits all of them alike; a block is warm-up calls, a barrier, then
``iterations`` timed calls, and its time per call is the slowest rank's. The times in the table
are the median (or ``--stat min``) over rounds of each variant. The ratio hpc-comm/mpi4py is
paired: the median over rounds of the two blocks' ratio within a round, with its interquartile
range (the noise), and the added microseconds likewise; the ratio of the two columns' statistics
is shown beside it. Pairing matters on a shared machine: load drifts over seconds, and the
quietest block of one variant need not fall in the same moment as the other's.

Goals (checked per row): from 1 MiB up hpc-comm is within 5 % of mpi4py (ratio <= 1.05); at 8 B it
adds less than 10 µs. Rank 0 prints the table; ``--output`` writes it as Markdown (atomically)
with the date, the MPI library, the versions, the machine and the command.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import itertools
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time

KiB, MiB = 1024, 1024 * 1024
OPS = ("allreduce", "bcast", "allgather")
SIZES = (8, 64, 512, 4 * KiB, 32 * KiB, 256 * KiB, MiB, 2 * MiB, 16 * MiB, 64 * MiB)
QUICK_SIZES = (8, 4 * KiB, MiB, 16 * MiB)
BIG = MiB  # from here on the bandwidth goal applies
BIG_RATIO = 1.05
SMALL = 8  # at this size the latency goal applies
SMALL_ADDED_US = 10.0

VARIANTS = ("mpi4py", "hpc-comm", "mpi4py/own")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="compare_mpi4py.py",
        description=(
            "Latency of hpc-comm collectives on torch tensors against raw mpi4py buffer calls "
            "on NumPy arrays, interleaved in one run. Start it under an MPI launcher, e.g. "
            "'mpiexec -n 2 python compare_mpi4py.py'."
        ),
        epilog=(
            "Goals: ratio hpc-comm/mpi4py <= 1.05 from 1 MiB up, added latency < 10 us at 8 B. "
            "Each row prints PASS or MISS; the exit code is 0 unless --strict is given and a "
            "goal is missed (then 1)."
        ),
    )
    parser.add_argument(
        "--ops",
        default=",".join(OPS),
        help="comma-separated operations among %(default)s (default: all)",
    )
    parser.add_argument(
        "--sizes",
        default=None,
        help="comma-separated sizes in bytes per rank, e.g. 8,4KiB,1MiB "
        "(default: 8 B to 64 MiB, powers of 8 plus 1 MiB and 64 MiB)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="interleaved rounds per point (default 11, 5 with --quick)",
    )
    parser.add_argument(
        "--stat",
        choices=("median", "min"),
        default="median",
        help="statistic over rounds (default: %(default)s)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short run: 4 sizes, 5 rounds, a quarter of the calls per block, no sweep",
    )
    parser.add_argument(
        "--own-memory",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time mpi4py on NumPy arrays of its own (the effect of buffer placement)",
    )
    parser.add_argument(
        "--sweep",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also run hpc_comm.bench.sweep (latency and bandwidth of allreduce, bcast, "
        "allgather, alltoall) and add its table (default: on, off with --quick)",
    )
    parser.add_argument(
        "--output", default=None, help="write the results as Markdown to this file (rank 0)"
    )
    parser.add_argument(
        "--note", default=None, help="a line added to the Markdown, e.g. 'shared machine'"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if a goal is missed")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)

    from hpc_comm import bench

    args.ops = [s.strip() for s in args.ops.split(",") if s.strip()]
    bad = [op for op in args.ops if op not in OPS]
    if bad or not args.ops:
        parser.error(f"--ops: choose from {', '.join(OPS)}, got {args.ops or '[]'}")
    try:
        if args.sizes is not None:
            args.sizes = bench.parse_sizes(args.sizes, "--sizes")
        else:
            args.sizes = list(QUICK_SIZES if args.quick else SIZES)
    except ValueError as exc:
        parser.error(str(exc))
    bad = [n for n in args.sizes if n % 4]
    if bad:
        parser.error(f"--sizes: sizes must be multiples of 4 bytes (float32), got {bad}")
    if args.rounds is None:
        args.rounds = 5 if args.quick else 11
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    if args.sweep is None:
        args.sweep = not args.quick
    return args


def block_iterations(nbytes: int, quick: bool) -> tuple[int, int]:
    """(timed calls, warm-up calls) of one block: about 64 MiB of messages, 5 to 1000 calls."""
    n = max(5, min(1000, 64 * MiB // nbytes))
    if quick:
        n = max(2, n // 4)
    return n, max(1, n // 10)


class Timer:
    """Times blocks of calls; a block's time per call is the slowest rank's."""

    def __init__(self, world):
        self.world = world

    def block(self, call, iterations: int, warmup: int, barrier) -> float:
        from mpi4py import MPI

        for _ in range(warmup):
            call()
        gc.disable()
        try:
            barrier()
            start = time.perf_counter()
            for _ in range(iterations):
                call()
            elapsed = time.perf_counter() - start
        finally:
            gc.enable()
        return self.world.allreduce(elapsed / iterations, op=MPI.MAX) * 1e6


def make_calls(op: str, nbytes: int, comm, world, own_memory: bool) -> dict:
    """The variants of ``op`` at ``nbytes``, each a zero-argument callable, buffers preallocated:
    mpi4py and hpc-comm share one torch-allocated buffer (mpi4py through a NumPy view of it),
    ``mpi4py/own`` has NumPy arrays of its own."""
    import numpy as np
    import torch
    from mpi4py import MPI

    def written(count):
        # np.empty maps no memory until it is first written (and np.zeros maps the kernel's zero
        # page, which a bcast root would only read): write every page, as torch.zeros does.
        arr = np.empty(count, dtype=np.float32)
        arr.fill(0.0)
        return arr

    n = nbytes // 4
    x = torch.zeros(n, dtype=torch.float32)
    a = x.numpy()
    own = written(n)
    calls = {}
    if op == "allreduce":
        calls["mpi4py"] = lambda: world.Allreduce(MPI.IN_PLACE, a, MPI.SUM)
        calls["hpc-comm"] = lambda: comm.allreduce(x)
        calls["mpi4py/own"] = lambda: world.Allreduce(MPI.IN_PLACE, own, MPI.SUM)
    elif op == "bcast":
        calls["mpi4py"] = lambda: world.Bcast(a, 0)
        calls["hpc-comm"] = lambda: comm.bcast(x, 0)
        calls["mpi4py/own"] = lambda: world.Bcast(own, 0)
    else:
        gathered = torch.zeros(n * world.Get_size(), dtype=torch.float32)
        out = gathered.numpy()
        own_out = written(n * world.Get_size())
        calls["mpi4py"] = lambda: world.Allgather(a, out)
        calls["hpc-comm"] = lambda: comm.allgather(x, out=gathered)
        calls["mpi4py/own"] = lambda: world.Allgather(own, own_out)
    if not own_memory:
        del calls["mpi4py/own"]
    return calls


def quartiles(values):
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def measure(args, comm, world, log) -> list[dict]:
    timer = Timer(world)
    stat = statistics.median if args.stat == "median" else min
    barriers = {"mpi4py": world.Barrier, "hpc-comm": comm.barrier, "mpi4py/own": world.Barrier}
    results = []
    for op in args.ops:
        for nbytes in args.sizes:
            calls = make_calls(op, nbytes, comm, world, args.own_memory)
            iterations, warmup = block_iterations(nbytes, args.quick)
            times = {name: [] for name in calls}
            orders = list(itertools.permutations(calls))
            for r in range(args.rounds):
                for name in orders[r % len(orders)]:
                    times[name].append(timer.block(calls[name], iterations, warmup, barriers[name]))
            del calls
            row = {"op": op, "nbytes": nbytes, "iterations": iterations, "rounds": args.rounds}
            for name, ts in times.items():
                row[name] = stat(ts)
            pairs = list(zip(times["hpc-comm"], times["mpi4py"]))
            ratios = [h / m for h, m in pairs]
            row["ratio"] = statistics.median(ratios)
            row["added"] = statistics.median([h - m for h, m in pairs])
            row["stat_ratio"] = row["hpc-comm"] / row["mpi4py"]
            row["ratio_q1"], row["ratio_q3"] = quartiles(ratios)
            if "mpi4py/own" in times:
                row["placement"] = row["mpi4py/own"] / row["mpi4py"]
            row["goal"], row["result"] = check_goal(row)
            results.append(row)
            log(format_row(row))
    return results


def check_goal(row) -> tuple[str, str]:
    if row["nbytes"] >= BIG:
        return f"ratio <= {BIG_RATIO}", "PASS" if row["ratio"] <= BIG_RATIO else "MISS"
    if row["nbytes"] == SMALL:
        return f"added < {SMALL_ADDED_US:g} µs", (
            "PASS" if row["added"] < SMALL_ADDED_US else "MISS"
        )
    return "", ""


def fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def headers(own_memory: bool) -> list[str]:
    cols = ["op", "size", "mpi4py µs", "hpc-comm µs", "ratio", "ratio IQR", "added µs"]
    cols += ["ratio of the two"]
    if own_memory:
        cols += ["mpi4py/own µs", "own/shared"]
    return [*cols, "goal", "result"]


def cells(row, own_memory: bool) -> list[str]:
    from hpc_comm.bench import format_size

    out = [
        row["op"],
        format_size(row["nbytes"]),
        fmt(row["mpi4py"]),
        fmt(row["hpc-comm"]),
        f"{row['ratio']:.3f}",
        f"{row['ratio_q1']:.2f}-{row['ratio_q3']:.2f}",
        f"{row['added']:+.1f}",
        f"{row['stat_ratio']:.3f}",
    ]
    if own_memory:
        out += [fmt(row["mpi4py/own"]), f"{row['placement']:.3f}"]
    return [*out, row["goal"] or "—", row["result"] or "—"]


def format_row(row) -> str:
    c = cells(row, "mpi4py/own" in row)
    return "  ".join(c)


def text_table(rows, own_memory: bool) -> str:
    table = [headers(own_memory), *[cells(r, own_memory) for r in rows]]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = [
        "  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths)))
        for line in table
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def markdown_table(rows, own_memory: bool) -> str:
    head = headers(own_memory)
    align = ["---" if h in ("op", "goal", "result") else "---:" for h in head]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(cells(r, own_memory)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def environment(args, comm, world, load_start) -> dict:
    import mpi4py
    import numpy as np
    import torch
    from mpi4py import MPI

    import hpc_comm as hc

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as fh:
            thp = fh.read().strip()
    except OSError:
        thp = "unknown"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    choice = hc.threads()
    script = os.path.relpath(sys.argv[0]) if sys.argv and sys.argv[0] else "compare_mpi4py.py"
    command = f"mpiexec -n {world.Get_size()} python {script}"
    if sys.argv[1:]:
        command += " " + shlex.join(sys.argv[1:])
    load_end = os.getloadavg()
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "ranks": str(world.Get_size()),
        "machine": f"{cpu}, {cores} cores available ({os.cpu_count()} online), {mem:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}",
        "load average (1 min) at start / end": f"{load_start[0]:.2f} / {load_end[0]:.2f}",
        "MPI library": " ".join(MPI.Get_library_version().strip().splitlines()[0].split()),
        "mpi4py": mpi4py.__version__,
        "numpy": np.__version__,
        "torch": torch.__version__,
        "hpc-comm": f"{hc.__version__} (backend {comm.backend}, check "
        f"{'on' if comm.check else 'off'})",
        "threads per rank": f"{torch.get_num_threads()} ({choice.source if choice else 'n/a'})",
        "Python": platform.python_version(),
        "transparent hugepages": thp,
        "THP_MEM_ALLOC_ENABLE": os.environ.get("THP_MEM_ALLOC_ENABLE", "unset"),
        "statistic": f"{args.stat} over {args.rounds} interleaved rounds",
    }


def markdown(args, env, rows, sweep_rows) -> str:
    from hpc_comm import bench

    missed = [r for r in rows if r["result"] == "MISS"]
    checked = [r for r in rows if r["result"]]
    out = [
        "# hpc-comm benchmarks",
        "",
        "Generated by `packages/hpc-comm/benchmarks/compare_mpi4py.py`; rerun it to refresh this "
        "page. Latencies are microseconds per call on the slowest rank.",
        "",
    ]
    if args.note:
        out += [f"> **Note:** {args.note}", ""]
    out += ["## Setup", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v.replace('|', '/')} |" for k, v in env.items()]
    out += [
        "",
        "## hpc-comm against mpi4py",
        "",
        "hpc-comm: `allreduce`, `bcast`, `allgather` on `hpc_comm.world()` with float32 tensors "
        "from `torch.zeros`. mpi4py: buffer methods on `MPI.COMM_WORLD` (`Allreduce(IN_PLACE)`, "
        "`Bcast`, `Allgather` into a preallocated array) on NumPy views (`x.numpy()`) of the "
        "same memory, so that the two libraries move the same pages. `mpi4py/own` is mpi4py on "
        "NumPy arrays of its own: at large sizes two equal calls on two buffers differ by where "
        "the kernel placed the pages, and `own/shared` (mpi4py/own over mpi4py) shows how much "
        "that alone moves a row. `ratio` is hpc-comm/mpi4py paired by round: each round times "
        "one block of every variant back to back (the order cycling through all permutations), "
        "and `ratio` is the median over rounds of the two blocks' ratio, `ratio IQR` its "
        "interquartile range (how noisy the machine was), `added` the median of the "
        "differences; `ratio of the two` divides the two time columns instead (each a statistic "
        "of its own rounds, so the quietest moments of the two need not coincide). The goals are "
        "checked on the paired values. Sizes are bytes per rank; both `allgather`s fill a preallocated result "
        "(hpc-comm's `out=`). hpc-comm is imported before torch, so torch puts large "
        "tensors on transparent huge pages as NumPy does (`THP_MEM_ALLOC_ENABLE`, see the "
        "setup table). All buffers are written before timing "
        "(an untouched `np.zeros` array reads as the kernel's zero page, which flatters a "
        "bcast root). A block is at least 5 calls and about 64 MiB of messages.",
        "",
        f"Goals: from {bench.format_size(BIG)} up ratio <= {BIG_RATIO}; at {SMALL} B added "
        f"latency < {SMALL_ADDED_US:g} µs. Result: {len(checked) - len(missed)} of "
        f"{len(checked)} checked rows PASS"
        + (
            f", MISS: {', '.join(r['op'] + ' ' + bench.format_size(r['nbytes']) for r in missed)}."
            if missed
            else "."
        ),
        "",
        markdown_table(rows, args.own_memory),
    ]
    if sweep_rows:
        out += [
            "## hpc-comm latency and bandwidth",
            "",
            "`hpc_comm.bench.sweep` (the `hpc-comm` CLI's benchmark): back-to-back calls after "
            "warm-up and a barrier, mean per call on the slowest rank, one block per point (not "
            "interleaved). Bandwidth is bytes per rank / latency in MB/s (10^6 B/s); `alltoall` "
            "sends that many bytes to each rank.",
            "",
            bench.format_table(sweep_rows),
        ]
    return "\n".join(out)


def write_atomically(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def main(argv=None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()
    from mpi4py import MPI

    import hpc_comm as hc
    from hpc_comm import bench

    comm = hc.world()  # before any timing: sets one share of the cores (threads) per rank
    world = MPI.COMM_WORLD
    rank0 = world.Get_rank() == 0

    def log(line: str) -> None:
        if rank0 and not args.quiet:
            print(line, file=sys.stderr, flush=True)

    if comm.backend != "mpi":
        if rank0:
            print(
                f"hpc-comm chose the {comm.backend!r} backend; start this script under mpiexec "
                "(or set HPC_COMM_BACKEND=mpi)",
                file=sys.stderr,
            )
        return 2
    if comm.check:
        log("warning: HPC_COMM_CHECK is on; every hpc-comm call adds a header exchange")
    log(
        f"{world.Get_size()} ranks, {args.rounds} rounds, {args.stat}; "
        + "  ".join(headers(args.own_memory))
    )
    rows = measure(args, comm, world, log)
    sweep_rows = []
    if args.sweep:
        log("sweep: hpc_comm.bench.sweep ...")
        sweep_rows = bench.sweep(comm)
    env = environment(args, comm, world, load_start)
    if rank0:
        if args.output:  # first, so a closed stdout (| head) cannot lose the measurement
            write_atomically(args.output, markdown(args, env, rows, sweep_rows))
        print(text_table(rows, args.own_memory))
        if sweep_rows:
            print()
            print(bench.format_table(sweep_rows))
        missed = sum(r["result"] == "MISS" for r in rows)
        print(f"goals: {sum(bool(r['result']) for r in rows) - missed} PASS, {missed} MISS")
        if args.output:
            print(f"wrote {args.output}")
    missed = any(r["result"] == "MISS" for r in rows)
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
