"""Rank-aware logging: every record says which rank of how many wrote it."""

from __future__ import annotations

import logging
import os

from . import _launcher


class RankFormatter(logging.Formatter):
    """Prefix records with ``[rank r/n]``; the rank comes from the world communicator once it
    exists and from the launcher's environment before that."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None):
        super().__init__(
            fmt or "%(asctime)s [rank %(rank)s] %(levelname)s %(name)s: %(message)s",
            datefmt or "%H:%M:%S",
        )

    def format(self, record: logging.LogRecord) -> str:
        rank, size = _launcher.rank_and_size()
        record.rank = f"{rank}/{size}"
        return super().format(record)


def get_logger(name: str, level: int | str | None = None) -> logging.Logger:
    """A logger whose records carry the rank. By default only rank 0 shows INFO; the other ranks
    show WARNING and above (set ``HPC_COMM_LOG_ALL_RANKS=1`` to see everyone's INFO)."""
    logger = logging.getLogger(name)
    if not any(isinstance(h.formatter, RankFormatter) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(RankFormatter())
        logger.addHandler(handler)
        logger.propagate = False
    if level is None:
        rank, _ = _launcher.rank_and_size()
        show_all = os.environ.get("HPC_COMM_LOG_ALL_RANKS", "") not in ("", "0")
        level = logging.INFO if rank == 0 or show_all else logging.WARNING
    logger.setLevel(level)
    return logger
