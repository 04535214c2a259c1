"""Benchmark: every hyde method beside HyDe's implementation of the same method (PyPI
``hyde-images``), BM4D and scikit-image's band-wise wavelet and TV denoisers, on one generated
cube at several Gaussian noise levels and mixed noise.

    python packages/hyde/benchmarks/bench_methods.py --size 128 128 64
    python packages/hyde/benchmarks/bench_methods.py --size 32 32 16 --only hyres --repeats 1

HyDe's distribution imports as ``hyde`` too, so HyDe, BM4D and scikit-image run in a venv of
their own (``--anchor-python``; see docs/benchmarks/hyde.md for how it is built) through
``anchor_worker.py``, on the same noisy cubes, saved as float32 .npy files; every method gets
float32 input. Each method runs on every level ``--repeats`` times (minimum wall time kept);
hyde's and HyDe's runs of a method follow each other, so both see the same machine load. PSNR
is the band mean with data range 1, SSIM the band mean of scikit-image's, SAM in degrees; all
are computed here from the saved outputs. Prints markdown tables; ``--json`` keeps the numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import hyde
from hyde import noise_models as nm

WORKER = Path(__file__).with_name("anchor_worker.py")
DEFAULT_ANCHOR = os.environ.get("HYDE_ANCHOR_PYTHON", "/work/bench-venvs/hyde/bin/python")

# (row label, hyde method name, its parameters, HyDe's implementation in the worker or None)
METHODS = [
    ("hysime", "hysime", {}, None),
    ("hyres", "hyres", {}, "HyDe hyres"),
    ("hyminor", "hyminor", {}, "HyDe hyminor"),
    ("forpdn", "forpdn", {}, "HyDe forpdn"),
    ("wsrrr", "wsrrr", {}, "HyDe wsrrr"),
    ("otvca", "otvca", {}, "HyDe otvca"),
    ("fasthyde", "fasthyde", {}, "HyDe fasthyde"),
    ("fasthyde (non-iid)", "fasthyde", {"iid": False}, "HyDe fasthyde (non-iid)"),
    ("l1hymixde", "l1hymixde", {}, "HyDe l1hymixde"),
    ("lrmr", "lrmr", {}, None),
    ("nailrma", "nailrma", {}, None),
    ("qrnn3d (tiny weights)", "qrnn3d", {}, None),
    ("memnet (tiny weights)", "memnet", {}, None),
]
REFERENCES = ["BM4D", "skimage wavelet (band-wise)", "skimage TV (band-wise)"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, nargs=3, default=(128, 128, 64))
    parser.add_argument("--endmembers", type=int, default=5)
    parser.add_argument("--sigma", type=float, nargs="+", default=[0.02, 0.05, 0.1])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2, help="runs per timing (minimum kept)")
    parser.add_argument("--only", help="comma-separated row labels or substrings to run")
    parser.add_argument(
        "--anchor-python",
        default=DEFAULT_ANCHOR,
        help="python of the venv with hyde-images, bm4d and scikit-image "
        "(default: $HYDE_ANCHOR_PYTHON or /work/bench-venvs/hyde/bin/python)",
    )
    parser.add_argument("--no-anchor", action="store_true", help="hyde's methods only")
    parser.add_argument("--no-bm4d", action="store_true", help="skip BM4D (slow)")
    parser.add_argument("--bm4d-levels", help="comma-separated level labels for BM4D only")
    parser.add_argument(
        "--bm4d-repeats", type=int, help="runs per BM4D timing (default: --repeats)"
    )
    parser.add_argument("--json", help="write every number to this file")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if not args.no_anchor and not Path(args.anchor_python).exists():
        parser.error(
            f"--anchor-python: {args.anchor_python} does not exist. Build the anchor venv as "
            "docs/benchmarks/hyde.md says, point --anchor-python (or $HYDE_ANCHOR_PYTHON) at "
            "its python, or pass --no-anchor."
        )
    return args


def make_levels(cube: torch.Tensor, sigmas, seed: int):
    """(label, noisy float32 cube, sigma handed to the oracle references) per noise level."""
    levels = [(f"sigma = {s}", nm.add_gaussian(cube, s, seed=seed + 1), s) for s in sigmas]
    mixed = nm.add_mixture(cube, seed=seed + 1, amounts=(0.1, 0.3))
    # the oracle sigma of mixed noise: RMS of its band-wise Gaussian part (same draw)
    band = nm.band_sigmas(cube.shape[-1], 0.0, 0.1, seed + 1)
    levels.append(("mixed", mixed, float(band.pow(2).mean().sqrt())))
    return [(label, noisy.to(torch.float32), s) for label, noisy, s in levels]


def run_ours(method: str, params: dict, levels, repeats: int) -> dict:
    """Outputs and minimum times of hyde's ``method`` on every level."""
    results = {}
    for label, noisy, _ in levels:
        best, out = math.inf, None
        for _ in range(repeats):
            denoiser = hyde.methods.get(method, **params)
            start = time.perf_counter()
            out = denoiser(noisy)
            best = min(best, time.perf_counter() - start)
        results[label] = {"output": out.to(torch.float64), "time": best}
    return results


def run_anchor(python: str, names, levels, paths, repeats: int, rank: int, workdir: Path) -> dict:
    """Run ``names`` in the anchor venv on the saved noisy cubes; outputs and minimum times."""
    out_dir = Path(tempfile.mkdtemp(dir=workdir))
    job = {
        "inputs": {label: str(paths[label]) for label, _, _ in levels},
        "sigma": {label: s for label, _, s in levels},
        "rank": rank,
        "methods": list(names),
        "repeats": repeats,
        "out_dir": str(out_dir),
    }
    job_file = out_dir / "job.json"
    job_file.write_text(json.dumps(job))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [python, str(WORKER), str(job_file)], cwd=out_dir, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"anchor worker failed:\n{proc.stderr[-3000:]}")
    report = json.loads((out_dir / "times.json").read_text())
    results = {}
    for key, entry in report["times"].items():
        name, label = key.split(" | ")
        output = torch.from_numpy(np.load(entry["output"]))
        results.setdefault(name, {})[label] = {"output": output, "time": entry["time"]}
    for key, message in report["errors"].items():
        name, label = key.split(" | ")
        results.setdefault(name, {})[label] = {"error": message}
    return {"results": results, "versions": report["versions"]}


def score(clean: torch.Tensor, entry: dict) -> dict:
    """PSNR, SSIM, SAM, ERGAS and time of one output (NaN metrics if it has NaNs or failed)."""
    if "error" in entry:
        return {"psnr": math.nan, "ssim": math.nan, "sam": math.nan, "time": math.nan}
    out = entry["output"]
    if not torch.isfinite(out).all():
        return {"psnr": math.nan, "ssim": math.nan, "sam": math.nan, "time": entry["time"]}
    metrics = hyde.evaluate(clean, out)
    return {k: float(metrics[k]) for k in ("psnr", "ssim", "sam")} | {"time": entry["time"]}


def fmt(value, digits=2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return f"{value:.{digits}f}"


def fmt_time(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3g}"


def table(label: str, rows: dict, noisy: dict) -> str:
    """One markdown table for one noise level."""
    head = (
        "| method | hyde PSNR | anchor PSNR | hyde SSIM | anchor SSIM | hyde SAM | anchor SAM "
        "| hyde time (s) | anchor time (s) | time hyde / anchor |\n|" + "---|" * 10
    )
    lines = [f"### {label}", "", head]
    lines.append(
        f"| noisy input | {fmt(noisy['psnr'])} | | {fmt(noisy['ssim'], 4)} | "
        f"| {fmt(noisy['sam'])} | | | | |"
    )
    for name, row in rows.items():
        ours, anchor = row.get("hyde"), row.get("HyDe")
        ratio = None
        if ours and anchor and anchor["time"] and not math.isnan(anchor["time"]):
            ratio = ours["time"] / anchor["time"]

        def cell(entry, key, digits=2):
            return fmt(entry[key], digits) if entry else "-"

        lines.append(
            f"| {name} | {cell(ours, 'psnr')} | {cell(anchor, 'psnr')} "
            f"| {cell(ours, 'ssim', 4)} | {cell(anchor, 'ssim', 4)} "
            f"| {cell(ours, 'sam')} | {cell(anchor, 'sam')} "
            f"| {fmt_time(ours['time']) if ours else '-'} "
            f"| {fmt_time(anchor['time']) if anchor else '-'} | {fmt(ratio)} |"
        )
    return "\n".join(lines)


def goals(levels, rows_by_level) -> str:
    """The issue's goals per level: hyde >= HyDe per method, best hyde vs BM4D."""
    lines = ["### goals", ""]
    lines.append(
        "| level | methods with hyde PSNR < HyDe's | methods slower than HyDe's "
        "| best hyde method (PSNR) | BM4D PSNR | BM4D time / best hyde's time |"
    )
    lines.append("|" + "---|" * 6)
    for label, _, _ in levels:
        rows = rows_by_level[label]
        worse, slower, best = [], [], None
        for name, row in rows.items():
            ours, anchor = row.get("hyde"), row.get("HyDe")
            if ours and (best is None or ours["psnr"] > best[1]["psnr"]):
                best = (name, ours)
            if ours and anchor:
                if not ours["psnr"] >= anchor["psnr"] and not math.isnan(anchor["psnr"]):
                    worse.append(f"{name} ({fmt(ours['psnr'] - anchor['psnr'])} dB)")
                if ours["time"] > anchor["time"]:
                    slower.append(f"{name} (x{fmt(ours['time'] / anchor['time'])})")
        bm4d = rows.get("BM4D", {}).get("ref")
        speed = bm4d["time"] / best[1]["time"] if bm4d and best else None
        lines.append(
            f"| {label} | {', '.join(worse) or 'none'} | {', '.join(slower) or 'none'} "
            f"| {best[0]} ({fmt(best[1]['psnr'])}) | {fmt(bm4d['psnr']) if bm4d else '-'} "
            f"| {fmt(speed, 1) if speed else '-'} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    rows_n, cols_n, bands_n = args.size
    clean = hyde.make_cube(
        rows_n, cols_n, bands_n, args.endmembers, seed=args.seed, dtype=torch.float64
    )
    levels = make_levels(clean, args.sigma, args.seed)
    keys = [k.strip() for k in args.only.split(",")] if args.only else None
    wanted = lambda name: keys is None or any(k in name for k in keys)  # noqa: E731
    rows_by_level = {label: {} for label, _, _ in levels}
    versions = {}
    with tempfile.TemporaryDirectory(prefix="hyde-bench-") as tmp:
        workdir = Path(tmp)
        paths = {}
        for i, (label, noisy, _) in enumerate(levels):
            paths[label] = workdir / f"noisy_{i}.npy"
            np.save(paths[label], noisy.numpy())
        for label_row, method, params, anchor in METHODS:
            if not wanted(label_row):
                continue
            print(f"running {label_row} ...", file=sys.stderr, flush=True)
            ours = run_ours(method, params, levels, args.repeats)
            for label, _, _ in levels:
                rows_by_level[label].setdefault(label_row, {})["hyde"] = score(clean, ours[label])
            if anchor and not args.no_anchor:
                run = run_anchor(
                    args.anchor_python,
                    [anchor],
                    levels,
                    paths,
                    args.repeats,
                    args.endmembers,
                    workdir,
                )
                versions = run["versions"]
                for label, _, _ in levels:
                    entry = run["results"][anchor][label]
                    rows_by_level[label][label_row]["HyDe"] = score(clean, entry)
        if not args.no_anchor:
            refs = [r for r in REFERENCES if wanted(r) and not (args.no_bm4d and r == "BM4D")]
            for ref in refs:
                print(f"running {ref} ...", file=sys.stderr, flush=True)
                chosen = levels
                if ref == "BM4D" and args.bm4d_levels:
                    names = [s.strip() for s in args.bm4d_levels.split(",")]
                    chosen = [lv for lv in levels if lv[0] in names]
                repeats = args.bm4d_repeats if ref == "BM4D" and args.bm4d_repeats else args.repeats
                run = run_anchor(
                    args.anchor_python, [ref], chosen, paths, repeats, args.endmembers, workdir
                )
                versions = run["versions"]
                for label, _, _ in chosen:
                    entry = run["results"][ref][label]
                    rows_by_level[label][ref] = {"ref": score(clean, entry)}
    print(
        f"generated {rows_n} x {cols_n} x {bands_n} cube, {args.endmembers} endmembers, "
        f"seed {args.seed}; anchor versions: {json.dumps(versions)}\n"
    )
    for label, noisy, _ in levels:
        noisy_metrics = score(clean, {"output": noisy.to(torch.float64), "time": 0.0})
        rows = {
            n: (r if "ref" not in r else {"HyDe": r["ref"]})
            for n, r in rows_by_level[label].items()
        }
        print(table(label, rows, noisy_metrics) + "\n")
    if not args.no_anchor:
        print(goals(levels, rows_by_level))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"size": args.size, "versions": versions, "levels": rows_by_level}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
