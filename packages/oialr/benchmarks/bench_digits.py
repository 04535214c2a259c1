"""OIALR against full-rank training on scikit-learn's digits (MLP, CNN, ViT), plus inference speed.

Run from the repository root, alone or under a launcher (data-parallel over hpc-comm):

    python packages/oialr/benchmarks/bench_digits.py --output docs/benchmarks/oialr.md
    mpiexec -n 2 python packages/oialr/benchmarks/bench_digits.py --output docs/benchmarks/oialr.md

Every (model, seed) trains OIALR and a full-rank baseline with the same seed (same initial
weights, same batches) and reports test accuracy, trainable fraction, time per training step
and inference time. A second table times one factorised layer against its merged dense twin
over a range of ranks (the factorised model is only faster when r is small).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

import hpc_comm as hc
from hpc_comm.cli_support import say
from oialr import LowRankLinear, __version__
from oialr.digits import MODELS, TrainConfig, inference_seconds, load_digits, train

ROOT = Path(__file__).resolve().parents[3]
MLP_GOAL = {"accuracy_gap": 0.01, "trainable_fraction": 0.20}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=1500, help="training steps per run")
    p.add_argument("--delay", type=int, default=300, help="full-rank warm-up steps")
    p.add_argument("--frequency", type=int, default=100, help="steps between rank checks")
    p.add_argument("--cutoff", type=float, default=0.15, help="sigma_cutoff_fraction (beta)")
    p.add_argument("--batch-size", type=int, default=64, help="global batch")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate")
    p.add_argument(
        "--layer-width", type=int, default=1024, help="width of the layer in the inference table"
    )
    p.add_argument("--ranks", nargs="+", type=int, default=[16, 64, 256, 512, 1024])
    p.add_argument("--infer-batch", type=int, default=256, help="rows per inference call")
    p.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks" / "oialr.md")
    p.add_argument("--note", default="", help="a line to put at the top of the page")
    return p.parse_args(argv)


def run_digits(args, comm) -> list[dict]:
    rows = []
    for model in args.models:
        for seed in args.seeds:
            for low_rank in (True, False):
                config = TrainConfig(
                    model=model,
                    steps=args.steps,
                    batch_size=args.batch_size,
                    lr=args.lr,
                    low_rank=low_rank,
                    delay=args.delay,
                    stability_frequency=args.frequency,
                    sigma_cutoff_fraction=args.cutoff,
                    seed=seed,
                )
                r = train(config, comm=comm)
                rows.append(
                    {
                        "model": model,
                        "seed": seed,
                        "method": "OIALR" if low_rank else "full rank",
                        "accuracy": r.test_accuracy,
                        "trainable": r.trainable_fraction,
                        "step_ms": 1e3 * r.seconds_per_step,
                        "infer_ms": 1e3 * r.inference_seconds,
                        "merged_infer_ms": 1e3 * r.merged_inference_seconds,
                        "ranks": r.ranks,
                    }
                )
                say(
                    f"{model} seed {seed} {rows[-1]['method']}: acc {r.test_accuracy:.4f}, "
                    f"trainable {100 * r.trainable_fraction:.1f}%"
                )
    return rows


@torch.no_grad()
def run_inference(args) -> list[dict]:
    """Forward time of one width x width layer, factorised at rank r and merged (dense)."""
    torch.manual_seed(0)
    width = args.layer_width
    dense = nn.Linear(width, width)
    x = torch.randn(args.infer_batch, width)
    rows = []
    for r in sorted({min(r, width) for r in args.ranks}):
        low = LowRankLinear.from_linear(dense, factorized=True)
        low.set_factors(low.U[:, :r], low.S.detach()[:r, :r], low.Vh[:r])
        merged = low.to_dense()
        t_low = inference_seconds(low, x, repeats=30)
        t_dense = inference_seconds(merged, x, repeats=30)
        rows.append({"rank": r, "low_ms": 1e3 * t_low, "dense_ms": 1e3 * t_dense})
    return rows


def _stats(values) -> str:
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{statistics.mean(values):.4g} ± {statistics.stdev(values):.2g}"


def render(args, rows, infer_rows, meta) -> str:
    lines = [
        "# oialr benchmark: OIALR vs full-rank training on digits",
        "",
        "Generated by `packages/oialr/benchmarks/bench_digits.py`; rerun it to refresh this page.",
        "",
    ]
    if args.note:
        lines += [f"> **Note:** {args.note}", ""]
    lines += [
        "## Setup",
        "",
        "| | |",
        "|---|---|",
        f"| date | {meta['date']} |",
        f"| ranks | {meta['ranks']} (data-parallel over hpc-comm; batches split over ranks) |",
        f"| machine | {meta['machine']} |",
        f"| load average (1 min) at start / end | {meta['load_start']:.2f} / "
        f"{meta['load_end']:.2f} |",
        f"| torch / oialr | {torch.__version__} / {__version__} |",
        f"| threads per rank | {torch.get_num_threads()} |",
        f"| whole run | {meta['seconds']:.0f} s |",
        "",
        f"Data: scikit-learn digits, {meta['n_train']} train / {meta['n_test']} test images "
        "(8x8, split by the seed). Models: MLP "
        f"64-256-256-10, CNN (three 3x3 convs 32-64-64, two max-pools, 256-256-10 head), ViT "
        f"(2x2 patches, dim 64, 2 blocks, 4 heads, MLP 128). AdamW lr {args.lr} wd 0.01, global "
        f"batch {args.batch_size}, {args.steps} steps, seeds {', '.join(map(str, args.seeds))}. "
        f"OIALR: delay {args.delay}, stability_frequency {args.frequency}, "
        f"sigma_cutoff_fraction {args.cutoff}, layer_share_step 0.1, keep_last_layer. The "
        "baseline has the same seed (initial weights, batches). `trainable` is trainable "
        "parameters at the end over those of the full-rank model; `ms/step` includes OIALR's "
        "checks (SVDs); `infer ms` is the median no-grad forward pass over the test images "
        "(OIALR: the factorised model; `merged` the same weights after `oialr.merge`).",
        "",
        "## Summary (mean ± standard deviation over seeds)",
        "",
        "| model | method | test accuracy | trainable % | ms/step | infer ms | merged infer ms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    verdicts = []
    for model in args.models:
        acc = {}
        for method in ("OIALR", "full rank"):
            rs = [r for r in rows if r["model"] == model and r["method"] == method]
            acc[method] = statistics.mean(r["accuracy"] for r in rs)
            merged = _stats([r["merged_infer_ms"] for r in rs]) if method == "OIALR" else "—"
            lines.append(
                f"| {model} | {method} | {_stats([r['accuracy'] for r in rs])} | "
                f"{_stats([100 * r['trainable'] for r in rs])} | "
                f"{_stats([r['step_ms'] for r in rs])} | {_stats([r['infer_ms'] for r in rs])} | "
                f"{merged} |"
            )
        gap = acc["full rank"] - acc["OIALR"]
        trainable = statistics.mean(
            r["trainable"] for r in rows if r["model"] == model and r["method"] == "OIALR"
        )
        verdicts.append((model, gap, trainable))
    lines += ["", "## Goal", ""]
    lines.append(
        f"Within {100 * MLP_GOAL['accuracy_gap']:g} percentage point of full-rank accuracy with at "
        f"most {100 * MLP_GOAL['trainable_fraction']:g}% of the parameters trainable, on the MLP "
        "(CNN and ViT are reported, not judged)."
    )
    lines += ["", "| model | accuracy gap (full − OIALR), pp | trainable % | result |"]
    lines.append("|---|---:|---:|---|")
    for model, gap, trainable in verdicts:
        if model == "mlp":
            ok = gap <= MLP_GOAL["accuracy_gap"] and trainable <= MLP_GOAL["trainable_fraction"]
            result = "PASS" if ok else "MISS"
        else:
            result = "—"
        lines.append(f"| {model} | {100 * gap:+.2f} | {100 * trainable:.1f} | {result} |")
    lines += [
        "",
        "## Every run",
        "",
        "| model | seed | method | test accuracy | trainable % | ms/step | infer ms | final ranks |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        ranks = ", ".join(f"{k}: {v}" for k, v in r["ranks"].items()) or "—"
        lines.append(
            f"| {r['model']} | {r['seed']} | {r['method']} | {r['accuracy']:.4f} | "
            f"{100 * r['trainable']:.1f} | {r['step_ms']:.2f} | {r['infer_ms']:.3f} | {ranks} |"
        )
    lines += [
        "",
        "## Inference: one factorised layer against its merged dense twin",
        "",
        f"A {args.layer_width} x {args.layer_width} `LowRankLinear` truncated to rank r, "
        f"`factorized=True` (x·Vᵀ·Sᵀ·Uᵀ, three thin products), against `to_dense()` of the same "
        f"weights (one x·Wᵀ); batch {args.infer_batch}, median of 30 no-grad calls, rank 0. "
        "Multiply-adds per row: r(m + n) + r² against mn.",
        "",
        "| rank r | (r(m+n)+r²)/(mn) | factorised ms | dense ms | dense / factorised |",
        "|---:|---:|---:|---:|---:|",
    ]
    w = args.layer_width
    for r in infer_rows:
        cost = (r["rank"] * 2 * w + r["rank"] ** 2) / (w * w)
        lines.append(
            f"| {r['rank']} | {cost:.3f} | {r['low_ms']:.3f} | "
            f"{r['dense_ms']:.3f} | {r['dense_ms'] / r['low_ms']:.2f} |"
        )
    lines.append("")
    return "\n".join(lines)


def _machine() -> str:
    cores = os.cpu_count()
    return f"{platform.processor() or platform.machine()}, {cores} cores, {platform.system()}"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".oialr-", suffix=".md")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv=None) -> None:
    args = parse_args(argv)
    comm = hc.world()
    load_start, start = os.getloadavg()[0], time.perf_counter()
    rows = run_digits(args, comm)
    infer_rows = run_inference(args) if comm.rank == 0 else []
    comm.bcast_obj(None)  # the other ranks wait for rank 0's inference table
    x_train, _, x_test, _ = load_digits(args.seeds[0])
    meta = {
        "n_train": len(x_train),
        "n_test": len(x_test),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "ranks": comm.size,
        "machine": _machine(),
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
        "seconds": time.perf_counter() - start,
    }
    if comm.rank == 0:
        text = render(args, rows, infer_rows, meta)
        _write_atomically(args.output, text)
        print(text)


if __name__ == "__main__":
    main()
