"""Command line of propulate-lite: the `propulate-lite` entry point and `python -m propulate_lite`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from propulate_lite import __version__

DESCRIPTION = (
    "propulate-lite will optimise hyperparameters with an asynchronous evolutionary algorithm "
    "over MPI, with islands and migration between them. This command will gain subcommands to "
    "run optimisations on benchmark functions. Not yet implemented; see the issue tracker."
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `propulate-lite` command."""
    parser = argparse.ArgumentParser(prog="propulate-lite", description=DESCRIPTION)
    parser.add_argument(
        "--version",
        action="version",
        version=f"propulate-lite {__version__}",
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
