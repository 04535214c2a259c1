"""The suite's demo: each package's main job on small data, then a one-screen summary table.

Run it plain (one process, no launcher) and under `mpiexec -n 2`; `nox -s demo` does both.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch

import hpc_comm as hc

comm = hc.world()
logging.disable(logging.INFO)  # the packages' progress lines: the summary table speaks for them


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


def demo_heatlike() -> str:
    import numpy as np

    import heatlike as ht

    data = np.random.default_rng(0).standard_normal((10_000, 8))
    x = ht.array(data, split=0)  # every rank keeps its block of rows
    z = (x - ht.mean(x, axis=0)) / ht.std(x, axis=0)
    expected = (data - data.mean(0)) / data.std(0)
    err = float(np.abs(z.numpy() - expected).max())
    values, _ = ht.sort(x[:, 0])
    ordered = bool(np.array_equal(values.numpy(), np.sort(data[:, 0])))
    return f"standardise 10k x 8 split rows: max |err| vs NumPy {err:.1e}; sort {'ok' if ordered else 'WRONG'}"


def demo_daso() -> str:
    from daso.train import TrainConfig, train

    cfg = TrainConfig(method="daso", epochs=3, seed=0, warmup_epochs=1, cooldown_epochs=1)
    result = train(cfg, comm)
    return (
        f"digits MLP, 3 epochs: accuracy {result.final_accuracy:.3f}, "
        f"{result.traffic_bytes / 2**20:.1f} MiB sent"
    )


def demo_abtrain() -> str:
    from abtrain.harness import train_digits

    options = {"warmup_steps": 30, "sync_every": 30, "full_rank_steps": 3, "cutoff": 0.25}
    ab = train_digits("ab", comm=comm, steps=150, seed=0, ab_options=options)
    dp = train_digits("dp", comm=comm, steps=150, seed=0)
    traffic = (
        f"{ab.bytes_sent / dp.bytes_sent:.2f} of DP's bytes"
        if dp.bytes_sent
        else "no traffic on one rank"
    )
    return (
        f"digits MLP, 150 steps: AB {ab.accuracy:.3f} vs DP {dp.accuracy:.3f} accuracy, {traffic}"
    )


def demo_oialr() -> str:
    from oialr.digits import TrainConfig, train

    cfg = TrainConfig(steps=400, delay=100, stability_frequency=50, sigma_cutoff_fraction=0.15)
    result = train(cfg, comm)
    return (
        f"digits MLP, 400 steps: accuracy {result.test_accuracy:.3f} with "
        f"{result.trainable_fraction:.1%} of the weights trainable"
    )


def demo_fwdgrad() -> str:
    import fwdgrad
    from fwdgrad.approx import expected_cosine

    n, k, draws = 256, 16, 100
    target = torch.linspace(-1, 1, n, dtype=torch.float64)
    w = torch.zeros(n, dtype=torch.float64)
    true = 2 * (w - target)
    parts = []
    for aggregation in ("mean", "projection"):
        cosines = []
        for seed in range(draws):
            g = fwdgrad.forward_gradient(
                lambda w: ((w - target) ** 2).sum(), w, k=k, aggregation=aggregation, generator=seed
            )
            cosines.append(float(torch.nn.functional.cosine_similarity(g, true, dim=0)))
        theory = expected_cosine(aggregation, "normal", n, k)
        parts.append(f"{aggregation} {sum(cosines) / draws:.3f} (theory {theory:.3f})")
    return f"n={n}, k={k}, {draws} draws: mean cos(estimate, gradient): " + ", ".join(parts)


def demo_f3() -> str:
    from f3.data import digits
    from f3.experiment import run_mlp

    split = digits(seed=0)
    accuracies = {}
    for method in ("bp", "drtp", "f3"):
        run = run_mlp(split, method, [16], epochs=10, lr=3e-3, seed=0)
        accuracies[method] = run.final["test_accuracy"]
    return "digits, 10 epochs: " + ", ".join(f"{m} {a:.3f}" for m, a in accuracies.items())


def demo_propulate_lite() -> str:
    import numpy as np

    import propulate_lite as pl

    limits = {"x": (-5.12, 5.12), "y": (-5.12, 5.12)}
    rng = np.random.default_rng([0, comm.rank])
    propagator = pl.get_default_propagator(pop_size=8, limits=limits, rng=rng)
    run = pl.Propulator(
        lambda p: p["x"] ** 2 + p["y"] ** 2, propagator, comm=comm, generations=150, rng=rng
    )
    run.propulate()
    best = run.summarize(top_n=1)[0][0]
    return f"sphere, 150 evaluations per rank: best loss {best.loss:.2e} (optimum 0)"


def demo_hyde() -> str:
    import hyde

    clean = hyde.make_cube(48, 48, 32, endmembers=4, seed=0)
    noisy = hyde.add_noise(clean, "gaussian", sigma=0.05, seed=1)
    before = hyde.evaluate(clean, noisy)["psnr"]
    after = hyde.evaluate(clean, hyde.HyRes()(noisy))["psnr"]
    return f"48x48x32 cube, sigma 0.05: PSNR {before:.1f} -> {after:.1f} dB with HyRes"


DEMOS: list[tuple[str, str, Callable[[], str]]] = [
    ("hpc-comm", "selftest + allreduce", demo_hpc_comm),
    ("heatlike", "split-array arithmetic", demo_heatlike),
    ("daso", "DASO training", demo_daso),
    ("abtrain", "AB vs data parallel", demo_abtrain),
    ("oialr", "low-rank training", demo_oialr),
    ("fwdgrad", "forward gradients", demo_fwdgrad),
    ("f3", "F3 vs BP vs DRTP", demo_f3),
    ("propulate-lite", "evolutionary search", demo_propulate_lite),
    ("hyde", "denoise a cube", demo_hyde),
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
