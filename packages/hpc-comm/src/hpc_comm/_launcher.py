"""What the launcher tells a process through its environment, read before any backend exists."""

from __future__ import annotations

import os

# (rank, size, local size) variables of the launchers we know, most specific first.
_MPI_VARS = [
    ("PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"),  # MPICH / Hydra, Intel MPI
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE"),  # Open MPI
    ("PMIX_RANK", "PMIX_SIZE", "PMIX_LOCAL_SIZE"),
    ("MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_LOCAL_SIZE"),  # MVAPICH
]
_TORCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE")

# Set by hpc_comm.world() once the world communicator exists.
_world_rank_size: tuple[int, int] | None = None


def under_mpi_launcher(environ=os.environ) -> bool:
    """True when an MPI launcher (mpiexec, mpirun, srun with PMI) started this process."""
    return any(rank in environ for rank, _, _ in _MPI_VARS) or "PMI_FD" in environ


def under_torch_launcher(environ=os.environ) -> bool:
    """True when torchrun (or an equivalent) set the torch.distributed environment."""
    return all(v in environ for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def rank_and_size() -> tuple[int, int]:
    """This process's world rank and size: from the world communicator once it exists, else from
    the launcher's variables, else (0, 1)."""
    if _world_rank_size is not None:
        return _world_rank_size
    for rank, size, _ in [*_MPI_VARS, _TORCH_VARS]:
        if rank in os.environ and size in os.environ:
            try:
                return int(os.environ[rank]), int(os.environ[size])
            except ValueError:
                continue
    return 0, 1


def local_size_hint() -> int | None:
    """Ranks on this node according to the launcher, if it says."""
    for _, _, local in [*_MPI_VARS, _TORCH_VARS]:
        if local in os.environ:
            try:
                return max(1, int(os.environ[local]))
            except ValueError:
                continue
    return None


def ranks_per_node(environ=os.environ) -> int | None:
    """``HPC_COMM_RANKS_PER_NODE``: ranks per emulated node (None when unset), for every backend."""
    value = environ.get("HPC_COMM_RANKS_PER_NODE")
    if not value:
        return None
    try:
        k = int(value)
    except ValueError:
        k = 0
    if k < 1:
        raise ValueError(f"HPC_COMM_RANKS_PER_NODE must be a positive integer, got {value!r}")
    return k
