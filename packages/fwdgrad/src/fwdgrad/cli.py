"""Command line of fwdgrad: the `fwdgrad` entry point and `python -m fwdgrad`."""

from __future__ import annotations

from collections.abc import Sequence

from fwdgrad import __version__
from hpc_comm.cli_support import make_parser, run

DESCRIPTION = """\
fwdgrad will estimate gradients with multi-tangent forward gradients (forward-mode AD, no
backward pass), aggregated by mean or by orthogonal projection onto the tangents. This command
will gain subcommands to run training examples and benchmarks. Not yet implemented; see the
issue tracker.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 on bad input)."""
    return run(make_parser("fwdgrad", DESCRIPTION, __version__), argv)


if __name__ == "__main__":
    raise SystemExit(main())
