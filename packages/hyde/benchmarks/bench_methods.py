"""Benchmark: every hyde method against scikit-image's band-wise wavelet and TV denoisers, BM4D
(PyPI `bm4d`, if installed), on a generated cube at several Gaussian noise levels and mixed
noise. HyDe's own implementations (PyPI `hyde-images`) share the import name `hyde`, so they
must be measured in a venv of their own on the same cube (`hyde generate` writes it).

    python packages/hyde/benchmarks/bench_methods.py --size 128 128 64
    python packages/hyde/benchmarks/bench_methods.py --size 32 32 16 --smoke   # seconds

PSNR is the band mean with data range 1 (the cubes lie in [0.05, 0.95]); SAM is in degrees.
Prints one markdown table per noise level.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import hyde
from hyde import noise_models as nm


def skimage_wavelet(noisy, sigma):
    from skimage.restoration import denoise_wavelet

    x = noisy.numpy()
    out = np.stack(
        [denoise_wavelet(x[..., b], method="BayesShrink", mode="soft") for b in range(x.shape[-1])],
        -1,
    )
    return torch.from_numpy(out)


def skimage_tv(noisy, sigma):
    from skimage.restoration import denoise_tv_chambolle

    x = noisy.numpy()
    w = float(np.mean(sigma))
    out = np.stack([denoise_tv_chambolle(x[..., b], weight=w) for b in range(x.shape[-1])], -1)
    return torch.from_numpy(out)


def bm4d_ref(noisy, sigma):
    import bm4d

    return torch.from_numpy(np.asarray(bm4d.bm4d(noisy.numpy(), float(np.mean(sigma)))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, nargs=3, default=(128, 128, 64))
    parser.add_argument("--endmembers", type=int, default=5)
    parser.add_argument("--sigma", type=float, nargs="+", default=[0.02, 0.05, 0.1])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny search windows and iterations")
    parser.add_argument("--no-bm4d", action="store_true")
    parser.add_argument("--only", help="comma-separated substrings: run only matching methods")
    args = parser.parse_args()
    rows, cols, bands = args.size
    cube = hyde.make_cube(rows, cols, bands, args.endmembers, seed=args.seed, dtype=torch.float64)
    fast = {"search_radius": 3, "patch_radius": 1} if args.smoke else {}
    methods = {
        "hyde hysime": lambda x, s: hyde.SubspaceProjection()(x),
        "hyde hyres": lambda x, s: hyde.HyRes()(x),
        "hyde fasthyde": lambda x, s: hyde.FastHyDe(**fast)(x),
        "hyde fasthyde (non-iid)": lambda x, s: hyde.FastHyDe(iid=False, **fast)(x),
        "hyde l1hymixde": lambda x, s: hyde.L1HyMixDe(**fast, iterations=3 if args.smoke else 10)(
            x
        ),
        "hyde hyminor": lambda x, s: hyde.HyMiNoR()(x),
        "hyde wsrrr": lambda x, s: hyde.WSRRR()(x),
        "hyde otvca": lambda x, s: hyde.OTVCA()(x),
        "hyde lrmr": lambda x, s: hyde.LRMR()(x),
        "hyde nailrma": lambda x, s: hyde.NAILRMA()(x),
        "hyde forpdn": lambda x, s: hyde.FORPDN()(x),
        "hyde qrnn3d (tiny shipped weights)": lambda x, s: hyde.denoise(x, method="qrnn3d"),
        "hyde memnet (tiny shipped weights)": lambda x, s: hyde.denoise(x, method="memnet"),
        "skimage wavelet (band-wise)": skimage_wavelet,
        "skimage TV (band-wise)": skimage_tv,
    }
    if args.only:
        keys = [k.strip() for k in args.only.split(",")]
        methods = {n: m for n, m in methods.items() if any(k in n for k in keys)}
    if not args.no_bm4d and (not args.only or "BM4D" in args.only):
        try:
            import bm4d  # noqa: F401

            methods["BM4D"] = bm4d_ref
        except ImportError:
            print("bm4d is not installed: no BM4D row")
    levels = [(f"sigma = {s}", s, nm.add_gaussian(cube, s, seed=args.seed + 1)) for s in args.sigma]
    levels.append(("mixed", 0.05, nm.add_mixture(cube, seed=args.seed + 1, amounts=(0.1, 0.3))))
    for label, sigma, noisy in levels:
        table = {"noisy": hyde.evaluate(cube, noisy)}
        for name, run in methods.items():
            start = time.perf_counter()
            out = run(noisy, sigma)
            elapsed = time.perf_counter() - start
            table[name] = hyde.evaluate(cube, out.to(torch.float64))
            table[name]["time"] = elapsed
        print(f"\n### {label}, generated {rows} x {cols} x {bands} cube\n")
        print(hyde.metrics.report(table, extra=("time",)))


if __name__ == "__main__":
    main()
