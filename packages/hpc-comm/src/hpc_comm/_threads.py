"""One share of the node's cores per rank: torch intra-op threads and BLAS/OpenMP pools.

With default threads every rank starts as many threads as the node has cores, and ranks on one
node fight over them (2 ranks doing small matmuls and allreduces on 2 cores ran 24x slower).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

USER_VARS = ("HPC_COMM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class ThreadChoice:
    """What hpc-comm decided: ``threads`` per rank and why (``source``)."""

    threads: int | None
    source: str
    cores: int
    local_ranks: int


_choice: ThreadChoice | None = None


def available_cores() -> int:
    """Cores this process may run on (its affinity mask), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def decide(local_ranks: int, environ=os.environ) -> ThreadChoice:
    """The thread count for a rank that shares its node with ``local_ranks - 1`` others."""
    cores = available_cores()
    if environ.get("HPC_COMM_THREADS"):
        try:
            n = int(environ["HPC_COMM_THREADS"])
        except ValueError:
            raise ValueError(
                f"HPC_COMM_THREADS must be a positive integer, got {environ['HPC_COMM_THREADS']!r}"
            ) from None
        if n < 1:
            raise ValueError(f"HPC_COMM_THREADS must be a positive integer, got {n}")
        return ThreadChoice(n, "HPC_COMM_THREADS", cores, local_ranks)
    for var in USER_VARS[1:]:
        if environ.get(var):
            return ThreadChoice(
                None, f"left to the user ({var}={environ[var]})", cores, local_ranks
            )
    if local_ranks <= 1:
        return ThreadChoice(None, "library defaults (one rank on this node)", cores, local_ranks)
    n = max(1, cores // local_ranks)
    return ThreadChoice(n, f"{cores} cores / {local_ranks} ranks on this node", cores, local_ranks)


def apply(choice: ThreadChoice) -> None:
    """Set the pools of this process to ``choice.threads`` (nothing when it is None)."""
    global _choice
    _choice = choice
    n = choice.threads
    if n is None:
        return
    for var in USER_VARS[1:]:
        os.environ.setdefault(var, str(n))
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a declared dependency
        return
    threadpool_limits(limits=n)


def current() -> ThreadChoice | None:
    """The choice applied by the world communicator, if any."""
    return _choice
