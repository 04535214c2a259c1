"""Command line of hpc-comm: ``info``, ``bench`` and ``selftest``. Under MPI only rank 0 prints."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Sequence

import hpc_comm as hc
from hpc_comm.cli_support import make_parser, positive_int, run, say

DESCRIPTION = """\
hpc-comm moves torch tensors between processes with MPI (mpi4py) or torch.distributed, behind
one Communicator. Without a launcher it runs as a single process (the `self` backend); under
`mpiexec -n N` it uses MPI; set HPC_COMM_BACKEND=mpi|torch|self to choose.

examples:
  hpc-comm info                          what this job sees: backend, ranks, nodes, threads
  mpiexec -n 2 hpc-comm selftest         run every collective and check the results
  mpiexec -n 2 hpc-comm bench --ops allreduce --max-size 1MiB --plot bench.png
"""


def info_dict(comm) -> dict:
    """What ``hpc-comm info`` reports, as a dict (every rank takes part in the collectives)."""
    node_ids = comm.allgather_obj(comm.node_id)
    choice = hc.threads()
    facts = {
        "hpc-comm": hc.__version__,
        "python": platform.python_version(),
        "backend": comm.backend,
        "ranks": comm.size,
        "nodes": len(set(node_ids)),
        "ranks per node": max(node_ids.count(i) for i in set(node_ids)),
        "threads per rank": (choice.threads if choice and choice.threads else "library default"),
        "thread choice": choice.source if choice else "not applied",
    }
    if comm.backend == "mpi":
        from mpi4py import MPI

        facts["mpi library"] = MPI.Get_library_version().strip().splitlines()[0]
        facts["mpi4py"] = sys.modules["mpi4py"].__version__
        facts["cuda-aware mpi"] = comm._cuda_aware
    try:
        import torch
        import torch.distributed as dist

        facts["torch"] = torch.__version__
        facts["torch huge pages"] = os.environ.get("THP_MEM_ALLOC_ENABLE", "0") not in ("", "0")
        facts["cuda available"] = torch.cuda.is_available()
        facts["nccl available"] = dist.is_available() and dist.is_nccl_available()
        facts["gloo available"] = dist.is_available() and dist.is_gloo_available()
    except ImportError:
        facts["torch"] = "not installed"
    return facts


def cmd_info(args) -> int:
    comm = hc.world()
    facts = info_dict(comm)
    if args.json:
        say(json.dumps(facts, indent=2))
    else:
        width = max(len(k) for k in facts)
        say("\n".join(f"{k:<{width}}  {v}" for k, v in facts.items()))
    return 0


def cmd_selftest(args) -> int:
    from . import selftest

    comm = hc.world()
    results = selftest.run(comm)
    lines = [
        f"{'PASS' if r.passed else 'FAIL'}  {r.name}" + (f"  ({r.detail})" if r.detail else "")
        for r in results
    ]
    failed = sum(not r.passed for r in results)
    lines.append(
        f"{len(results) - failed} passed, {failed} failed "
        f"({comm.backend} backend, {comm.size} ranks)"
    )
    say("\n".join(lines))
    return 1 if failed else 0


def cmd_bench(args) -> int:
    from . import bench

    comm = hc.world()
    sizes = [s for s in bench.default_sizes() if args.min_size <= s <= args.max_size]
    if not sizes:
        raise ValueError(
            f"no message size between --min-size {args.min_size} and --max-size {args.max_size}"
        )
    rows = bench.sweep(comm, ops=args.ops, sizes=sizes, iterations=args.iterations)
    say(f"hpc-comm bench: {comm.backend} backend, {comm.size} ranks\n")
    say(bench.format_table(rows))
    if args.plot and comm.rank == 0:
        bench.plot(rows, args.plot)
        print(f"\nplot written to {args.plot}")
    return 0


def _size(text: str) -> int:
    from .bench import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("hpc-comm", DESCRIPTION, hc.__version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    info = sub.add_parser("info", help="backend, library versions, ranks, nodes, threads, CUDA")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(run=cmd_info)

    selftest = sub.add_parser("selftest", help="run every collective and check the results")
    selftest.set_defaults(run=cmd_selftest)

    bench = sub.add_parser(
        "bench",
        help="latency and bandwidth over message sizes (OSU-style sweep)",
        description="Time allreduce, bcast, allgather and alltoall over message sizes. Each "
        "number is the slowest rank's mean time per call. Run under mpiexec.",
    )
    bench.add_argument(
        "--ops",
        nargs="+",
        default=["allreduce", "bcast", "allgather", "alltoall"],
        choices=["allreduce", "bcast", "allgather", "alltoall"],
        help="operations to time (default: all four)",
    )
    bench.add_argument(
        "--min-size",
        type=_size,
        default=8,
        metavar="SIZE",
        help="smallest message per rank, e.g. 8, 4KiB (default 8)",
    )
    bench.add_argument(
        "--max-size",
        type=_size,
        default=64 * 2**20,
        metavar="SIZE",
        help="largest message per rank, e.g. 1MiB (default 64MiB)",
    )
    bench.add_argument(
        "--iterations",
        type=positive_int,
        default=None,
        help="calls per size (default: more for small messages)",
    )
    bench.add_argument(
        "--plot",
        metavar="PNG",
        help="also write a latency plot (needs the `plot` extra: pip install 'hpc-comm[plot]')",
    )
    bench.set_defaults(run=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
