"""Command line of daso: the `daso` entry point and `python -m daso`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from daso import __version__

DESCRIPTION = (
    "daso will train PyTorch models data-parallel with DASO: gradients are synchronised "
    "inside each node every step, and between nodes asynchronously on a schedule. This "
    "command will gain subcommands to run training examples and benchmarks. Not yet "
    "implemented; see the issue tracker."
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `daso` command."""
    parser = argparse.ArgumentParser(prog="daso", description=DESCRIPTION)
    parser.add_argument(
        "--version",
        action="version",
        version=f"daso {__version__}",
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
