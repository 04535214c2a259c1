"""Command line of heatlike: the `heatlike` entry point and `python -m heatlike`."""

from __future__ import annotations

from collections.abc import Sequence

from heatlike import __version__
from hpc_comm.cli_support import make_parser, run

DESCRIPTION = """\
heatlike provides distributed N-d arrays with a NumPy-like, Heat-compatible API (import
heatlike as ht): one torch tensor per MPI rank, split along one axis. The array library is
used from Python; this command will gain subcommands (info, kmeans, bench) with the
algorithms that are built on it. See docs/heatlike.md.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 on bad input)."""
    return run(make_parser("heatlike", DESCRIPTION, __version__), argv)


if __name__ == "__main__":
    raise SystemExit(main())
