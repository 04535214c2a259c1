"""Command line of heatlike: the `heatlike` entry point and `python -m heatlike`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from heatlike import __version__

DESCRIPTION = (
    "heatlike will provide distributed N-d arrays with a NumPy-like, Heat-compatible API: one "
    "torch tensor per MPI rank, split along one axis, with linear algebra, clustering, "
    "spatial functions and I/O on top. This command will gain subcommands to run and "
    "benchmark them. Not yet implemented; see the issue tracker."
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `heatlike` command."""
    parser = argparse.ArgumentParser(prog="heatlike", description=DESCRIPTION)
    parser.add_argument(
        "--version",
        action="version",
        version=f"heatlike {__version__}",
        help="print the version and exit",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (argparse exits with 2 on bad input)."""
    parser = build_parser()
    parser.parse_args(argv)
    # There are no subcommands yet, so every valid invocation shows what the package will do.
    parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
