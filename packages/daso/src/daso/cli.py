"""Command line of daso: the `daso` entry point and `python -m daso`."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from collections.abc import Sequence

from daso import __version__
from hpc_comm.cli_support import make_parser, positive_float, run, say

DESCRIPTION = """\
Train PyTorch models data-parallel with DASO: gradients are averaged inside each node every step,
while the parameters are averaged between nodes asynchronously, on a schedule, by one rotating
group of ranks at a time. `daso train` compares DASO with synchronous data parallelism on
scikit-learn's digits.

examples:
  HPC_COMM_RANKS_PER_NODE=2 mpiexec -n 4 daso train                 # 2 emulated nodes
  HPC_COMM_RANKS_PER_NODE=2 mpiexec -n 4 daso train --latency 0.008 --bandwidth 10e6 \\
      --plot /tmp/daso/loss.png                                      # a slow inter-node link
"""

TRAIN_HELP = """\
Train an MLP or a small CNN on scikit-learn's 8x8 digits with each method in turn (same seed,
same data order) and print accuracy, wall time, time to the target accuracy and bytes sent
between and inside nodes. --latency/--bandwidth put hpc-comm's link model between the nodes: a
simulated slow interconnect that delays only inter-node traffic. Nodes come from the machine or
from HPC_COMM_RANKS_PER_NODE.
"""


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train on digits with DASO and the synchronous baseline",
        description=TRAIN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--methods",
        default="daso,sync",
        help="comma-separated, from daso, sync (allreduce of gradients every step), "
        "hsync (hierarchical sync); default: daso,sync",
    )
    p.add_argument("--model", choices=["mlp", "cnn"], default="mlp", help="default: mlp")
    p.add_argument("--epochs", type=int, default=12, help="default: 12")
    p.add_argument("--batch-size", type=int, default=16, help="per rank; default: 16")
    p.add_argument("--lr", type=float, default=0.05, help="SGD learning rate; default: 0.05")
    p.add_argument("--momentum", type=float, default=0.9, help="default: 0.9")
    p.add_argument("--hidden", type=int, default=128, help="hidden width; default: 128")
    p.add_argument("--seed", type=int, default=0, help="default: 0")
    p.add_argument("--warmup-epochs", type=int, default=1, help="DASO warm-up; default: 1")
    p.add_argument("--cooldown-epochs", type=int, default=1, help="DASO cool-down; default: 1")
    p.add_argument("--max-global-skips", type=int, default=8, help="default: 8")
    p.add_argument(
        "--downcast",
        choices=["bf16", "fp16", "none"],
        default="bf16",
        help="dtype of DASO's asynchronous syncs; default: bf16",
    )
    p.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="simulated inter-node latency in seconds; default: 0 (no model)",
    )
    p.add_argument(
        "--bandwidth",
        type=positive_float,
        default=math.inf,
        help="simulated inter-node bandwidth in bytes/s; default: unlimited",
    )
    p.add_argument("--target-accuracy", type=float, default=0.95, help="default: 0.95")
    p.add_argument("--plot", metavar="PNG", help="write loss vs wall time of every method")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_train)


def _methods(text: str) -> list[str]:
    from daso.train import METHODS

    methods = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if not methods or bad:
        raise ValueError(f"--methods must list some of {', '.join(METHODS)}, got {text!r}")
    return methods


def _train(args) -> int:
    import hpc_comm as hc
    from daso.train import TrainConfig

    methods = _methods(args.methods)
    configs = [
        TrainConfig(
            method=m,
            model=args.model,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            momentum=args.momentum,
            hidden=args.hidden,
            seed=args.seed,
            warmup_epochs=args.warmup_epochs,
            cooldown_epochs=args.cooldown_epochs,
            max_global_skips=args.max_global_skips,
            downcast=args.downcast,
            latency=args.latency,
            bandwidth=args.bandwidth,
            target_accuracy=args.target_accuracy,
        )
        for m in methods
    ]
    for cfg in configs:
        cfg.validate()  # before any collective, on every rank
    comm = hc.world()
    nodes = len(set(comm.allgather_obj(comm.node_id)))
    say(
        f"daso train: {comm.size} ranks on {nodes} node(s), model {args.model}, "
        f"{args.epochs} epochs, link latency {args.latency} s, bandwidth {args.bandwidth:g} B/s"
    )
    results = [_run_one(cfg, comm, args.quiet) for cfg in configs]
    if comm.rank == 0:
        _summary(results, args.target_accuracy)
        if args.plot:
            _plot(results, args.plot)
            say(f"plot: {args.plot}")
        if args.json:
            _write_atomic(args.json, json.dumps([r.as_dict() for r in results], indent=1))
            say(f"results: {args.json}")
    return 0


def _run_one(cfg, comm, quiet: bool):
    from daso.train import train

    bar = None
    if comm.rank == 0 and not quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=cfg.epochs, desc=cfg.method, unit="epoch", file=sys.stderr)

    def on_epoch(point):
        if bar is not None:
            bar.set_postfix(loss=f"{point['loss']:.3f}", acc=f"{point['accuracy']:.3f}")
            bar.update()

    result = train(cfg, comm, on_epoch)
    if bar is not None:
        bar.close()
    return result


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


def _summary(results, target: float) -> None:
    say(
        f"{'method':<7}{'accuracy':>10}{'wall s':>9}{'to ' + format(target, '.0%') + ' s':>10}"
        f"{'inter MiB':>11}{'intra MiB':>11}{'sent MiB':>10}"
    )
    for r in results:
        ttt = "-" if r.time_to_target is None else f"{r.time_to_target:.2f}"
        say(
            f"{r.config['method']:<7}{r.final_accuracy:>10.4f}{r.wall_time:>9.2f}{ttt:>10}"
            f"{_mib(r.inter_node_bytes):>11}{_mib(r.intra_node_bytes):>11}"
            f"{_mib(r.traffic_bytes):>10}"
        )
    say(
        "inter/intra MiB: every rank's buffer in every call, by whether the call crosses nodes "
        "(link model); sent MiB: send buffers only, a bcast counted at its root (hc.traffic())"
    )


def _write_atomic(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _plot(results, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("--plot needs matplotlib: pip install 'daso[plot]'") from exc
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results:
        walls = [0.0] + [p["wall"] for p in r.history]
        losses = [float("nan")] + [p["loss"] for p in r.history]
        ax.plot(walls, losses, marker="o", label=r.config["method"])
    ax.set_xlabel("training wall time (s)")
    ax.set_ylabel("training loss (mean over ranks)")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("DASO vs synchronous data parallelism, digits")
    fig.tight_layout()
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".png")
    os.close(fd)
    fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 on bad input)."""
    parser = make_parser("daso", DESCRIPTION, __version__)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_train(sub)
    return run(parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
