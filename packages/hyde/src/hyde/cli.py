"""Command line of hyde: the `hyde` entry point and `python -m hyde`."""

from __future__ import annotations

from collections.abc import Sequence

from hpc_comm.cli_support import make_parser, run
from hyde import __version__

DESCRIPTION = """\
hyde will denoise hyperspectral image cubes with classical low-rank and wavelet methods and with
neural-network models, using tiled inference for large cubes. This command will gain subcommands
to denoise files and run benchmarks. Not yet implemented; see the issue tracker.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 on bad input)."""
    return run(make_parser("hyde", DESCRIPTION, __version__), argv)


if __name__ == "__main__":
    raise SystemExit(main())
