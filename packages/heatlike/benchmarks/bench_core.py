"""Core operations of heatlike and Heat, same sizes, same run: element-wise, reductions, resplit,
slicing, sort, HDF5 load; prints a Markdown table (time per call, slowest rank) with the ratio.

    mpiexec -n 2 python packages/heatlike/benchmarks/bench_core.py --rows 200000 --cols 64

Heat (PyPI ``heat``) is imported if it is installed in this environment (install it in a
separate venv: it pins its own torch); without it only heatlike's column is filled. Tiny smoke
run: ``--rows 1000 --cols 8 --repeats 2``.
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
        "sort 1-d (split 0)": lambda: ht.sort(x[:, 0]),
        "HDF5 load (split 0)": lambda: ht.load_hdf5(path, "data", split=0),
    }


def _time(fn, comm_barrier, repeats: int, allreduce_max) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        comm_barrier()
        start = time.perf_counter()
        fn()
        comm_barrier()
        times.append(time.perf_counter() - start)
    return allreduce_max(statistics.median(times))


def _run(name, ht, data, path, repeats):
    comm = ht.MPI_WORLD
    x = ht.array(data, split=0)
    y = ht.array(data, split=1)
    results = {}
    for op, fn in _ops(ht, x, y, path).items():
        results[op] = _time(fn, comm.Barrier, repeats, lambda v: comm.allreduce(v, ht.MPI.MAX))
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

    columns = {"heatlike": _run("heatlike", heatlike, data, path, args.repeats)}
    try:
        import heat
    except ImportError:
        heat = None
    if heat is not None:
        columns["heat"] = _run("heat", heat, data, path, args.repeats)

    if comm.rank == 0:
        print(
            f"ranks={comm.size} rows={args.rows} cols={args.cols} float32 "
            f"repeats={args.repeats} (median per call, slowest rank)"
        )
        head = "| operation | heatlike (ms) |" + (
            " heat (ms) | heatlike / heat |" if heat is not None else ""
        )
        print(head)
        print("|" + "---|" * (head.count("|") - 1))
        for op, t in columns["heatlike"].items():
            row = f"| {op} | {t * 1e3:.3f} |"
            if heat is not None:
                h = columns["heat"][op]
                row += f" {h * 1e3:.3f} | {t / h:.2f} |"
            print(row)
        if heat is None:
            print("(heat is not installed here: only heatlike was measured)", file=sys.stderr)
        os.remove(path)
        os.rmdir(tmpdir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
