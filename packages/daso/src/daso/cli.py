"""Command line of daso: the `daso` entry point and `python -m daso`."""

from __future__ import annotations

from collections.abc import Sequence

from daso import __version__
from hpc_comm.cli_support import make_parser, run

DESCRIPTION = """\
daso will train PyTorch models data-parallel with DASO: gradients are synchronised inside each
node every step, and between nodes asynchronously on a schedule. This command will gain
subcommands to run training examples and benchmarks. Not yet implemented; see the issue tracker.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 on bad input)."""
    return run(make_parser("daso", DESCRIPTION, __version__), argv)


if __name__ == "__main__":
    raise SystemExit(main())
