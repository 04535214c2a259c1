"""Core operations of heatlike and Heat, same sizes, same run: element-wise, reductions, resplit,
slicing, sort, HDF5 load; prints a Markdown table (time per call, slowest rank) with the ratio.

    mpiexec -n 2 python packages/heatlike/benchmarks/bench_core.py --rows 200000 --cols 64

Heat (PyPI ``heat``) is imported if it is installed in this environment (install it in a
separate venv: it pins its own torch); without it only heatlike's column is filled. Tiny smoke
run: ``--rows 1000 --cols 8 --repeats 2``.

The libraries take turns call by call (heatlike, Heat, Heat, heatlike, ...), so both see the same
allocator history: a fresh 25 MB result costs page faults or not depending on what the process
freed just before, which once made one library's ``exp`` look 2.6x slower than the other's.
Both libraries get views of the same NumPy buffer (``copy=False``; Heat's default, while
heatlike copies its block by default as ``numpy.array`` does): NumPy asks for transparent huge
pages and torch's allocator does not, which alone makes a reduction over the data up to ~10%
faster on a machine with THP in ``madvise`` mode, whichever library runs it.
The sort sorts along axis 0 explicitly: Heat 1.8.0 compares the default ``axis=-1`` with the
split axis without normalising it, so ``sort`` of a split 1-d array with the default axis only
sorts each rank's chunk.
The last column pairs the two libraries' calls of one turn (ratio within the turn, median over
turns): on a shared machine load drifts over seconds, and the two medians need not come from
equally quiet moments.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np


def _ops(ht, x, y, path):
    """The operations, as callables; ``x`` split 0, ``y`` split 1, same data."""
    return {
        "elementwise x*2+1 (split 0)": lambda: x * 2 + 1,
        "exp (split 0)": lambda: ht.exp(x),
        "sum axis 0 (split 0)": lambda: ht.sum(x, axis=0),
        "mean+var axis 0": lambda: (ht.mean(x, axis=0), ht.var(x, axis=0)),
        "max all": lambda: ht.max(x),
        "resplit 0 -> 1": lambda: ht.resplit(x, 1),
        "resplit 1 -> 0": lambda: ht.resplit(y, 0),
        "slice x[1::2] (split 0)": lambda: x[1::2],
        "slice x[:, 3:] (split 0)": lambda: x[:, 3:],
        "sort 1-d, axis 0 (split 0)": lambda: ht.sort(x[:, 0], axis=0),
        "HDF5 load (split 0)": lambda: ht.load_hdf5(path, "data", split=0),
    }


def _time_pair(fns, barrier, repeats: int, allreduce_max) -> list[tuple[float, float]]:
    """(median, min) seconds per call of each callable in ``fns`` (slowest rank), timed in turns
    that alternate which library goes first; with two callables the first tuple also holds the
    median over turns of the ratio first/second within a turn (largest over ranks)."""
    for fn in fns:
        fn()  # warm-up
    times = [[] for _ in fns]
    for r in range(repeats):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for k in order:
            barrier()
            start = time.perf_counter()
            fns[k]()
            barrier()
            times[k].append(time.perf_counter() - start)
    stats = [(allreduce_max(statistics.median(t)), allreduce_max(min(t))) for t in times]
    if len(fns) == 2:  # the two calls of one turn ran back to back: their ratio, paired
        paired = statistics.median([a / b for a, b in zip(*times)])
        stats[0] += (allreduce_max(paired),)
    return stats


def _run(libs, data, path, repeats):
    """{library name: {operation: (median, min)}} for the libraries in ``libs`` (name -> module)."""
    first = next(iter(libs.values()))
    comm = first.MPI_WORLD
    ops = {
        name: _ops(
            ht, ht.array(data, split=0, copy=False), ht.array(data, split=1, copy=False), path
        )
        for name, ht in libs.items()
    }
    results = {name: {} for name in libs}
    for op in ops[next(iter(libs))]:
        fns = [ops[name][op] for name in libs]
        timed = _time_pair(fns, comm.Barrier, repeats, lambda v: comm.allreduce(v, first.MPI.MAX))
        for name, t in zip(libs, timed):
            results[name][op] = t
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the test matrix")
    parser.add_argument("--cols", type=int, default=64, help="columns of the test matrix")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per operation")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.rows < 1 or args.cols < 4 or args.repeats < 1:
        parser.error("need --rows >= 1, --cols >= 4, --repeats >= 1")

    import heatlike

    comm = heatlike.MPI_WORLD
    data = np.random.default_rng(args.seed).random((args.rows, args.cols), dtype=np.float32)
    tmpdir = tempfile.mkdtemp(prefix="heatlike-bench-") if comm.rank == 0 else None
    tmpdir = comm.bcast(tmpdir, 0)
    path = os.path.join(tmpdir, "data.h5")
    heatlike.save_hdf5(heatlike.array(data, split=0), path, "data")

    libs = {"heatlike": heatlike}
    try:
        import heat

        libs["heat"] = heat
    except ImportError:
        heat = None
    columns = _run(libs, data, path, args.repeats)

    if comm.rank == 0:
        print(
            f"ranks={comm.size} rows={args.rows} cols={args.cols} float32 "
            f"repeats={args.repeats} (ms per call, slowest rank; libraries timed in turns)"
        )
        head = "| operation | heatlike median (ms) |"
        if heat is not None:
            head += (
                " heat median (ms) | heatlike / heat (median) | heatlike / heat (min) |"
                " heatlike / heat (paired median) |"
            )
        print(head)
        print("|" + "---|" * (head.count("|") - 1))
        for op, (t, t_min, *paired) in columns["heatlike"].items():
            row = f"| {op} | {t * 1e3:.3f} |"
            if heat is not None:
                h, h_min = columns["heat"][op]
                row += f" {h * 1e3:.3f} | {t / h:.2f} | {t_min / h_min:.2f} | {paired[0]:.2f} |"
            print(row)
        if heat is None:
            print("(heat is not installed here: only heatlike was measured)", file=sys.stderr)
        os.remove(path)
        os.rmdir(tmpdir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
