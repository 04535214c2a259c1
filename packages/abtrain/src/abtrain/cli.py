"""Command line of abtrain: the `abtrain` entry point and `python -m abtrain`."""

from __future__ import annotations

from collections.abc import Sequence

from abtrain import __version__
from hpc_comm.cli_support import make_parser, run

DESCRIPTION = """\
abtrain will train PyTorch models data-parallel with AB-training: weights factorised as low-rank
A·B, independent groups of ranks, and periodic merges between the groups. This command will gain
subcommands to run training examples and benchmarks. Not yet implemented; see the issue tracker.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 on bad input)."""
    return run(make_parser("abtrain", DESCRIPTION, __version__), argv)


if __name__ == "__main__":
    raise SystemExit(main())
