"""heatlike's algorithms against Heat, dask.array and NumPy / scikit-learn on the same data.

Rows (issue sizes; ``--scale`` multiplies the row counts):

- matmul 4096 x 4096 @ 4096 x 4096, both operands split along rows;
- TSQR of 1,000,000 x 64 (split 0), Q and R;
- cdist of 20,000 x 18 against itself, euclidean by the quadratic expansion, in row blocks of
  5,000 (the 20,000 x 20,000 result is never held at once);
- KMeans on 1,000,000 x 16, k = 8, 30 Lloyd iterations from the same initial centres;
- PCA of 100,000 x 256 to 10 components (full SVD);
- Lasso on 100,000 x 100, 20 coordinate-descent sweeps (fixed, no tolerance stop).

Three steps, each appending JSON lines to one results file, then one table::

    mpiexec -n 1 python bench_algorithms.py --mpi --out R.jsonl   # heatlike and Heat, 1 rank
    mpiexec -n 2 python bench_algorithms.py --mpi --out R.jsonl   # the same at 2 ranks
    python bench_algorithms.py --baselines --out R.jsonl          # NumPy/scikit-learn, dask.array
    python bench_algorithms.py --table R.jsonl                     # Markdown table on stdout

Heat (PyPI ``heat``) is measured when it imports in the same environment; it pins its own torch,
so use a separate venv (see docs/benchmarks/heatlike.md). Every process runs one torch / BLAS
thread, so 2 ranks use 2 cores and 1 rank one: the scaling column is honest.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

OPS = ("matmul", "tsqr", "cdist", "kmeans", "pca", "lasso")
TITLES = {
    "matmul": "matmul 4096² (split 0 @ split 0)",
    "tsqr": "TSQR 10⁶×64 (split 0)",
    "cdist": "cdist 20000×20000, 18 features, row blocks of 5000",
    "kmeans": "KMeans 10⁶×16, k=8, 30 iterations",
    "pca": "PCA 10⁵×256 → 10 components",
    "lasso": "Lasso 10⁵×100, 20 sweeps",
}
KMEANS_ITERS, LASSO_SWEEPS, CDIST_BLOCK = 30, 20, 5000


def shapes(scale: float) -> dict:
    def rows(n):
        return max(16, int(n * scale))

    return {
        "matmul": (max(64, int(4096 * min(1.0, scale**0.5))),) * 2,
        "tsqr": (rows(1_000_000), 64),
        "cdist": (rows(20_000), 18),
        "kmeans": (rows(1_000_000), 16),
        "pca": (rows(100_000), 256),
        "lasso": (rows(100_000), 100),
    }


def data(op: str, shape) -> dict:
    """The same arrays for every library (float32, seeded)."""
    rng = np.random.default_rng(OPS.index(op))
    x = rng.standard_normal(shape, dtype=np.float32)
    out = {"x": x}
    if op == "matmul":
        out["y"] = rng.standard_normal(shape, dtype=np.float32)
    if op == "kmeans":
        out["x"] = rng.random(shape, dtype=np.float32)  # no clusters: Lloyd keeps moving
        out["centres"] = out["x"][:8].copy()
    if op == "lasso":
        w = np.zeros(shape[1], dtype=np.float32)
        w[:10] = rng.standard_normal(10)
        out["y"] = (x @ w + 0.1 * rng.standard_normal(shape[0])).astype(np.float32)
    return out


# ----------------------------------------------------------------------- MPI libraries
def mpi_calls(ht, op: str, d: dict):
    """One callable per library call, on arrays built once (not timed)."""
    if op == "matmul":
        a, b = ht.array(d["x"], split=0), ht.array(d["y"], split=0)
        return lambda: ht.matmul(a, b)
    if op == "tsqr":
        a = ht.array(d["x"], split=0)
        return lambda: ht.linalg.qr(a)
    if op == "cdist":
        x = ht.array(d["x"], split=0)
        # the row blocks as balanced arrays of their own, built before timing
        rows = [
            ht.array(d["x"][s : s + CDIST_BLOCK], split=0)
            for s in range(0, d["x"].shape[0], CDIST_BLOCK)
        ]

        def blocks():
            for xb in rows:
                ht.spatial.cdist(xb, x, quadratic_expansion=True)

        return blocks
    if op == "kmeans":
        x = ht.array(d["x"], split=0)
        centres = ht.array(d["centres"])  # replicated
        return lambda: ht.cluster.KMeans(
            n_clusters=8, init=centres, max_iter=KMEANS_ITERS, tol=0.0
        ).fit(x)
    if op == "pca":
        x = ht.array(d["x"], split=0)
        return lambda: ht.decomposition.PCA(n_components=10, svd_solver="full").fit(x)
    if op == "lasso":
        x, y = ht.array(d["x"], split=0), ht.array(d["y"], split=0)
        return lambda: ht.regression.Lasso(lam=0.1, max_iter=LASSO_SWEEPS, tol=0.0).fit(x, y)
    raise ValueError(op)


def time_calls(call, repeats: int, barrier, reduce_max) -> float:
    call()  # warm-up (allocations, one-time set-up)
    times = []
    for _ in range(repeats):
        barrier()
        start = time.perf_counter()
        call()
        barrier()
        times.append(time.perf_counter() - start)
    return reduce_max(min(times))


def run_mpi(args) -> list[dict]:
    import heatlike

    libraries = {"heatlike": heatlike}
    try:
        import heat

        libraries["heat"] = heat
    except ImportError:
        pass
    comm = heatlike.MPI_WORLD
    rows = []
    for op in args.ops:
        shape = shapes(args.scale)[op]
        d = data(op, shape)
        for name, ht in libraries.items():
            world = ht.MPI_WORLD
            try:
                call = mpi_calls(ht, op, d)
                seconds = time_calls(
                    call,
                    args.repeats,
                    world.Barrier,
                    lambda v, w=world, m=ht.MPI.MAX: w.allreduce(v, m),
                )
                error = None
            except Exception as exc:  # a library without the operation: recorded, not fatal
                seconds, error = None, f"{type(exc).__name__}: {exc}"[:200]
            row = {"op": op, "library": name, "procs": comm.size, "shape": shape}
            row.update(seconds=seconds, error=error)
            rows.append(row)
            if comm.rank == 0:
                print(json.dumps(row), flush=True)
    return rows if comm.rank == 0 else []


# -------------------------------------------------------------------- one-process baselines
def numpy_call(op: str, d: dict):
    from scipy.spatial.distance import cdist
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.linear_model import Lasso

    x = d["x"]
    if op == "matmul":
        return lambda: x @ d["y"]
    if op == "tsqr":
        return lambda: np.linalg.qr(x, mode="reduced")
    if op == "cdist":
        return lambda: [cdist(x[s : s + CDIST_BLOCK], x) for s in range(0, x.shape[0], CDIST_BLOCK)]
    if op == "kmeans":
        return lambda: KMeans(
            8, init=d["centres"], n_init=1, max_iter=KMEANS_ITERS, tol=0.0, algorithm="lloyd"
        ).fit(x)
    if op == "pca":
        return lambda: PCA(n_components=10, svd_solver="full").fit(x)
    if op == "lasso":
        return lambda: Lasso(alpha=0.1, max_iter=LASSO_SWEEPS, tol=0.0).fit(x, d["y"])
    raise ValueError(op)


def dask_call(op: str, d: dict, workers: int):
    import dask
    import dask.array as da

    x = d["x"]
    rows_per_chunk = max(1, -(-x.shape[0] // (4 * workers)))
    X = da.from_array(x, chunks=(rows_per_chunk, x.shape[1]))

    def run(graph):
        return lambda: dask.compute(*graph(), scheduler="threads", num_workers=workers)

    if op == "matmul":
        n = x.shape[0]
        A = da.from_array(x, chunks=(n // 4, n // 4))
        B = da.from_array(d["y"], chunks=(n // 4, n // 4))
        return run(lambda: (A @ B,))
    if op == "tsqr":
        return run(lambda: da.linalg.tsqr(X))
    if op == "cdist":
        Y = da.from_array(x, chunks=(CDIST_BLOCK, x.shape[1]))

        def blocks():
            out = []
            for s in range(0, x.shape[0], CDIST_BLOCK):
                xb = X[s : s + CDIST_BLOCK]
                sq = (xb**2).sum(1)[:, None] + (Y**2).sum(1)[None, :] - 2 * xb @ Y.T
                out.append(da.sqrt(da.maximum(sq, 0)))
            return out

        return run(blocks)
    if op == "kmeans":

        def lloyd():
            centres = d["centres"]
            for _ in range(KMEANS_ITERS):
                dist = ((X[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
                labels = dist.argmin(1)
                onehot = labels[:, None] == np.arange(8)[None, :]
                sums = (onehot[:, :, None] * X[:, None, :]).sum(0)
                counts = onehot.sum(0)
                sums, counts = dask.compute(sums, counts, scheduler="threads", num_workers=workers)
                centres = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
            return centres

        return lloyd
    if op == "pca":

        def pca():
            centred = X - X.mean(0)
            _, s, v = da.linalg.svd(centred)
            return (s[:10], v[:10])

        return run(pca)
    return None  # dask.array has no Lasso


def run_baselines(args) -> list[dict]:
    import torch

    torch.set_num_threads(1)
    rows = []
    for op in args.ops:
        shape = shapes(args.scale)[op]
        d = data(op, shape)
        variants = [("numpy/sklearn", 1, lambda op=op, d=d: numpy_call(op, d))]
        variants += [(f"dask ({w} thread{'s' * (w > 1)})", w, None) for w in (1, 2)]
        for name, procs, make in variants:
            try:
                call = make() if make is not None else dask_call(op, d, procs)
                if call is None:
                    seconds, error = None, "not available"
                else:
                    seconds, error = time_calls(call, args.repeats, lambda: None, float), None
            except Exception as exc:
                seconds, error = None, f"{type(exc).__name__}: {exc}"[:200]
            row = {"op": op, "library": name, "procs": procs, "shape": shape}
            row.update(seconds=seconds, error=error)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


# ------------------------------------------------------------------------------ table
def table(path: str) -> str:
    rows = [json.loads(line) for line in open(path) if line.strip()]
    latest = {}
    for r in rows:  # later runs replace earlier ones
        latest[(r["op"], r["library"], r["procs"])] = r

    def t(op, lib, procs):
        r = latest.get((op, lib, procs))
        return None if r is None else r["seconds"]

    def fmt(v):
        return "—" if v is None else (f"{v:.3g}" if v < 100 else f"{v:.0f}")

    head = (
        "| operation | NumPy / sklearn | dask 1 thr | dask 2 thr | Heat 1 rank | heatlike 1 rank "
        "| Heat 2 ranks | heatlike 2 ranks | heatlike / Heat (2 ranks) | heatlike / dask (2) "
        "| heatlike scaling 1→2 |"
    )
    lines = [head, "|---" + "|---:" * 10 + "|"]
    for op in OPS:
        if not any(k[0] == op for k in latest):
            continue
        h1, h2 = t(op, "heatlike", 1), t(op, "heatlike", 2)
        heat2, dask2 = t(op, "heat", 2), t(op, "dask (2 threads)", 2)
        ratio = None if None in (h2, heat2) else h2 / heat2
        vs_dask = None if None in (h2, dask2) else h2 / dask2
        scaling = None if None in (h1, h2) else h1 / (2 * h2)
        cells = [
            t(op, "numpy/sklearn", 1),
            t(op, "dask (1 thread)", 1),
            dask2,
            t(op, "heat", 1),
            h1,
            heat2,
            h2,
        ]
        lines.append(
            f"| {TITLES[op]} | "
            + " | ".join(fmt(c) for c in cells)
            + f" | {'—' if ratio is None else f'{ratio:.2f}'}"
            + f" | {'—' if vs_dask is None else f'{vs_dask:.2f}'}"
            + f" | {'—' if scaling is None else f'{scaling:.0%}'} |"
        )
    errors = sorted({(r["op"], r["library"], r["error"]) for r in latest.values() if r["error"]})
    if errors:
        lines.append("")
        lines += [f"- {op}, {lib}: {err}" for op, lib, err in errors]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--mpi", action="store_true", help="heatlike and Heat on this MPI job")
    mode.add_argument("--baselines", action="store_true", help="NumPy/sklearn and dask.array")
    mode.add_argument("--table", metavar="RESULTS", help="print the Markdown table of RESULTS")
    parser.add_argument("--out", default="heatlike-algorithms.jsonl", help="results file")
    parser.add_argument("--ops", nargs="+", choices=OPS, default=list(OPS))
    parser.add_argument("--scale", type=float, default=1.0, help="row counts x SCALE (smoke)")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls (min is kept)")
    args = parser.parse_args(argv)
    if args.table:
        print(table(args.table))
        return 0
    if args.scale <= 0 or args.repeats < 1:
        parser.error("--scale must be > 0 and --repeats >= 1")
    rows = run_mpi(args) if args.mpi else run_baselines(args)
    if rows:
        with open(args.out, "a") as f:
            for r in rows:
                r.update(machine=platform.node(), python=sys.version.split()[0])
                r["time"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
                f.write(json.dumps(r) + "\n")
        done = [r["seconds"] for r in rows if r["seconds"]]
        if done:
            print(f"{len(rows)} rows, median {statistics.median(done):.3g} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
