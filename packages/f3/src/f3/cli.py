"""Command line of f3: the `f3` entry point and `python -m f3`."""

from __future__ import annotations

from collections.abc import Sequence

from f3 import __version__
from hpc_comm.cli_support import make_parser, run

DESCRIPTION = """\
f3 will train PyTorch models with F³, feed-forward training with delayed error feedback, and
with the DFA, DRTP and backpropagation baselines for comparison. This command will gain
subcommands to run training examples and benchmarks. Not yet implemented; see the issue tracker.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 on bad input)."""
    return run(make_parser("f3", DESCRIPTION, __version__), argv)


if __name__ == "__main__":
    raise SystemExit(main())
