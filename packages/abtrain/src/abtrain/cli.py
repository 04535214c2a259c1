"""Command line of abtrain: the `abtrain` entry point and `python -m abtrain`."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

from abtrain import __version__
from hpc_comm.cli_support import make_parser, run, say

DESCRIPTION = """\
AB-training: data-parallel training with weights factorised as low-rank A·B. Groups of ranks
train A or B independently, averaging only inside the group, and merge every few steps.

  abtrain train                               AB-training of an MLP on scikit-learn's digits
  mpiexec -n 4 abtrain train --method all     AB vs data parallelism vs PowerSGD, same bytes budget
  mpiexec -n 4 abtrain train --model cnn --plot acc_vs_bytes.png

The summary table shows test accuracy, bytes each rank handed to the network (mean over ranks)
and the final compression of the factorised layers (parameters of W over those of A and B).
"""


def _add_train(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train on digits and print accuracy / bytes / compression",
        description="Train a small model on scikit-learn's digits (run it under mpiexec -n 4).",
    )
    p.add_argument(
        "--method",
        choices=["ab", "dp", "powersgd", "all"],
        default="ab",
        help="ab, data parallelism, PowerSGD, or all three in a row (default ab)",
    )
    p.add_argument(
        "--model",
        choices=["mlp", "cnn"],
        default="mlp",
        help="mlp 64-256-256-10 or a small CNN (default mlp)",
    )
    p.add_argument("--steps", type=int, default=600, help="optimiser steps (default 600)")
    p.add_argument("--batch-size", type=int, default=32, help="per-rank batch (default 32)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--seed", type=int, default=0, help="data split, init and batches (default 0)")
    p.add_argument(
        "--warmup-steps", type=int, default=50, help="full-rank DP steps first (default 50)"
    )
    p.add_argument(
        "--sync-every", type=int, default=50, help="steps between merges, P (default 50)"
    )
    p.add_argument(
        "--full-rank-steps", type=int, default=5, help="DP steps after a merge, F (default 5)"
    )
    p.add_argument(
        "--cutoff",
        type=float,
        default=0.25,
        help="re-split keeps s_i > cutoff * s_1 (default 0.25)",
    )
    p.add_argument(
        "--sync-mode",
        choices=["full", "with-stale", "only-learned", "only-b"],
        default="full",
        help="merge: mean of A_i B_i (full), mean A times mean B (with-stale), A from the "
        "A-groups and B from the B-groups (only-learned), or every group trains B (only-b)",
    )
    p.add_argument(
        "--group-size", type=int, default=2, help="ranks per group, -1 for two halves (default 2)"
    )
    p.add_argument(
        "--train-comm",
        choices=["groups", "individual"],
        default="groups",
        help="average AB-phase gradients inside the group, or not at all (default groups)",
    )
    p.add_argument(
        "--lr-rebound-steps",
        type=int,
        default=0,
        help="steps of LR ramp after each switch (default 0: off)",
    )
    p.add_argument(
        "--powersgd-rank",
        default="auto",
        help="PowerSGD rank, or 'auto' to match AB-training's bytes (needs --method all)",
    )
    p.add_argument("--plot", metavar="PNG", help="write accuracy vs bytes sent to this PNG")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_train)


def _powersgd_rank(args) -> int | None:
    if args.powersgd_rank == "auto":
        return None
    try:
        rank = int(args.powersgd_rank)
    except ValueError:
        raise ValueError(
            f"--powersgd-rank must be an int or 'auto', got {args.powersgd_rank!r}"
        ) from None
    if rank < 1:
        raise ValueError(f"--powersgd-rank must be >= 1, got {rank}")
    return rank


def _train(args) -> int:
    from abtrain.harness import build_model, powersgd_rank_for_bytes, train_digits
    from abtrain.schedule import Schedule, group_layout
    from hpc_comm import world

    # check every AB option before the first run starts (``--method all`` trains DP first)
    Schedule(args.warmup_steps, args.sync_every, args.full_rank_steps)
    if not 0.0 <= args.cutoff < 1.0:
        raise ValueError(f"--cutoff must be in [0, 1), got {args.cutoff}")
    if args.lr_rebound_steps < 0:
        raise ValueError(f"--lr-rebound-steps must be >= 0, got {args.lr_rebound_steps}")
    group_layout(world().size, args.group_size, args.sync_mode)
    fixed_rank = _powersgd_rank(args)
    if args.method == "powersgd" and fixed_rank is None:
        fixed_rank = 4
    ab_options = {
        "warmup_steps": args.warmup_steps,
        "sync_every": args.sync_every,
        "full_rank_steps": args.full_rank_steps,
        "cutoff": args.cutoff,
        "sync_mode": args.sync_mode,
        "group_size": args.group_size,
        "train_comm": args.train_comm,
        "lr_rebound_steps": args.lr_rebound_steps,
    }
    common = {
        "model": args.model,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "progress": not args.quiet,
    }
    methods = ["dp", "ab", "powersgd"] if args.method == "all" else [args.method]
    results = []
    for method in methods:
        rank = fixed_rank
        if method == "powersgd" and rank is None:
            ab = next(r for r in results if r.method == "ab")
            rank = powersgd_rank_for_bytes(build_model(args.model, 0), ab.bytes_sent / args.steps)
        results.append(
            train_digits(method, ab_options=ab_options, powersgd_rank=rank or 4, **common)
        )
    _print_table(results)
    if args.plot:
        _plot(results, args.plot)
    return 0


def _print_table(results) -> None:
    dp = next((r for r in results if r.method == "dp"), None)
    say(f"digits, {results[0].model}, {results[0].ranks} ranks, {results[0].steps} steps")
    say("| method | test accuracy | MB sent per rank | vs DP | compression (layers) | time s |")
    say("|---|---|---|---|---|---|")
    for r in results:
        name = r.method + (f" (r={r.powersgd_rank})" if r.powersgd_rank else "")
        ratio = f"{r.bytes_sent / dp.bytes_sent:.3f}" if dp and dp.bytes_sent else "-"
        comp = f"{r.layer_compression:.2f}:1" if r.method == "ab" else "-"
        say(
            f"| {name} | {r.accuracy:.4f} | {r.bytes_sent / 1e6:.2f} | {ratio} | {comp} "
            f"| {r.seconds:.1f} |"
        )


def _plot(results, path: str) -> None:
    from hpc_comm import world

    if world().rank != 0:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("--plot needs matplotlib: pip install 'abtrain[plot]'") from exc
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results:
        xs = [b / 1e6 for b, _ in r.curve]
        ax.plot(xs, [a for _, a in r.curve], marker="o", ms=3, label=r.method)
    ax.set_xlabel("MB sent per rank")
    ax.set_ylabel("test accuracy (rank 0's model)")
    ax.set_title(f"digits {results[0].model}, {results[0].ranks} ranks")
    ax.legend()
    fig.tight_layout()
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=folder)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
        plt.close(fig)
    say(f"wrote {path}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 on bad input)."""
    parser = make_parser("abtrain", DESCRIPTION, __version__)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_train(subparsers)
    return run(parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
