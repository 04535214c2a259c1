"""Command line of hyde: the `hyde` entry point and `python -m hyde`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from hyde import __version__

DESCRIPTION = (
    "hyde will denoise hyperspectral image cubes with classical low-rank and wavelet methods "
    "and with neural-network models, using tiled inference for large cubes. This command will "
    "gain subcommands to denoise files and run benchmarks. Not yet implemented; see the issue "
    "tracker."
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `hyde` command."""
    parser = argparse.ArgumentParser(prog="hyde", description=DESCRIPTION)
    parser.add_argument(
        "--version",
        action="version",
        version=f"hyde {__version__}",
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
