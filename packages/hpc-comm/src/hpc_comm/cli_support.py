"""What every command line of the suite shares: the parser's shape, rank-0 output, exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import _launcher


def say(text: str = "", file=None) -> None:
    """Print on rank 0 only (the rank comes from the launcher before ``world()`` exists)."""
    if _launcher.rank_and_size()[0] == 0:
        print(text, file=file or sys.stdout, flush=True)


class RankZeroParser(argparse.ArgumentParser):
    """An ArgumentParser whose help, usage, version and error messages appear on rank 0 only.

    Every rank still parses and exits alike (code 2 on bad input); subcommand parsers made with
    ``add_subparsers`` are of this class too.
    """

    def _print_message(self, message: str, file=None) -> None:
        if _launcher.rank_and_size()[0] == 0:
            super()._print_message(message, file)


def _number(kind, text: str, low, strict: bool, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not (value > low if strict else value >= low):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    return _number(int, text, 1, False, "an int >= 1")


def nonnegative_int(text: str) -> int:
    """argparse type: an int >= 0."""
    return _number(int, text, 0, False, "an int >= 0")


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    return _number(float, text, 0.0, True, "a number > 0")


def progress_bar(total: int, desc: str | None = None, unit: str = "it", enabled: bool = True, **kw):
    """A tqdm bar for long work, shown on rank 0 when stderr is a terminal; None otherwise
    (``enabled`` false, another rank, output redirected, or tqdm not installed: progress is a
    convenience, never a requirement). Extra keywords go to tqdm."""
    if not enabled or _launcher.rank_and_size()[0] != 0 or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit=unit, **kw)


def make_parser(prog: str, description: str, version: str) -> argparse.ArgumentParser:
    """A parser that keeps the description's line breaks, has ``--version`` and speaks on rank 0."""
    parser = RankZeroParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--version", action="version", version=f"{prog} {version}", help="print the version"
    )
    return parser


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and call the chosen subcommand's ``run(args)``; print help without one.

    Bad input, argparse's or a ValueError / TypeError / ImportError from the command, ends with
    one line on stderr and exit code 2; every rank returns the same code.
    """
    args = parser.parse_args(argv)
    command = getattr(args, "run", None)
    if command is None:
        say(parser.format_help().rstrip())
        return 0
    try:
        return int(command(args) or 0)
    except (ValueError, TypeError, ImportError) as exc:
        say(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
