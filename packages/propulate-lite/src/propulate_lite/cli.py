"""Command line of propulate-lite: the `propulate-lite` entry point and `python -m propulate_lite`."""

from __future__ import annotations

from collections.abc import Sequence

from hpc_comm.cli_support import make_parser, run
from propulate_lite import __version__

DESCRIPTION = """\
propulate-lite will optimise hyperparameters with an asynchronous evolutionary algorithm over
MPI, with islands and migration between them. This command will gain subcommands to run
optimisations on benchmark functions. Not yet implemented; see the issue tracker.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 on bad input)."""
    return run(make_parser("propulate-lite", DESCRIPTION, __version__), argv)


if __name__ == "__main__":
    raise SystemExit(main())
