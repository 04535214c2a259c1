"""propulate-lite vs Propulate 1.2.2 vs Optuna 5.0 (TPE, CMA-ES on a shared journal file).

Every optimiser runs at 2 ranks (2 processes) in this same script, on the same functions and
budgets; the anchors run in their own venv (default /work/bench-venvs/propulate, holding
propulate==1.2.2, optuna==5.0.0, cmaes, mpi4py, mpich). Results go to a JSON-lines file as they
come, and the markdown table to docs/benchmarks/propulate-lite.md (written atomically).

    python packages/propulate-lite/benchmarks/run_benchmark.py            # the full plan
    python packages/propulate-lite/benchmarks/run_benchmark.py --table    # table from results
    python packages/propulate-lite/benchmarks/run_benchmark.py --smoke    # tiny check of the set-up
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
DOC = REPO / "docs" / "benchmarks" / "propulate-lite.md"
RANKS = 2

# (function, evaluations, sleep ms, seeds, optimisers)
ALL = ("propulate-lite", "propulate-lite-cmaes", "propulate", "optuna-tpe", "optuna-cmaes")
OURS_AND_PROPULATE = ALL[:3]
PLAN = [
    *[(fn, 1000, 0, (0, 1, 2), ALL) for fn in ("sphere", "rosenbrock", "rastrigin")],
    *[
        (fn, 10000, 0, (0, 1, 2), OURS_AND_PROPULATE)
        for fn in ("sphere", "rosenbrock", "rastrigin")
    ],
    *[(fn, 10000, 0, (0, 1, 2), ("optuna-cmaes",)) for fn in ("sphere", "rosenbrock", "rastrigin")],
    ("sphere", 1000, 10, (0,), ALL),
    ("sphere", 10000, 10, (0,), OURS_AND_PROPULATE),
]
# --smoke: every optimiser once with a tiny budget, to check that the set-up works
SMOKE = [("sphere", 40, 0, (0,), ALL), ("sphere", 20, 10, (0,), ALL)]


def command(optimiser: str, fn: str, evals: int, seed: int, sleep: float, anchor: Path):
    base = ["-n", str(RANKS)]
    if optimiser.startswith("propulate-lite"):
        mpiexec = shutil.which("mpiexec") or "mpiexec"
        return [
            mpiexec,
            *base,
            sys.executable,
            str(HERE / "_lite_worker.py"),
            fn,
            str(evals),
            str(seed),
            str(sleep),
            "cmaes" if optimiser.endswith("cmaes") else "ga",
        ]
    python, mpiexec = str(anchor / "bin" / "python"), str(anchor / "bin" / "mpiexec")
    if optimiser == "propulate":
        return [
            mpiexec,
            *base,
            python,
            str(HERE / "_propulate_worker.py"),
            fn,
            str(evals),
            str(seed),
            str(sleep),
        ]
    sampler = optimiser.split("-")[1]
    return [
        mpiexec,
        *base,
        python,
        str(HERE / "_optuna_worker.py"),
        sampler,
        fn,
        str(evals),
        str(seed),
        str(sleep),
    ]


def run_case(optimiser, fn, evals, seed, sleep, anchor, timeout) -> dict:
    row = {"optimiser": optimiser, "function": fn, "evals": evals, "seed": seed, "sleep_ms": sleep}
    env = dict(os.environ, OMP_NUM_THREADS="1", HPC_COMM_THREADS="1")
    try:
        done = subprocess.run(
            command(optimiser, fn, evals, seed, sleep, anchor),
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
        if done.returncode or not lines:
            row["error"] = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        else:
            row.update(json.loads(lines[-1]))
    except subprocess.TimeoutExpired:
        row["error"] = f"timeout after {timeout} s"
    return row


def load1() -> float:
    return os.getloadavg()[0]


def run_plan(results: Path, anchor: Path, timeout: float, only: str | None, plan=PLAN) -> None:
    with results.open("a") as out:
        out.write(json.dumps({"setup": "start", "load1": load1(), "time": time.time()}) + "\n")
        for fn, evals, sleep, seeds, optimisers in plan:
            for optimiser in optimisers:
                if only and optimiser != only:
                    continue
                for seed in seeds:
                    row = run_case(optimiser, fn, evals, seed, sleep, anchor, timeout)
                    print(json.dumps(row), flush=True)
                    out.write(json.dumps(row) + "\n")
                    out.flush()
        out.write(json.dumps({"setup": "end", "load1": load1(), "time": time.time()}) + "\n")


def table(results: Path) -> str:
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    loads = [r["load1"] for r in rows if "setup" in r]
    runs = [r for r in rows if "setup" not in r]
    groups: dict[tuple, list] = {}
    for r in runs:
        groups.setdefault((r["function"], r["evals"], r["sleep_ms"], r["optimiser"]), []).append(r)
    lines = [
        "| function | evals | loss | optimiser | seeds | wall (s) | evals/s | overhead/eval (ms) "
        "| best loss (per seed) | wall vs propulate-lite |",
        "|---|---:|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for (fn, evals, sleep, opt), group in sorted(groups.items(), key=_order):
        ok = [r for r in group if "wall" in r]
        if not ok:
            lines.append(
                f"| {fn} | {evals} | {_loss(sleep)} | {opt} | {len(group)} | "
                f"{group[0]['error']} | | | | |"
            )
            continue
        wall = statistics.median(r["wall"] for r in ok)
        over = statistics.median(
            (r["wall"] - r["loss_seconds"]) / (evals / RANKS) * 1000 for r in ok
        )
        best = ", ".join(f"{r['best']:.2g}" for r in sorted(ok, key=lambda r: r["seed"]))
        ours = [
            r["wall"] for r in groups.get((fn, evals, sleep, "propulate-lite"), []) if "wall" in r
        ]
        ratio = f"{wall / statistics.median(ours):.1f}x" if ours else "n/a"
        lines.append(
            f"| {fn} | {evals} | {_loss(sleep)} | {opt} | {len(ok)} | {wall:.2f} | "
            f"{evals / wall:.0f} | {over:.3f} | {best} | {ratio} |"
        )
    return _document("\n".join(lines), loads)


def _order(item):
    (fn, evals, sleep, opt), _ = item
    return (sleep, evals, ("sphere", "rosenbrock", "rastrigin").index(fn), ALL.index(opt))


def _loss(sleep):
    return "free" if not sleep else f"sleeps {sleep:g} ms"


def _document(body: str, loads: list[float]) -> str:
    load_text = ", ".join(f"{x:.1f}" for x in loads) or "not recorded"
    return f"""# propulate-lite benchmark

propulate-lite against Propulate 1.2.2 (PyPI) and Optuna 5.0.0 (TPE and CMA-ES samplers, two
processes sharing a `JournalFileBackend` storage: Optuna's parallel setup), all at **2 ranks /
2 processes**, on the 2-D sphere, Rosenbrock and Rastrigin functions, with the same budget of
evaluations. Propulate and propulate-lite use their default propagator with pop_size 4
(2 x ranks); `propulate-lite-cmaes` is propulate-lite with its CMA-ES propagator. Both
write a checkpoint with their default settings (Propulate: its pickle per generation;
propulate-lite: every evaluated individual written at once to a binary journal, appended to
its HDF5 file at most once a second, `checkpoint_interval=1.0`: a killed run loses nothing).

## Setup

- Machine: 2 cores ({platform.machine()}, Python {platform.python_version()}); 1-minute load
  average at the start and the end of the run: {load_text} (above 2, other work shared the
  cores and the times are inflated). The ratios measured in the same run are the meaningful
  part.
- MPI: MPICH from PyPI for both sides (each venv its own copy).
- wall: median over seeds, from a barrier before the optimisation to a barrier after it
  (process start-up and imports are excluded). evals/s = evaluations / wall.
  overhead/eval = (wall - the slowest rank's time inside the loss) / evaluations per rank.
- best loss: the best loss found, one value per seed (optimum 0 for all three functions).
- Script: `packages/propulate-lite/benchmarks/run_benchmark.py`.

## Results

{body}

Runs that did not finish in the time limit are listed with their error; a missing row means
that combination was not run (see the plan in the script).
"""


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", default="/tmp/propulate-lite/bench.jsonl")
    parser.add_argument("--anchor-venv", default="/work/bench-venvs/propulate")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    parser.add_argument("--only", choices=ALL, help="run one optimiser only")
    parser.add_argument("--table", action="store_true", help="only rebuild the table")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny budgets, results and table under /tmp/propulate-lite-smoke (not the docs)",
    )
    args = parser.parse_args(argv)
    results, doc = Path(args.results), DOC
    if args.smoke:
        smoke_dir = Path("/tmp/propulate-lite-smoke")
        results, doc = smoke_dir / "bench.jsonl", smoke_dir / "propulate-lite.md"
    results.parent.mkdir(parents=True, exist_ok=True)
    if not args.table:
        plan = SMOKE if args.smoke else PLAN
        run_plan(results, Path(args.anchor_venv), args.timeout, args.only, plan)
    write_atomically(doc, table(results))
    print(f"wrote {doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
