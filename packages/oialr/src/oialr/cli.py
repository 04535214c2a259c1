"""Command line of oialr: the `oialr` entry point and `python -m oialr`."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Sequence

from hpc_comm.cli_support import make_parser, nonnegative_int, positive_int, run, say
from oialr import __version__

DESCRIPTION = """\
Train PyTorch models with OIALR (orthogonality-informed adaptive low-rank training): after a
full-rank warm-up every eligible layer becomes U·S·Vᵀ with frozen orthonormal bases U and Vᵀ;
only the small r x r matrix S (and the biases) is trained, and the rank r is pruned on a schedule.

  oialr train --model mlp                 OIALR and a full-rank baseline on scikit-learn's digits
  oialr train --model vit --plot r.png    ... and a PNG of the rank of every layer over training
  oialr stability --plot s.png            how stable each layer's orthogonal basis Q = U Vᵀ is
  mpiexec -n 2 oialr train                data-parallel over hpc-comm (batches split over ranks)
"""


def _common(p: argparse.ArgumentParser, steps: int) -> None:
    p.add_argument("--model", choices=("mlp", "cnn", "vit"), default="mlp", help="digits model")
    p.add_argument("--steps", type=positive_int, default=steps, help="training steps (%(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="global batch (%(default)s)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (%(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of data split, init, batches")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--plot", metavar="PNG", help="write the plot to this PNG file")


def _world():
    import hpc_comm as hc

    return hc.world()


def _atomic_write(path: str, write) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".oialr-", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _check_output(path: str | None, name: str) -> None:
    if path is not None and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise ValueError(f"{name}: the directory of {path!r} does not exist")


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plots need matplotlib: pip install 'oialr[plot]'") from exc
    return plt


def _plot_ranks(result, baseline_acc, path: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    names = list(result.ranks)
    for name in names:
        steps = [s for s, _ in result.rank_history]
        ax.step(steps, [r[name] for _, r in result.rank_history], where="post", label=name)
    ax.set_xlabel("training step")
    ax.set_ylabel("rank r")
    title = f"OIALR {result.config.model}: test acc {result.test_accuracy:.3f}"
    if baseline_acc is not None:
        title += f" (full rank {baseline_acc:.3f})"
    ax.set_title(f"{title}, {100 * result.trainable_fraction:.1f}% trainable")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    _atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


def _cmd_train(args) -> int:
    from oialr.digits import TrainConfig, train

    _check_output(args.plot, "--plot")
    _check_output(args.json, "--json")
    config = TrainConfig(
        model=args.model,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        delay=args.delay,
        stability_frequency=args.frequency,
        sigma_cutoff_fraction=args.cutoff,
        layer_share_step=args.layer_share,
        seed=args.seed,
    )
    config.validate()
    comm = _world()
    result = train(config, comm=comm, progress=not args.quiet)
    baseline = None
    if not args.no_baseline:
        base_cfg = TrainConfig(**{**config.__dict__, "low_rank": False})
        baseline = train(base_cfg, comm=comm, progress=not args.quiet)
    rows = [("OIALR", result)] + ([("full rank", baseline)] if baseline else [])
    say(f"digits {config.model}, {config.steps} steps, seed {config.seed}, {comm.size} rank(s)")
    say(
        f"{'run':<10} {'test acc':>8} {'trainable':>9} {'ms/step':>8} {'infer ms':>8} "
        f"{'merged ms':>9}"
    )
    for label, r in rows:
        merged = f"{1e3 * r.merged_inference_seconds:9.2f}" if label == "OIALR" else f"{'—':>9}"
        say(
            f"{label:<10} {r.test_accuracy:8.4f} {100 * r.trainable_fraction:8.1f}% "
            f"{1e3 * r.seconds_per_step:8.2f} {1e3 * r.inference_seconds:8.2f} {merged}"
        )
    say("infer ms: one forward pass over the test set; merged: after oialr.merge (W = U S Vᵀ)")
    say("ranks: " + ", ".join(f"{k}={v}" for k, v in result.ranks.items()))
    if comm.rank == 0:
        if args.plot:
            _plot_ranks(result, baseline.test_accuracy if baseline else None, args.plot)
            say(f"wrote {args.plot}")
        if args.json:
            summary = {
                label: {
                    "test_accuracy": r.test_accuracy,
                    "trainable_fraction": r.trainable_fraction,
                    "seconds_per_step": r.seconds_per_step,
                    "inference_seconds": r.inference_seconds,
                    "merged_inference_seconds": r.merged_inference_seconds,
                    "ranks": r.ranks,
                    "rank_history": r.rank_history,
                }
                for label, r in rows
            }
            text = json.dumps(summary, indent=2)
            _atomic_write(args.json, lambda tmp: open(tmp, "w").write(text))
    return 0


def _plot_stability(stability: dict, title: str, path: str) -> None:
    plt = _pyplot()
    fig, (ax_q, ax_w) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for name, entry in stability.items():
        ax_q.plot(entry["step"], entry["basis"], marker=".", label=name)
        ax_w.plot(entry["step"], entry["weight"], marker=".", label=name)
    ax_q.set_title("orthogonal basis Q = U Vᵀ")
    ax_w.set_title("weight W (columns)")
    ax_q.set_ylabel("mean column cosine to previous checkpoint")
    for ax in (ax_q, ax_w):
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    ax_q.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    _atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


def _cmd_stability(args) -> int:
    from oialr.digits import TrainConfig, train

    _check_output(args.plot, "--plot")
    config = TrainConfig(
        model=args.model,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        low_rank=False,
        track_every=args.every,
        seed=args.seed,
    )
    config.validate()
    if args.every < 1:
        raise ValueError(f"--every: expected a positive int, got {args.every}")
    comm = _world()
    result = train(config, comm=comm, progress=not args.quiet)
    say(f"full-rank digits {config.model}: test acc {result.test_accuracy:.4f}")
    say("mean column cosine between checkpoints (basis Q / weight W):")
    for name, entry in result.stability.items():
        cells = " ".join(f"{q:.3f}/{w:.3f}" for q, w in zip(entry["basis"], entry["weight"]))
        say(f"  {name:<22} {cells}")
    if args.plot and comm.rank == 0:
        title = f"basis stability, digits {config.model}, checkpoints every {args.every} steps"
        _plot_stability(result.stability, title, args.plot)
        say(f"wrote {args.plot}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("oialr", DESCRIPTION, __version__)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    p = sub.add_parser("train", help="OIALR vs full rank on digits (MLP, CNN or ViT)")
    _common(p, steps=1500)
    p.add_argument("--delay", type=nonnegative_int, default=300, help="full-rank warm-up steps")
    p.add_argument("--frequency", type=positive_int, default=100, help="steps between rank checks")
    p.add_argument("--cutoff", type=float, default=0.1, help="keep sigma >= cutoff * sigma_1")
    p.add_argument("--layer-share", type=float, default=0.1, help="share of layers added per check")
    p.add_argument("--no-baseline", action="store_true", help="skip the full-rank run")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.set_defaults(run=_cmd_train)
    p = sub.add_parser("stability", help="basis stability of a full-rank digits run (PNG)")
    _common(p, steps=1500)
    p.add_argument("--every", type=positive_int, default=100, help="steps between checkpoints")
    p.set_defaults(run=_cmd_stability)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 on bad input)."""
    return run(build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
