"""Command line of abtrain: the `abtrain` entry point and `python -m abtrain`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from abtrain import __version__

DESCRIPTION = (
    "abtrain will train PyTorch models data-parallel with AB-training: weights factorised as "
    "low-rank A·B, independent groups of ranks, and periodic merges between the groups. This "
    "command will gain subcommands to run training examples and benchmarks. Not yet "
    "implemented; see the issue tracker."
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `abtrain` command."""
    parser = argparse.ArgumentParser(prog="abtrain", description=DESCRIPTION)
    parser.add_argument(
        "--version",
        action="version",
        version=f"abtrain {__version__}",
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
