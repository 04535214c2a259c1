"""Time per step and peak memory of backprop, sequential-jvp and vectorised forward gradients.

The issue's setting: an MLP of 4 hidden layers of width 1024, batch 64, k = 1, 4, 16, 64. Every
(method, k) runs in its own subprocess, so its peak resident memory is its own. Times are also
expressed in forward-pass equivalents (the time of one no-grad forward pass of the same model and
batch) and against the compute floor: BP ~ 3 passes, vectorised FG ~ 1 + 2k (the primal once,
two products per tangent), the sequential loop ~ 3k (the primal again for every tangent).

Run from the repository root (about 15 min on an idle core; do not run it on a shared machine):
    python packages/fwdgrad/benchmarks/bench_step.py --output docs/benchmarks/fwdgrad.md
A smoke run that leaves the docs alone:
    python packages/fwdgrad/benchmarks/bench_step.py --width 64 --ks 1,4 --repeat 2 \\
        --chunk-sizes 2 --output /tmp/fwdgrad.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
OUT = ROOT / "docs" / "benchmarks" / "fwdgrad.md"


def _rss_bytes() -> int:
    """Current resident set size (Linux); 0 where /proc is missing."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0), so one-time costs of the warm-up steps
    (lazily loaded code, allocator pools) are not counted; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _setup(cfg: dict, width: int):
    """(model, x, step, fg) for one (method, k) at ``width``; fg is None for forward and bp."""
    import torch
    import torch.nn.functional as F

    import fwdgrad

    torch.manual_seed(0)
    layers = []
    for _ in range(cfg["depth"]):
        layers += [torch.nn.Linear(width, width), torch.nn.Tanh()]
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width, 10))
    x = torch.randn(cfg["batch"], width)
    y = torch.randint(0, 10, (cfg["batch"],))
    method, fg = cfg["method"], None

    if method == "forward":

        def step():
            with torch.no_grad():
                F.cross_entropy(model(x), y)

    elif method == "bp":

        def step():
            model.zero_grad(set_to_none=False)
            F.cross_entropy(model(x), y).backward()

    else:
        fg = fwdgrad.ForwardGradientModel(
            model,
            k=cfg["k"],
            aggregation=cfg["aggregation"],
            tangents=cfg["tangents"],
            seed=0,
            chunk_size=cfg["chunk_size"],
            vectorize=method != "sequential",
            linear_path=method == "vectorised",
        )

        def step():
            fg.fill_grad(lambda run: F.cross_entropy(run(x), y))

    return model, x, step, fg


def worker(cfg: dict) -> dict:
    """One (method, k) measurement in this process; returns times (s) and memory (bytes)."""
    import torch

    torch.set_num_threads(cfg["threads"])
    method, k = cfg["method"], cfg["k"]
    # Two steps of the same method on a width-8 model first load every piece of code it runs
    # (lazily imported modules, kernels), which would otherwise count as its memory.
    tiny_step = _setup(cfg, 8)[2]
    tiny_step()
    tiny_step()
    del tiny_step
    model, x, step, fg = _setup(cfg, cfg["width"])

    # The baseline: model and batch built and the matmul code loaded by one no-grad forward
    # pass, before any step. The peak then counts what the method holds between steps (BP's
    # gradients, the matmul path's tangent buffers) as well as what one step allocates.
    with torch.no_grad():
        model(x)
    base = _rss_bytes()
    if not _reset_peak():
        base = 0  # no way to measure this step's peak alone
    for _ in range(cfg["warmup"]):
        step()
    path = fg.last_path if method not in ("forward", "bp") else ""
    # a no-grad forward pass before every timed step, in the same process: the step's own unit
    # of forward-pass equivalents, so drift of the machine between subprocesses cancels
    cpu, wall, fwd_cpu, fwd_wall = [], [], [], []
    for _ in range(cfg["repeat"]):
        c0, w0 = time.process_time(), time.perf_counter()
        with torch.no_grad():
            model(x)
        fwd_cpu.append(time.process_time() - c0)
        fwd_wall.append(time.perf_counter() - w0)
        c0, w0 = time.process_time(), time.perf_counter()
        step()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return {
        **cfg,
        "n": sum(p.numel() for p in model.parameters()),
        "cpu_s": statistics.median(cpu),
        "wall_s": statistics.median(wall),
        "fwd_cpu_s": statistics.median(fwd_cpu),
        "fwd_wall_s": statistics.median(fwd_wall),
        "peak_extra_bytes": max(0, _peak_rss_bytes() - base) if base else None,
        "chunk": _largest_chunk(model, k, cfg["chunk_size"], path, cfg["tangents"]),
        "path": path,
    }


def _largest_chunk(model, k: int, chunk_size: int | None, path: str, tangents: str) -> int:
    """The most tangents in one chunk: the estimator splits k evenly into chunks of at most
    ``chunk_size`` (default: as many as fit its memory bound). The matmul path (``linear``)
    keeps Rademacher signs as int8 when they fit the bound, and then needs no chunks."""
    from fwdgrad.estimator import DEFAULT_CHUNK_BYTES, chunk_bounds

    params = list(model.parameters())
    n_bytes = sum(p.numel() * p.element_size() for p in params)
    budget = chunk_size * n_bytes if chunk_size else DEFAULT_CHUNK_BYTES
    if (
        path == "linear"
        and tangents == "rademacher"
        and k * sum(p.numel() for p in params) <= budget
    ):
        return k
    bounds = chunk_bounds(k, chunk_size or max(1, DEFAULT_CHUNK_BYTES // n_bytes))
    return max(stop - start for start, stop in bounds)


def run_worker(cfg: dict) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(cfg["threads"])}
    out = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(cfg)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def floor_passes(method: str, k: int) -> float:
    return {"forward": 1, "bp": 3, "sequential": 3 * k, "vectorised": 1 + 2 * k, "vmap": 1 + 2 * k}[
        method
    ]


def render(rows: list[dict], args, seconds: float, load: tuple[float, float]) -> str:
    import torch

    import fwdgrad

    fwd = next(r for r in rows if r["method"] == "forward")
    bp = next(r for r in rows if r["method"] == "bp")
    clock = "cpu_s" if args.clock == "cpu" else "wall_s"
    seq = {r["k"]: r for r in rows if r["method"] == "sequential"}
    lines = [
        "# fwdgrad benchmarks",
        "",
        "Generated by `packages/fwdgrad/benchmarks/bench_step.py`; rerun it to refresh this page.",
        "",
    ]
    if args.note:
        lines += [f"> **Note:** {args.note}", ""]
    lines += [
        "## Setup",
        "",
        "| | |",
        "|---|---|",
        f"| date | {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} |",
        f"| command | `python {' '.join(sys.argv)}` |",
        f"| model | MLP, {args.depth} hidden layers of width {args.width}, tanh, "
        f"{fwd['n']} parameters |",
        f"| batch | {args.batch} |",
        f"| aggregation / tangents | {args.aggregation} / {args.tangents} |",
        f"| chunk size | {args.chunk_size or 'auto (512 MiB of tangents)'} |",
        f"| threads | {args.threads} |",
        f"| statistic | median of {args.repeat} steps after {args.warmup} warm-up, "
        f"{'process CPU time' if args.clock == 'cpu' else 'wall time'} |",
        f"| machine | {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()} |",
        f"| load average (1 min) at start / end | {load[0]:.2f} / {load[1]:.2f} |",
        f"| torch / fwdgrad / Python | {torch.__version__} / {fwdgrad.__version__} / "
        f"{platform.python_version()} |",
        f"| duration | {seconds:.0f} s |",
        "",
        "## Time per step and peak memory",
        "",
        "`fwd ms` is a no-grad forward pass of the model, timed in the same process right "
        "before each timed step (median), and `fwd eq.` the step time over it, so that the "
        "machine's drift between the rows' processes cancels; `floor` the passes the method "
        "cannot avoid (BP 3, vectorised 1 + 2k, sequential 3k); `x floor` their ratio (goal for "
        "the vectorised estimate: at most 1.3); `seq/vec` how much faster the vectorised pass is "
        "than the sequential loop, in forward-pass equivalents (goal at k = 16: at least 1.4). "
        "Memory: peak resident memory over the warm-up and timed steps above the resident "
        "memory before the first step (model and batch built, one no-grad forward pass run), so "
        "it includes what a method keeps between steps (gradients, tangent buffers), and its "
        "ratio to BP's; `chunk` is the most tangents in one vectorised pass (k is split evenly "
        "under the 512 MiB bound; the matmul path keeps Rademacher signs as int8, 1 byte per "
        "entry, when all k fit in it, and then needs no chunks). "
        "`vectorised` is the model API's default: the matmul path for this stack of Linear "
        "layers; `vmap` the generic path (`linear_path=False`: `torch.func.jvp` under "
        "`torch.func.vmap`), which other modules take; `sequential` one dual-number pass per "
        "tangent (`vectorize=False`).",
        "",
        "| method | k | chunk | ms/step | fwd ms | fwd eq. | floor | x floor | seq/vec "
        "| peak MiB | x BP mem |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        t = r[clock]
        eq = t / r["fwd_" + clock]
        floor = floor_passes(r["method"], r["k"])
        speed = ""
        if r["method"] in ("vectorised", "vmap") and r["k"] in seq and r["chunk_size"] is None:
            other = seq[r["k"]]
            speed = f"{other[clock] / other['fwd_' + clock] / eq:.2f}"
        mem = r["peak_extra_bytes"]
        mem_s = "-" if mem is None else f"{mem / 2**20:.1f}"
        ratio = (
            "-" if not mem or not bp["peak_extra_bytes"] else f"{mem / bp['peak_extra_bytes']:.2f}"
        )
        fg = r["method"] not in ("forward", "bp")
        k, chunk = (r["k"], r["chunk"]) if fg else ("", "")
        lines.append(
            f"| {r['method']} | {k} | {chunk} | {1e3 * t:.2f} | {1e3 * r['fwd_' + clock]:.2f} "
            f"| {eq:.1f} | {floor} | {eq / floor:.2f} "
            f"| {speed} | {mem_s} | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--ks", default="1,4,16,64")
    p.add_argument("--aggregation", default="projection", choices=["mean", "projection"])
    p.add_argument("--tangents", default="normal", choices=["normal", "rademacher"])
    p.add_argument("--chunk-size", type=int, default=None, help="default: auto")
    p.add_argument(
        "--chunk-sizes",
        default="",
        help="extra vectorised rows at the largest k with these chunk sizes (memory vs chunk)",
    )
    p.add_argument(
        "--methods",
        default="bp,sequential,vmap,vectorised",
        help="bp, sequential (dual numbers), vmap (generic vectorised path), vectorised "
        "(the model API's default: the matmul path for Linear stacks)",
    )
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    p.add_argument("--note", default="")
    p.add_argument("--output", default=str(OUT))
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    ks = [int(v) for v in args.ks.split(",")]
    methods = ["forward"] + [m.strip() for m in args.methods.split(",")]
    common = {
        key: getattr(args, key)
        for key in ("width", "depth", "batch", "aggregation", "tangents", "chunk_size")
    }
    common.update(repeat=args.repeat, warmup=args.warmup, threads=args.threads)
    began, load0 = time.time(), os.getloadavg()[0]
    rows = []
    for method in methods:
        for k in ks if method in ("sequential", "vmap", "vectorised") else [1]:
            row = run_worker({**common, "method": method, "k": k})
            rows.append(row)
            ms = 1e3 * row[args.clock + "_s"]
            print(f"{method:>11} k={k:<3} {ms:9.2f} ms {row['path']}", flush=True)
    for chunk in [int(v) for v in args.chunk_sizes.split(",") if v.strip()]:
        row = run_worker({**common, "method": "vectorised", "k": max(ks), "chunk_size": chunk})
        rows.append(row)
        print(f" vectorised k={max(ks)} chunk={chunk} {1e3 * row[args.clock + '_s']:9.2f} ms")
    text = render(rows, args, time.time() - began, (load0, os.getloadavg()[0]))
    path = Path(args.output)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
