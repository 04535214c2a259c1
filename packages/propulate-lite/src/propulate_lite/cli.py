"""Command line of propulate-lite: the `propulate-lite` entry point and `python -m propulate_lite`."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hpc_comm.cli_support import make_parser, run, say
from propulate_lite import __version__

DESCRIPTION = """\
Asynchronous evolutionary hyperparameter optimisation over MPI, with islands.

  propulate-lite run CONFIG.toml            optimise (under mpiexec: one worker per rank)
  propulate-lite summary CHECKPOINT         best individuals per island + a loss-over-time PNG

A CONFIG names the loss as 'module:function' (or a benchmark with function = "sphere"), the
search space under [limits], and optionally [propagator] and [islands]. Example:

  loss = "mymodel:validation_loss"      # called with a dict-like of parameters
  generations = 200                     # evaluations per worker
  seed = 0
  checkpoint = "ckpt"                   # append-only HDF5; add resume = true to continue
  [limits]
  lr = {low = 1e-4, high = 1e-1, log = true}
  layers = [1, 8]                       # ints: an inclusive range
  act = ["relu", "tanh"]                # strings: choices
  [propagator]
  kind = "ga"                           # or pso, pso-clamped, pso-constriction,
  pop_size = 8                          #   pso-canonical, cmaes, active-cmaes, nelder-mead
  [islands]
  num_islands = 2
  exchange = "migration"                # or "pollination"
"""


def _run(args) -> int:
    import numpy as np

    import hpc_comm as hc
    from propulate_lite import Propulator
    from propulate_lite.config import load_config, make_propagator

    config = load_config(args.config)  # before any communication
    comm = hc.world()
    rng = np.random.default_rng([config.seed, comm.rank])
    propagator = make_propagator(config.kind, config.propagator, config.limits, comm.size, rng)
    islands = dict(config.islands)
    if islands.get("num_islands", 1) > 1 and "migration_probability" not in islands:
        islands["migration_probability"] = 0.9
    prop = Propulator(
        config.loss,
        propagator,
        comm=comm,
        generations=config.generations,
        checkpoint_path=config.checkpoint,
        rng=np.random.default_rng([config.seed, comm.rank, 1]),
        resume=config.resume,
        limits=config.limits,
        checkpoint_interval=config.checkpoint_interval,
        progress=not args.quiet and sys.stderr.isatty(),
        **islands,
    )
    prop.propulate()
    for island, inds in enumerate(prop.summarize(args.top)):
        for place, ind in enumerate(inds, 1):
            say(f"island {island} #{place}: loss {ind.loss:.6g}  {dict(ind)}")
    return 0


def _summary(args) -> int:
    from pathlib import Path

    from propulate_lite.summary import load_history, plot_loss_over_time, summary_table

    history = load_history(args.checkpoint)
    say(summary_table(history, args.top))
    if not args.no_plot:
        out = Path(args.plot) if args.plot else Path(args.checkpoint) / "loss_over_time.png"
        try:
            plot_loss_over_time(history, out)
        except ImportError:
            say("matplotlib is missing (pip install 'propulate-lite[plot]'); no plot written")
            return 0
        say(f"plot: {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 on bad input)."""
    parser = make_parser("propulate-lite", DESCRIPTION, __version__)
    sub = parser.add_subparsers(title="commands")
    run_cmd = sub.add_parser("run", help="optimise as a CONFIG.toml describes")
    run_cmd.add_argument("config", help="TOML file: loss, [limits], [propagator], [islands]")
    run_cmd.add_argument("--top", type=int, default=1, help="best individuals shown per island")
    run_cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    run_cmd.set_defaults(run=_run)
    summary_cmd = sub.add_parser("summary", help="table and plot of a checkpoint folder")
    summary_cmd.add_argument("checkpoint", help="the checkpoint folder of a run")
    summary_cmd.add_argument("--top", type=int, default=5, help="how many best to list")
    summary_cmd.add_argument("--plot", help="PNG path (default: CHECKPOINT/loss_over_time.png)")
    summary_cmd.add_argument("--no-plot", action="store_true", help="only print the table")
    summary_cmd.set_defaults(run=_summary)
    return run(parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
