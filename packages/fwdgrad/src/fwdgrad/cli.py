"""Command line of fwdgrad: the `fwdgrad` entry point and `python -m fwdgrad`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from fwdgrad import __version__

DESCRIPTION = (
    "fwdgrad will estimate gradients with multi-tangent forward gradients (forward-mode AD, "
    "no backward pass), aggregated by mean or by orthogonal projection onto the tangents. "
    "This command will gain subcommands to run training examples and benchmarks. Not yet "
    "implemented; see the issue tracker."
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `fwdgrad` command."""
    parser = argparse.ArgumentParser(prog="fwdgrad", description=DESCRIPTION)
    parser.add_argument(
        "--version",
        action="version",
        version=f"fwdgrad {__version__}",
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
