"""Benchmark worker for the anchor venv: HyDe (PyPI ``hyde-images``), BM4D and scikit-image.

Run by ``bench_methods.py`` with the anchor venv's python, never with the hyde dev venv: the
anchor's distribution ``hyde-images`` also imports as ``hyde``. Reads a JSON job file::

    {"inputs": {"sigma = 0.02": "noisy_0.npy", ...}, "sigma": {"sigma = 0.02": 0.02, ...},
     "rank": 5, "methods": ["HyDe hyres", "BM4D", ...], "repeats": 2, "out_dir": "..."}

and writes each output cube to ``out_dir`` as .npy plus ``times.json`` (the minimum wall time
over ``repeats`` runs of every method at every level; an exception is recorded as its message).
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np


def _hyde():
    import torch

    torch.set_num_threads(1)
    import hyde  # HyDe's package from hyde-images

    return hyde, torch


def _hyde_method(name: str, rank: int):
    """A function noisy (numpy, rows x cols x bands) -> numpy for HyDe's ``name``."""
    hyde, torch = _hyde()

    def tensor(x):
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def plain(out):
        out = out[0] if isinstance(out, tuple) else out
        return out.detach().cpu().numpy().astype(np.float64)

    table = {
        # parameter-free (HyDe's defaults)
        "HyDe hyres": lambda x: hyde.HyRes()(tensor(x)),
        "HyDe hyminor": lambda x: hyde.HyMiNoR()(tensor(x), lam=10.0, iterations=50),
        "HyDe forpdn": lambda x: hyde.FORPDN_SURE()(tensor(x)),
        # methods that need a rank get the true number of endmembers (their best case)
        "HyDe wsrrr": lambda x: hyde.WSRRR()(tensor(x), rank=rank),
        "HyDe otvca": lambda x: hyde.OTVCA()(tensor(x), features=rank, num_itt=10, lam=0.01),
        "HyDe fasthyde": lambda x: hyde.FastHyDe()(tensor(x), iid=True, k_subspace=rank),
        "HyDe fasthyde (non-iid)": lambda x: hyde.FastHyDe()(tensor(x), iid=False, k_subspace=rank),
        "HyDe l1hymixde": lambda x: hyde.L1HyMixDe()(tensor(x), k_subspace=rank, max_iter=10),
    }
    run = table[name]
    return lambda x, sigma: plain(run(x))


def _skimage_wavelet(x, sigma):
    from skimage.restoration import denoise_wavelet

    bands = [
        denoise_wavelet(x[..., b], method="BayesShrink", mode="soft") for b in range(x.shape[-1])
    ]
    return np.stack(bands, -1)


def _skimage_tv(x, sigma):
    from skimage.restoration import denoise_tv_chambolle

    return np.stack([denoise_tv_chambolle(x[..., b], weight=sigma) for b in range(x.shape[-1])], -1)


def _bm4d(x, sigma):
    import bm4d

    return np.asarray(bm4d.bm4d(x, sigma), dtype=np.float64)


EXTERNAL = {
    "BM4D": _bm4d,
    "skimage wavelet (band-wise)": _skimage_wavelet,
    "skimage TV (band-wise)": _skimage_tv,
}


def versions() -> dict:
    """Versions of the anchor packages in this interpreter."""
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for dist in ("hyde-images", "torch", "bm4d", "bm3d", "scikit-image", "pytorch_wavelets"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def main(job_file: str) -> int:
    job = json.loads(Path(job_file).read_text())
    out_dir = Path(job["out_dir"])
    results = {"versions": versions(), "times": {}, "errors": {}}
    for method in job["methods"]:
        run = EXTERNAL.get(method) or _hyde_method(method, int(job["rank"]))
        for level, path in job["inputs"].items():
            noisy = np.load(path)
            best, out = float("inf"), None
            try:
                for _ in range(int(job.get("repeats", 1))):
                    start = time.perf_counter()
                    out = run(noisy, float(job["sigma"][level]))
                    best = min(best, time.perf_counter() - start)
            except Exception as exc:  # a defect of the anchor is a result, not a crash
                results["errors"][f"{method} | {level}"] = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
                continue
            key = f"{method} | {level}"
            target = out_dir / f"{len(results['times']):03d}.npy"
            np.save(target, np.asarray(out, dtype=np.float64))
            results["times"][key] = {"time": best, "output": str(target)}
            print(f"{key}: {best:.3f} s", file=sys.stderr, flush=True)
    (out_dir / "times.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
