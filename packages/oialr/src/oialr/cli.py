"""Command line of oialr: the `oialr` entry point and `python -m oialr`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from oialr import __version__

DESCRIPTION = (
    "oialr will train PyTorch models with OIALR: after a full-rank warm-up, layers become "
    "U·S·Vᵀ with frozen bases, only S is trained, and the rank is pruned during training. "
    "This command will gain subcommands to run training examples and benchmarks. Not yet "
    "implemented; see the issue tracker."
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `oialr` command."""
    parser = argparse.ArgumentParser(prog="oialr", description=DESCRIPTION)
    parser.add_argument(
        "--version",
        action="version",
        version=f"oialr {__version__}",
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
