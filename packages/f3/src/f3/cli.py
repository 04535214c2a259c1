"""Command line of f3: the `f3` entry point and `python -m f3`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from f3 import __version__

DESCRIPTION = (
    "f3 will train PyTorch models with F³, feed-forward training with delayed error feedback, "
    "and with the DFA, DRTP and backpropagation baselines for comparison. This command will "
    "gain subcommands to run training examples and benchmarks. Not yet implemented; see the "
    "issue tracker."
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `f3` command."""
    parser = argparse.ArgumentParser(prog="f3", description=DESCRIPTION)
    parser.add_argument(
        "--version",
        action="version",
        version=f"f3 {__version__}",
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
