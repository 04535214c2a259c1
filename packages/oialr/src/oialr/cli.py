"""Command line of oialr: the `oialr` entry point and `python -m oialr`."""

from __future__ import annotations

from collections.abc import Sequence

from hpc_comm.cli_support import make_parser, run
from oialr import __version__

DESCRIPTION = """\
oialr will train PyTorch models with OIALR: after a full-rank warm-up, layers become U·S·Vᵀ with
frozen bases, only S is trained, and the rank is pruned during training. This command will gain
subcommands to run training examples and benchmarks. Not yet implemented; see the issue tracker.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 on bad input)."""
    return run(make_parser("oialr", DESCRIPTION, __version__), argv)


if __name__ == "__main__":
    raise SystemExit(main())
