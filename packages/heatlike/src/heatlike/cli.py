"""Command line of heatlike: the `heatlike` entry point and `python -m heatlike`."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Sequence

import torch

import hpc_comm as hc
from heatlike import __version__
from hpc_comm.cli_support import make_parser, nonnegative_int, positive_int, run, say

DESCRIPTION = """\
heatlike provides distributed N-d arrays with a NumPy-like, Heat-compatible API (import
heatlike as ht): one torch tensor per MPI rank, split along one axis, plus estimators on top
(k-means, scalers, classifiers, distances). This command runs the common jobs from a shell;
under mpiexec every rank reads and computes its share, and rank 0 prints.

examples:
  heatlike info                                        what this job sees
  mpiexec -n 2 heatlike kmeans data.h5 --dataset X -k 8 --seed 0
                                                       cluster the rows of X, write labels
  mpiexec -n 2 heatlike bench --rows 200000 --features 16 --cdist-rows 4000
"""

KMEANS_HELP = """\
Cluster the rows of a 2-d HDF5 dataset with k-means. Every rank reads only its own block of
rows; the centres and the inertia are printed on rank 0, and the labels (int64, one per row)
are written to --labels-dataset of the same file. The file is replaced atomically: the labels
go into a temporary copy next to it, which is renamed over the original once complete, so an
interrupted run leaves the file as it was.
"""

BENCH_HELP = """\
Time heatlike's cdist (quadratic expansion and direct) and k-means on random data of the given
sizes (seeded, the same data at any rank count): the slowest rank's best time of --repeat runs.
For the comparison with Heat, dask and scikit-learn see packages/heatlike/benchmarks/.
"""


# ----------------------------------------------------------------------- info
_ALGORITHM_MODULES = (
    "linalg", "spatial", "cluster", "decomposition", "regression", "classification",
    "naive_bayes", "preprocessing",
)  # fmt: skip


def info_dict(comm) -> dict:
    """What ``heatlike info`` reports (every rank takes part in the collectives)."""
    import heatlike as ht

    try:
        import h5py

        hdf5 = h5py.__version__
    except ImportError:
        hdf5 = "not installed (pip install heatlike[hdf5])"
    counts = comm.allgather_obj(torch.get_num_threads())
    return {
        "heatlike": __version__,
        "hpc-comm": hc.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "backend": comm.backend,
        "ranks": comm.size,
        "torch threads per rank": counts[0] if len(set(counts)) == 1 else counts,
        "default device": str(ht.get_device()),
        "h5py": hdf5,
        "algorithms": ", ".join(m for m in _ALGORITHM_MODULES if hasattr(ht, m)),
    }


def cmd_info(args) -> int:
    facts = info_dict(hc.world())
    if args.json:
        say(json.dumps(facts, indent=2))
    else:
        width = max(len(k) for k in facts)
        say("\n".join(f"{k:<{width}}  {v}" for k, v in facts.items()))
    return 0


# --------------------------------------------------------------------- kmeans
def _dataset_dtype(path: str, dataset: str):
    """The dtype to load ``dataset`` with; ValueError with one clear line if it cannot be."""
    if not os.path.isfile(path):
        raise ValueError(f"file {path!r} does not exist")
    try:
        import h5py
    except ImportError:
        raise ImportError("the kmeans command needs h5py: pip install heatlike[hdf5]") from None
    import heatlike as ht

    try:
        with h5py.File(path, "r") as handle:
            if dataset not in handle or not isinstance(handle[dataset], h5py.Dataset):
                raise ValueError(f"{path!r} has no dataset {dataset!r}")
            data = handle[dataset]
            if data.ndim != 2:
                raise ValueError(
                    f"dataset {dataset!r} must be 2-d (rows, features), got {data.shape}"
                )
            kind = data.dtype.kind
            if kind not in "iuf":
                raise ValueError(f"dataset {dataset!r} must hold numbers, got {data.dtype}")
            return ht.float64 if data.dtype.itemsize == 8 and kind == "f" else ht.float32
    except OSError as exc:
        raise ValueError(f"cannot read {path!r} as HDF5: {exc}") from None


def cmd_kmeans(args) -> int:
    import heatlike as ht

    if args.labels_dataset == args.dataset:
        raise ValueError(
            "--labels-dataset must differ from --dataset (it would overwrite the data)"
        )
    dtype = _dataset_dtype(args.file, args.dataset)
    x = ht.load_hdf5(args.file, args.dataset, dtype=dtype, split=0)
    model = ht.cluster.KMeans(
        n_clusters=args.k,
        init=args.init,
        max_iter=args.max_iter,
        tol=args.tol,
        random_state=args.seed,
        n_init=args.n_init,
    )
    started = time.perf_counter()
    model.fit(x)
    seconds = time.perf_counter() - started
    centres = model.cluster_centers_.numpy()
    if args.labels_dataset:
        ht.save_hdf5(model.labels_, args.file, args.labels_dataset, mode="a")
    result = {
        "rows": x.gshape[0],
        "features": x.gshape[1],
        "k": args.k,
        "inertia": model.inertia_,
        "iterations": model.n_iter_,
        "seconds": seconds,
        "ranks": x.comm.size,
        "labels_dataset": args.labels_dataset or None,
        "centres": centres.tolist(),
    }
    if args.json:
        say(json.dumps(result, indent=2))
        return 0
    say(f"k-means: {x.gshape[0]} rows x {x.gshape[1]} features, k={args.k}, {x.comm.size} ranks")
    say(f"iterations {model.n_iter_}, {seconds:.3f} s")
    say("centres:")
    for j, row in enumerate(centres):
        say(f"  {j:>3}" + "".join(f"{v:>14.6g}" for v in row))
    say(f"inertia {model.inertia_:.10g}")
    if args.labels_dataset:
        say(f"labels written to {args.file}:{args.labels_dataset}")
    return 0


# ---------------------------------------------------------------------- bench
def _timed(fn, repeat: int, comm) -> float:
    """The slowest rank's best time of ``repeat`` runs of ``fn``."""
    best = float("inf")
    for _ in range(repeat):
        comm.barrier()
        started = time.perf_counter()
        fn()
        comm.barrier()
        best = min(best, time.perf_counter() - started)
    slowest = torch.tensor([best], dtype=torch.float64)
    comm.allreduce(slowest, hc.MAX)
    return float(slowest)


def bench_rows(args) -> list[dict]:
    """Time cdist and k-means at the sizes in ``args``; one dict per measurement."""
    import heatlike as ht

    comm = hc.world()
    ht.random.seed(args.seed)
    rows = []
    if args.cdist_rows:
        x = ht.random.randn(args.cdist_rows, args.features, split=0)
        for expand in (True, False):
            seconds = _timed(
                lambda e=expand: ht.spatial.cdist(x, x, quadratic_expansion=e), args.repeat, comm
            )
            name = "cdist (quadratic expansion)" if expand else "cdist (direct)"
            shape = f"{args.cdist_rows}x{args.cdist_rows} from {args.features} features"
            rows.append({"operation": name, "size": shape, "seconds": seconds})
    if args.rows:
        data = ht.random.randn(args.rows, args.features, split=0)
        model = ht.cluster.KMeans(
            args.clusters, init="random", max_iter=args.iterations, tol=0.0, random_state=args.seed
        )
        seconds = _timed(lambda: model.fit(data), args.repeat, comm)
        shape = f"{args.rows}x{args.features}, k={args.clusters}, {model.n_iter_} iterations"
        rows.append({"operation": "KMeans.fit (random init)", "size": shape, "seconds": seconds})
    for row in rows:
        row["ranks"] = comm.size
    return rows


def cmd_bench(args) -> int:
    if not args.rows and not args.cdist_rows:
        raise ValueError("nothing to time: give --rows and/or --cdist-rows greater than 0")
    rows = bench_rows(args)
    if args.json:
        say(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["operation"]) for r in rows)
    size_width = max(len(r["size"]) for r in rows)
    say(f"heatlike bench: {rows[0]['ranks']} ranks, {torch.get_num_threads()} torch threads/rank")
    say(f"{'operation':<{width}}  {'size':<{size_width}}  seconds")
    for r in rows:
        say(f"{r['operation']:<{width}}  {r['size']:<{size_width}}  {r['seconds']:.4f}")
    return 0


# --------------------------------------------------------------------- parser
def _add_kmeans(sub) -> None:
    p = sub.add_parser(
        "kmeans",
        help="k-means on the rows of an HDF5 dataset, labels written back",
        description=KMEANS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE.h5", help="HDF5 file holding the data")
    p.add_argument("--dataset", required=True, help="name of the 2-d dataset (rows, features)")
    p.add_argument("-k", "--clusters", dest="k", type=positive_int, required=True, help="clusters")
    p.add_argument(
        "--labels-dataset",
        default="labels",
        help="dataset the labels are written to; '' to write nothing; default: labels",
    )
    p.add_argument(
        "--init",
        choices=["k-means++", "random"],
        default="k-means++",
        help="initial centres; default: k-means++ (parallel, the same at any rank count)",
    )
    p.add_argument("--seed", type=nonnegative_int, default=0, help="default: 0")
    p.add_argument("--max-iter", type=positive_int, default=300, help="default: 300")
    p.add_argument(
        "--tol",
        type=float,
        default=1e-4,
        help="relative to the mean feature variance, as scikit-learn; default: 1e-4",
    )
    p.add_argument("--n-init", type=positive_int, default=1, help="runs, best kept; default: 1")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=cmd_kmeans)


def _add_bench(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="time cdist and k-means on random data",
        description=BENCH_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--rows", type=nonnegative_int, default=100_000, help="k-means rows (0: skip)")
    p.add_argument("--features", type=positive_int, default=16, help="default: 16")
    p.add_argument("--clusters", type=positive_int, default=8, help="k-means k; default: 8")
    p.add_argument("--iterations", type=positive_int, default=20, help="k-means iterations")
    p.add_argument("--cdist-rows", type=nonnegative_int, default=2000, help="cdist rows (0: skip)")
    p.add_argument("--repeat", type=positive_int, default=3, help="runs, best kept; default: 3")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="default: 0")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(run=cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    """The ``heatlike`` parser with its subcommands."""
    parser = make_parser("heatlike", DESCRIPTION, __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = sub.add_parser("info", help="versions, backend, ranks and threads of this job")
    info.add_argument("--json", action="store_true", help="print as JSON")
    info.set_defaults(run=cmd_info)
    _add_kmeans(sub)
    _add_bench(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 on bad input)."""
    return run(build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
