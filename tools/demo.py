"""The suite's demo: each package's main job on small data, then a one-screen summary table.

Run it plain (one process, no launcher) and under `mpiexec -n 2`; `nox -s demo` does both.
Packages that are still skeletons report so instead of pretending.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable

import torch

import hpc_comm as hc

comm = hc.world()


def say(text: str = "") -> None:
    if comm.rank == 0:
        print(text, flush=True)


def demo_hpc_comm() -> str:
    from hpc_comm import selftest

    results = selftest.run(comm)
    failed = [r.name for r in results if not r.passed]
    if failed:
        raise RuntimeError(f"selftest failed: {', '.join(failed)}")
    grad = torch.full((1 << 18,), float(comm.rank + 1))  # a 1 MiB "gradient"
    with hc.traffic() as t:
        start = time.perf_counter()
        for _ in range(10):
            comm.allreduce(grad.clone())
        elapsed = (time.perf_counter() - start) / 10
    mib = t.bytes_sent["allreduce"] / 2**20
    return (
        f"{len(results)}/{len(results)} selftest checks; 1 MiB allreduce "
        f"{elapsed * 1e3:.2f} ms, {mib:.0f} MiB handed to the backend in 10 calls"
    )


def skeleton(package: str, module: str) -> Callable[[], str]:
    def run() -> str:
        mod = importlib.import_module(module)
        return f"skeleton {mod.__version__}: main job not implemented yet"

    run.__name__ = package
    return run


DEMOS: list[tuple[str, str, Callable[[], str]]] = [
    ("hpc-comm", "selftest + allreduce", demo_hpc_comm),
    *[
        (dist, "import", skeleton(dist, mod))
        for dist, mod in [
            ("heatlike", "heatlike"),
            ("daso", "daso"),
            ("abtrain", "abtrain"),
            ("oialr", "oialr"),
            ("fwdgrad", "fwdgrad"),
            ("f3", "f3"),
            ("propulate-lite", "propulate_lite"),
            ("hyde", "hyde"),
        ]
    ],
]


def main() -> int:
    say(
        f"hpc-ml suite demo: {comm.backend} backend, {comm.size} rank(s), "
        f"threads per rank: {(hc.threads() and hc.threads().threads) or 'default'}\n"
    )
    rows, failures = [], 0
    for package, what, run in DEMOS:
        start = time.perf_counter()
        try:
            result = run()
        except Exception as exc:  # one failing demo must not hide the others
            result, failures = f"FAILED: {type(exc).__name__}: {exc}", failures + 1
        rows.append((package, what, result, f"{time.perf_counter() - start:.2f} s"))
    header = ("package", "what ran", "key result", "time")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        say("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
