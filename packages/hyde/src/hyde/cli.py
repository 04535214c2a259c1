"""Command line of hyde: the `hyde` entry point and `python -m hyde`."""

from __future__ import annotations

import argparse
import ast
import time
from collections.abc import Sequence
from pathlib import Path

from hpc_comm.cli_support import make_parser, run, say
from hyde import __version__

DESCRIPTION = """\
Denoise hyperspectral image cubes (rows x cols x bands) with classical low-rank, wavelet and
subspace methods. Large cubes are denoised tile by tile with blended overlaps; under mpiexec the
tiles are shared between ranks and the result equals the single-process one.

examples:
  hyde list                                         # the methods and their parameters
  hyde generate cube.npy --noise gaussian --sigma 0.05 --clean clean.npy
  hyde denoise cube.npy out.npy --method hyres --reference clean.npy --png before_after.png
  mpiexec -n 2 hyde denoise big.h5 out.npy --method fasthyde --tile 128
  hyde bench --size 64 64 32                        # every method at three noise levels
  hyde train qrnn.pt --steps 1000                   # a QRNN3D on generated cubes
"""


def _params(items: Sequence[str]) -> dict:
    params = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--param must look like NAME=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            params[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key.strip()] = value
    return params


def _list(args) -> int:
    import inspect

    import hyde

    for name in hyde.list_methods():
        cls = hyde.METHODS[name]
        signature = (
            str(inspect.signature(cls.__init__)).replace("(self, ", "(").replace("(self)", "()")
        )
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        say(f"{name:10s} {doc}")
        say(f"{'':10s} noise: {', '.join(cls.noise_kinds)}; parameters {signature}")
    return 0


def _generate(args) -> int:
    import hyde

    rows, cols, bands = args.size
    cube = hyde.make_cube(rows, cols, bands, args.endmembers, seed=args.seed)
    if args.clean:
        hyde.save_cube(Path(args.clean), cube)
    kw = {"sigma": args.sigma} if args.noise == "gaussian" else {}
    noisy = hyde.add_noise(cube, args.noise, seed=args.seed + 1, **kw) if args.noise else cube
    hyde.save_cube(Path(args.out), noisy)
    say(f"wrote {args.out}: {rows} x {cols} x {bands}, noise {args.noise or 'none'}")
    return 0


def _false_colour(cube):
    import numpy as np

    bands = cube.shape[-1]
    rgb = cube[..., [int(bands * 0.8), bands // 2, int(bands * 0.15)]].numpy()
    low, high = np.percentile(rgb, 1), np.percentile(rgb, 99)
    return np.clip((rgb - low) / max(high - low, 1e-12), 0, 1)


def _png(path, noisy, clean, reference):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("--png needs matplotlib: pip install 'hyde[plot]'") from exc
    import hyde

    panels = [("noisy", noisy), ("denoised", clean)]
    width = 3 if reference is None else 4
    fig, axes = plt.subplots(1, width, figsize=(4 * width, 4))
    for ax, (title, cube) in zip(axes, panels, strict=False):
        ax.imshow(_false_colour(cube))
        ax.set_title(title)
        ax.axis("off")
    if reference is not None:
        axes[2].imshow(_false_colour(reference))
        axes[2].set_title("reference")
        axes[2].axis("off")
        axes[3].plot(hyde.psnr(reference, noisy, per_band=True).numpy(), label="noisy")
        axes[3].plot(hyde.psnr(reference, clean, per_band=True).numpy(), label="denoised")
        axes[3].set_xlabel("band")
        axes[3].set_ylabel("PSNR (dB)")
        axes[3].legend()
    else:
        axes[2].plot((noisy - clean).std(dim=(0, 1)).numpy())
        axes[2].set_xlabel("band")
        axes[2].set_ylabel("std of removed noise")
    fig.tight_layout()
    tmp = Path(path).with_name(f".{Path(path).name}.partial.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


def _denoise(args) -> int:
    import torch

    import hpc_comm as hc
    import hyde
    from hyde.tiled import tiled_denoise

    source = Path(args.input)
    if not source.is_file():
        raise ValueError(f"IN {str(source)!r} is not a file")
    method = hyde.methods.get(args.method, **_params(args.param))
    comm = hc.world()
    streamed = source.suffix.lower() in (".h5", ".hdf5", ".npy")
    data = source if streamed else hyde.load_cube(source, key=args.key)
    start = time.perf_counter()
    out = Path(args.output)
    to_file = out.suffix.lower() == ".npy" or (
        comm.size == 1 and out.suffix.lower() in (".h5", ".hdf5")
    )
    result = tiled_denoise(
        method,
        data,
        out=out if to_file else None,
        tile=args.tile,
        overlap=args.overlap,
        comm=comm,
        key=args.key,
        progress=not args.quiet,
    )
    elapsed = time.perf_counter() - start
    if not to_file:
        if comm.rank == 0:
            hyde.save_cube(out, result)
        comm.barrier()
    say(f"{args.method}: wrote {out} in {elapsed:.2f} s")
    need_cubes = args.reference or args.png
    if need_cubes and comm.rank == 0:
        noisy = hyde.load_cube(source, key=args.key, dtype=torch.float64)
        clean = hyde.load_cube(out, dtype=torch.float64)
        sigma = hyde.estimate_noise(noisy)
        say(f"estimated noise sigma per band: {float(sigma.min()):.4g} .. {float(sigma.max()):.4g}")
        reference = None
        if args.reference:
            reference = hyde.load_cube(Path(args.reference), dtype=torch.float64)
            rows = {
                "noisy": hyde.evaluate(reference, noisy),
                args.method: hyde.evaluate(reference, clean),
            }
            rows[args.method]["time"] = elapsed
            say(hyde.metrics.report(rows, extra=("time",)))
        if args.png:
            _png(args.png, noisy, clean, reference)
            say(f"wrote {args.png}")
    return 0


BENCH_DEFAULT = "hysime,hyres,hyminor,forpdn,wsrrr,otvca,lrmr,nailrma,fasthyde,l1hymixde,qrnn3d"


def _bench(args) -> int:
    import torch

    import hyde
    from hyde import noise_models as nm

    rows, cols, bands = args.size
    cube = hyde.make_cube(rows, cols, bands, args.endmembers, seed=args.seed, dtype=torch.float64)
    names = [n.strip() for n in args.methods.split(",") if n.strip()]
    for name in names:
        if name not in hyde.METHODS:
            raise ValueError(f"--methods: {name!r} is not one of {hyde.list_methods()}")
    levels = [
        ("sigma=" + str(s), lambda c, s=s: nm.add_gaussian(c, s, seed=args.seed + 1))
        for s in args.sigma
    ]
    if args.mixed:
        levels.append(
            ("mixed", lambda c: nm.add_mixture(c, seed=args.seed + 1, amounts=(0.1, 0.3)))
        )
    for label, corrupt in levels:
        noisy = corrupt(cube)
        table = {"noisy": hyde.evaluate(cube, noisy)}
        for name in names:
            method = hyde.methods.get(name)
            start = time.perf_counter()
            out = method(noisy)
            table[name] = hyde.evaluate(cube, out)
            table[name]["time"] = time.perf_counter() - start
        say(f"\n{label} on a generated {rows} x {cols} x {bands} cube:")
        say(hyde.metrics.report(table, extra=("time",)))
    return 0


def _train(args) -> int:
    from hyde.nn import save_model, train_qrnn3d

    out = Path(args.out)
    if out.suffix != ".pt":
        raise ValueError(f"OUT must end in .pt, got {out.name!r}")
    model, losses = train_qrnn3d(
        steps=args.steps,
        arch=args.arch,
        channels=args.channels,
        depth=args.depth,
        bands=args.bands,
        crop=args.crop,
        batch=args.batch,
        cubes=args.cubes,
        lr=args.lr,
        seed=args.seed,
        progress=not args.quiet,
    )
    save_model(model, out)
    tail = losses[-min(20, len(losses)) :]
    say(f"{args.arch}: {args.steps} steps, final loss {sum(tail) / len(tail):.3g}; wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("hyde", DESCRIPTION, __version__)
    sub = parser.add_subparsers(title="commands")

    p = sub.add_parser("list", help="list the denoising methods")
    p.set_defaults(run=_list)

    p = sub.add_parser("generate", help="write a generated test cube (linear mixture) with noise")
    p.add_argument("out", help="output file (.npy, .mat or .h5)")
    p.add_argument(
        "--size", type=int, nargs=3, default=(64, 64, 32), metavar=("ROWS", "COLS", "BANDS")
    )
    p.add_argument("--endmembers", type=int, default=5, help="default: 5")
    p.add_argument(
        "--noise", choices=["gaussian", "noniid", "stripes", "deadlines", "impulse", "mixture"]
    )
    p.add_argument("--sigma", type=float, default=0.05, help="for --noise gaussian; default: 0.05")
    p.add_argument("--clean", help="also write the clean cube here")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_generate)

    p = sub.add_parser(
        "denoise",
        help="denoise a cube file tile by tile",
        description="Denoise IN (.npy, .mat, .h5 or ENVI .hdr) into OUT (.npy, .mat or .h5). "
        ".h5 and .npy inputs are streamed tile by tile; under mpiexec write OUT as .npy so that "
        "every rank writes its own rows.",
    )
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    p.add_argument("--method", default="hyres", help="see `hyde list`; default: hyres")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="method parameter, repeatable (e.g. --param min_rank=8)",
    )
    p.add_argument("--key", help="dataset / variable name inside .mat or .h5 files")
    p.add_argument("--tile", type=int, default=256, help="tile size in pixels; default: 256")
    p.add_argument("--overlap", type=int, default=32, help="tile overlap in pixels; default: 32")
    p.add_argument("--reference", help="clean cube: print PSNR, SSIM, SAM, ERGAS")
    p.add_argument("--png", help="write a false-colour before/after PNG (needs matplotlib)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_denoise)

    p = sub.add_parser(
        "train",
        help="train a QRNN3D or MemNet on generated cubes with blind Gaussian noise",
        description="Train QRNN3D (or MemNet) on random crops of generated cubes, noise sigma drawn per "
        "sample and band from [0.01, 0.1]; the weights load with `--method qrnn3d` (or memnet) "
        "`--param weights=OUT` (any device, CPU included).",
    )
    p.add_argument("out", metavar="OUT", help="weights file (.pt)")
    p.add_argument("--arch", choices=["qrnn3d", "memnet"], default="qrnn3d", help="default: qrnn3d")
    p.add_argument("--steps", type=int, default=1000, help="default: 1000")
    p.add_argument("--channels", type=int, default=8, help="default: 8")
    p.add_argument("--depth", type=int, default=1, help="down/up-sampling stages; default: 1")
    p.add_argument("--bands", type=int, default=16, help="bands of the training cubes; default: 16")
    p.add_argument("--crop", type=int, default=32, help="crop size; default: 32")
    p.add_argument("--batch", type=int, default=4, help="default: 4")
    p.add_argument("--cubes", type=int, default=4, help="generated training cubes; default: 4")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate; default: 3e-3")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_train)

    p = sub.add_parser("bench", help="every method on a generated cube at several noise levels")
    p.add_argument(
        "--size", type=int, nargs=3, default=(64, 64, 32), metavar=("ROWS", "COLS", "BANDS")
    )
    p.add_argument("--endmembers", type=int, default=5)
    p.add_argument("--sigma", type=float, nargs="+", default=[0.02, 0.05, 0.1])
    p.add_argument(
        "--no-mixed", dest="mixed", action="store_false", help="skip the mixed-noise row"
    )
    p.add_argument("--methods", default=BENCH_DEFAULT, help=f"default: {BENCH_DEFAULT}")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 on bad input)."""
    return run(build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
