"""Command line of heatlike: the `heatlike` entry point and `python -m heatlike`."""

from __future__ import annotations

from collections.abc import Sequence

from heatlike import __version__
from hpc_comm.cli_support import make_parser, run

DESCRIPTION = """\
heatlike will provide distributed N-d arrays with a NumPy-like, Heat-compatible API: one torch
tensor per MPI rank, split along one axis, with linear algebra, clustering, spatial functions
and I/O on top. This command will gain subcommands to run and benchmark them. Not yet
implemented; see the issue tracker.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 on bad input)."""
    return run(make_parser("heatlike", DESCRIPTION, __version__), argv)


if __name__ == "__main__":
    raise SystemExit(main())
