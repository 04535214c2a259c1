"""Command line of fwdgrad: the `fwdgrad` entry point and `python -m fwdgrad`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence

from fwdgrad import __version__
from hpc_comm.cli_support import make_parser, positive_float, positive_int, run, say

DESCRIPTION = """\
Multi-tangent forward gradients: estimate a gradient from k directional derivatives that
forward-mode AD computes alongside the forward pass (no backward pass), combined by their mean or
by the orthogonal projection of the gradient onto the span of the k tangents.

commands:
  approx   how close the estimates come to the gradient (cosine, norm ratio) for each n and k
  train    train an MLP or small CNN on scikit-learn's digits with bp / fg / mean / frog

examples:
  fwdgrad approx --n 64,256,1024 --k 1,4,16,64 --plot approx.png
  fwdgrad train --methods bp,mean,frog --k 1,16,64 --steps 300 --plot loss.png
  mpiexec -n 2 fwdgrad train --methods frog --k 16   # data parallel: only k jvps are allreduced
"""

APPROX_HELP = """\
Draw random gradients g in R^n and k random tangents, estimate g from the k jvps d = V^T g with
each aggregation, and report the mean cosine similarity cos(estimate, g) and norm ratio
||estimate|| / ||g|| over --draws draws, next to the closed forms: for the projection
cos^2 ~ Beta(k/2, (n-k)/2), for the mean of Gaussian tangents cos^2 ~ Beta(k/2, (n-1)/2).
"""

TRAIN_HELP = """\
Train on scikit-learn's 8x8 digits with plain SGD, each method in turn from the same
initialisation and data order: bp (backprop, the reference), fg (one tangent), mean (k
tangents averaged) and frog (k tangents, orthogonal projection). Learning rates are scaled per
method unless --lr is given. Prints the final training loss and test accuracy per run and the
bytes each rank allreduced per step; --plot writes the loss curves.
"""


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive ints, got {text!r}")
    return values


def _word_list(choices: Sequence[str]):
    def parse(text: str) -> list[str]:
        words = [w.strip() for w in text.split(",") if w.strip()]
        bad = [w for w in words if w not in choices]
        if not words or bad:
            raise argparse.ArgumentTypeError(f"expected some of {', '.join(choices)}, got {text!r}")
        return words

    return parse


def _add_approx(sub) -> None:
    p = sub.add_parser(
        "approx",
        help="cosine similarity and norm ratio of the estimates vs n and k",
        description=APPROX_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--n", type=_int_list, default=[64, 256, 1024], help="default: 64,256,1024")
    p.add_argument("--k", type=_int_list, default=[1, 4, 16, 64], help="default: 1,4,16,64")
    p.add_argument(
        "--aggregations",
        type=_word_list(("mean", "sum", "projection")),
        default=["mean", "projection"],
        help="comma-separated from mean, sum, projection; default: mean,projection",
    )
    p.add_argument(
        "--tangents",
        choices=["normal", "rademacher", "orthonormal"],
        default="normal",
        help="default: normal",
    )
    p.add_argument("--draws", type=positive_int, default=200, help="default: 200")
    p.add_argument("--seed", type=int, default=0, help="default: 0")
    p.add_argument("--plot", metavar="PNG", help="write cosine and norm ratio vs k")
    p.add_argument("--json", metavar="PATH", help="write the table as JSON")
    p.set_defaults(run=_approx)


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train on digits with bp / fg / mean / frog",
        description=TRAIN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--methods",
        type=_word_list(("bp", "fg", "mean", "frog")),
        default=["bp", "fg", "mean", "frog"],
        help="comma-separated from bp, fg, mean, frog; default: all four",
    )
    p.add_argument(
        "--k", type=_int_list, default=[16], help="tangents for mean and frog; default: 16"
    )
    p.add_argument("--model", choices=["mlp", "cnn"], default="mlp", help="default: mlp")
    p.add_argument("--hidden", type=positive_int, default=64, help="hidden width; default: 64")
    p.add_argument("--steps", type=positive_int, default=300, help="default: 300")
    p.add_argument("--batch-size", type=positive_int, default=64, help="global; default: 64")
    p.add_argument("--lr", type=positive_float, help="SGD learning rate; default: per method")
    p.add_argument(
        "--chunk-size", type=positive_int, help="tangents per vmapped pass; default: auto"
    )
    p.add_argument("--seed", type=int, default=0, help="default: 0")
    p.add_argument("--plot", metavar="PNG", help="write the training loss curves")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_train)


def _approx(args) -> int:
    from fwdgrad.approx import approximation_table

    if args.plot:
        _check_matplotlib()
    rows = approximation_table(
        args.n, args.k, args.aggregations, args.tangents, args.draws, args.seed
    )
    say(f"fwdgrad approx: {args.tangents} tangents, {args.draws} draws per cell")
    say(
        f"{'n':>6}{'k':>5}  {'aggregation':<12}{'cos':>8}{'± sd':>8}{'closed':>8}"
        f"{'|est|/|g|':>11}{'closed':>8}"
    )
    for r in rows:
        say(
            f"{r.n:>6}{r.k:>5}  {r.aggregation:<12}{r.cos_mean:>8.4f}{r.cos_sd:>8.4f}"
            f"{_num(r.cos_expected):>8}{r.norm_ratio_mean:>11.4f}{_num(r.norm_ratio_expected):>8}"
        )
    if _is_root():
        if args.plot:
            _plot_approx(rows, args.plot)
            say(f"plot: {args.plot}")
        if args.json:
            _write_atomic(args.json, json.dumps([r.as_dict() for r in rows], indent=1))
            say(f"results: {args.json}")
    return 0


def _train(args) -> int:
    import hpc_comm as hc
    from fwdgrad.training import load_digits, train

    if args.plot:
        _check_matplotlib()
    comm = hc.world()
    if args.batch_size < comm.size:
        raise ValueError(f"--batch-size ({args.batch_size}) must be at least the rank count")
    runs = [(m, 1) for m in args.methods if m in ("bp", "fg")]
    runs += [(m, k) for m in args.methods if m in ("mean", "frog") for k in args.k]
    data = load_digits(args.seed)
    say(
        f"fwdgrad train: {args.model} on digits, {args.steps} steps of {args.batch_size}, "
        f"{comm.size} rank(s)"
    )
    results = []
    for method, k in runs:
        bar = _progress_bar(args, comm, f"{method} k={k}")
        results.append(
            train(
                data,
                method,
                k=k,
                steps=args.steps,
                batch_size=args.batch_size,
                lr=args.lr,
                architecture=args.model,
                hidden=args.hidden,
                seed=args.seed,
                chunk_size=args.chunk_size,
                progress=bar.step if bar else None,
                comm=comm if comm.size > 1 else None,
            )
        )
        if bar:
            bar.close()
    n = results[0].n_params
    say(f"{n} parameters; initial loss {results[0].initial_loss:.4f}")
    say(
        f"{'method':<7}{'k':>4}{'lr':>9}{'final loss':>12}{'test acc':>10}{'time s':>9}"
        f"{'B/step':>9}"
    )
    for r in results:
        say(
            f"{r.method:<7}{r.k:>4}{r.lr:>9.4g}{r.final_loss:>12.4f}{r.test_accuracy:>10.4f}"
            f"{r.wall_time:>9.2f}{r.bytes_per_step:>9.0f}"
        )
    if _is_root():
        if args.plot:
            _plot_train(results, args.plot)
            say(f"plot: {args.plot}")
        if args.json:
            _write_atomic(args.json, json.dumps([r.as_dict() for r in results], indent=1))
            say(f"results: {args.json}")
    return 0


class _Bar:
    """A tqdm bar on rank 0 that shows the running loss."""

    def __init__(self, total: int, label: str):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=label, unit="step", file=sys.stderr, leave=False)

    def step(self, _step: int, loss: float) -> None:
        self.bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        self.bar.update()

    def close(self) -> None:
        self.bar.close()


def _progress_bar(args, comm, label: str) -> _Bar | None:
    if args.quiet or comm.rank != 0 or not sys.stderr.isatty():
        return None
    try:
        return _Bar(args.steps, label)
    except ImportError:  # tqdm is optional (the `train` extra)
        return None


def _is_root() -> bool:
    import hpc_comm as hc

    return hc.world().rank == 0


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _check_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError("--plot needs matplotlib: pip install 'fwdgrad[plot]'") from exc


def _default_mode(tmp: str) -> None:
    """mkstemp creates files readable by their owner only; give them the usual permissions."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)


def _write_atomic(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    _default_mode(tmp)
    os.replace(tmp, path)


def _save_figure(fig, path: str) -> None:
    import matplotlib.pyplot as plt

    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=100)
        _default_mode(tmp)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_approx(rows, path: str) -> None:
    plt = _pyplot()
    fig, (ax_cos, ax_norm) = plt.subplots(1, 2, figsize=(10, 4))
    keys = sorted({(r.aggregation, r.n) for r in rows})
    for aggregation, n in keys:
        cell = [r for r in rows if r.aggregation == aggregation and r.n == n]
        ks = [r.k for r in cell]
        line = ax_cos.plot(
            ks, [r.cos_mean for r in cell], marker="o", label=f"{aggregation}, n={n}"
        )[0]
        closed = [r.cos_expected for r in cell]
        if all(c is not None for c in closed):
            ax_cos.plot(ks, closed, linestyle=":", color=line.get_color())
        ax_norm.plot(ks, [r.norm_ratio_mean for r in cell], marker="o", color=line.get_color())
    for ax in (ax_cos, ax_norm):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("tangents k")
    ax_norm.set_yscale("log")
    ax_cos.set_ylabel("cos(estimate, gradient)  (dotted: closed form)")
    ax_norm.set_ylabel("||estimate|| / ||gradient||")
    ax_cos.legend(fontsize="small")
    fig.suptitle("multi-tangent forward gradient vs the true gradient")
    fig.tight_layout()
    _save_figure(fig, path)


def _plot_train(results, path: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        smooth = _moving_mean(r.losses, max(1, len(r.losses) // 30))
        label = "bp (reference)" if r.method == "bp" else f"{r.method}, k={r.k}"
        style = dict(color="black", linewidth=2) if r.method == "bp" else {}
        ax.plot(range(1, len(smooth) + 1), smooth, label=label, **style)
    ax.set_xlabel("step")
    ax.set_ylabel("training batch loss (moving mean)")
    ax.set_yscale("log")
    ax.legend(fontsize="small")
    ax.set_title("forward gradients vs backprop on digits")
    fig.tight_layout()
    _save_figure(fig, path)


def _moving_mean(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 on bad input)."""
    parser = make_parser("fwdgrad", DESCRIPTION, __version__)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_approx(sub)
    _add_train(sub)
    return run(parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
