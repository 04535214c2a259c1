"""Command line of f3: the `f3` entry point and `python -m f3`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from f3 import __version__
from hpc_comm.cli_support import make_parser, positive_float, positive_int, progress_bar, run, say

DESCRIPTION = """\
Train PyTorch MLPs with F³ (feed-forward training with delayed error feedback) and compare it
with backprop (bp), direct feedback alignment (dfa), direct random target projection (drtp) and
last-layer-only training (llo), on scikit-learn's digits (classification) or a regression set.

examples:
  f3 train --method f3,drtp,bp --dataset digits --hidden 16 --epochs 50 --plot curves.png
  f3 train --method f3 --error delayed_loss --dataset teacher --hidden 32
  mpiexec -n 3 f3 train --method f3 --hidden 64,64,64   # a forward-only pipeline over ranks
"""


def _widths(text: str) -> list[int]:
    try:
        widths = [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated widths, got {text!r}") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected widths >= 1, got {text!r}")
    return widths


def add_train(commands) -> None:
    from f3.data import DATASETS
    from f3.feedback import FEEDBACK_INITS
    from f3.heads import ERROR_VARIANTS
    from f3.trainer import METHODS, UPDATES

    p = commands.add_parser(
        "train",
        help="train an MLP with one or more methods and print a summary table",
        description="Train an MLP with each method in --method (same seed, data order and "
        "initial weights), print a summary table and optionally plot the learning curves.",
    )
    p.add_argument("--method", default="f3", help=f"comma-separated, from {', '.join(METHODS)}")
    p.add_argument("--dataset", default="digits", choices=sorted(DATASETS))
    p.add_argument("--head", default="bce", choices=["bce", "ce"], help="classification output")
    p.add_argument("--hidden", type=_widths, default=[32], help="hidden widths, e.g. 64,32")
    p.add_argument("--epochs", type=positive_int, default=30)
    p.add_argument("--batch-size", type=positive_int, default=50)
    p.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate")
    p.add_argument(
        "--error",
        default="delayed_error",
        choices=ERROR_VARIANTS,
        help="F³'s stored error (and DFA's current error)",
    )
    p.add_argument("--feedback", default="kaiming_uniform", choices=FEEDBACK_INITS)
    p.add_argument("--update", default="immediate", choices=UPDATES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="PNG", help="write learning curves to this PNG file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=train)


def train(args) -> int:
    import hpc_comm as hc
    from f3.data import load
    from f3.experiment import run_mlp
    from f3.trainer import METHODS

    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if not methods or unknown:
        raise ValueError(f"--method must list methods from {METHODS}, got {args.method!r}")
    if args.plot:
        import matplotlib  # noqa: F401  (fail early, before training, when the extra is missing)
    comm = hc.world()
    if comm.size > 1 and set(methods) - {"f3", "drtp", "llo"}:
        raise ValueError("--method: only f3, drtp and llo run as a pipeline over several ranks")
    if comm.size > len(args.hidden) + 1:
        raise ValueError(f"--hidden: {comm.size} ranks need at least {comm.size - 1} hidden layers")
    split = load(args.dataset, seed=args.seed, head=args.head if args.dataset == "digits" else None)
    metric = "test_mse" if split.head == "mse" else "test_accuracy"
    bar = progress_bar(len(methods) * args.epochs, desc="epochs", unit="ep", enabled=not args.quiet)
    results = []
    for method in methods:
        results.append(
            run_mlp(
                split,
                method,
                args.hidden,
                args.epochs,
                args.batch_size,
                args.lr,
                args.error,
                args.feedback,
                args.update,
                args.seed,
                comm,
                on_epoch=lambda r: bar.update(1) if bar else None,
            )
        )
    if bar:
        bar.close()
    say(summary_table(results, metric, split.name))
    if args.plot and comm.rank == 0:
        from f3.experiment import plot_curves

        plot_curves(results, metric, args.plot, f"{split.name}, hidden {args.hidden}")
        say(f"learning curves: {args.plot}")
    return 0


def summary_table(results, metric: str, dataset: str) -> str:
    best = max if metric == "test_accuracy" else min
    lines = [
        f"dataset: {dataset}",
        f"| method | final train loss | final {metric} | best {metric} | seconds |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        values = [h[metric] for h in r.history]
        seconds = sum(h["seconds"] for h in r.history)
        lines.append(
            f"| {r.label} | {r.final['train_loss']:.4f} | {values[-1]:.4f} | "
            f"{best(values):.4f} | {seconds:.1f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 on bad input)."""
    parser = make_parser("f3", DESCRIPTION, __version__)
    add_train(parser.add_subparsers(title="commands"))
    return run(parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
