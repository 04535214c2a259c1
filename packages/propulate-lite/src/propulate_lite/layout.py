"""Who is who in a run: workers (groups of ranks), islands, and the communicators between them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

import hpc_comm as hc


@dataclass
class Layout:
    """This rank's place: its worker, whether it leads that worker, its island and peers."""

    worker: int  # global worker index (the rank in the leaders' communicator)
    leader: bool  # first rank of its worker: breeds, exchanges, logs
    island: int
    local_index: int  # worker index inside the island
    island_sizes: list[int]  # workers per island
    island_offsets: list[int]  # first global worker index of each island
    ranks_per_worker: int

    @property
    def num_workers(self) -> int:
        """The number of workers over all islands."""
        return sum(self.island_sizes)

    @property
    def num_islands(self) -> int:
        """The number of islands."""
        return len(self.island_sizes)

    def island_workers(self, island: int) -> range:
        """The global indices of the workers on ``island``."""
        start = self.island_offsets[island]
        return range(start, start + self.island_sizes[island])

    def peers(self) -> list[int]:
        """The other workers of this rank's island."""
        return [w for w in self.island_workers(self.island) if w != self.worker]


def plan_layout(
    rank: int,
    size: int,
    ranks_per_worker: int,
    num_islands: int,
    island_sizes: Sequence[int] | None,
) -> Layout:
    """Validate the island arguments against the world size and place ``rank``."""
    if not isinstance(ranks_per_worker, int) or ranks_per_worker < 1:
        raise ValueError(f"ranks_per_worker must be a positive int, got {ranks_per_worker!r}")
    if size % ranks_per_worker:
        raise ValueError(
            f"ranks_per_worker={ranks_per_worker} must divide the number of ranks ({size})"
        )
    workers = size // ranks_per_worker
    if island_sizes is not None:
        sizes = [int(s) for s in island_sizes]
        if any(s < 1 for s in sizes) or sum(sizes) != workers:
            raise ValueError(
                f"island_sizes must be positive and sum to the number of workers ({workers}), "
                f"got {list(island_sizes)!r}"
            )
    else:
        if not isinstance(num_islands, int) or not 1 <= num_islands <= workers:
            raise ValueError(
                f"num_islands must be an int in [1, {workers}] (the number of workers), "
                f"got {num_islands!r}"
            )
        sizes = hc.chunk_counts(workers, num_islands)
    offsets = [int(o) for o in np.cumsum([0, *sizes[:-1]])]
    worker = rank // ranks_per_worker
    island = int(np.searchsorted(np.cumsum(sizes), worker, side="right"))
    return Layout(
        worker=worker,
        leader=rank % ranks_per_worker == 0,
        island=island,
        local_index=worker - offsets[island],
        island_sizes=sizes,
        island_offsets=offsets,
        ranks_per_worker=ranks_per_worker,
    )


def check_topology(topology, num_islands: int) -> np.ndarray:
    """A num_islands x num_islands matrix of emigrant counts (default: 1 to every other island)."""
    if topology is None:
        matrix = np.ones((num_islands, num_islands), dtype=np.int64)
        np.fill_diagonal(matrix, 0)
        return matrix
    matrix = np.asarray(topology)
    if matrix.shape != (num_islands, num_islands):
        raise ValueError(
            f"migration_topology must have shape ({num_islands}, {num_islands}), got {matrix.shape}"
        )
    if not np.issubdtype(matrix.dtype, np.integer) or (matrix < 0).any():
        raise ValueError("migration_topology must hold non-negative ints (emigrants per event)")
    if np.diag(matrix).any():
        raise ValueError("migration_topology must have a zero diagonal (no self-migration)")
    return matrix.astype(np.int64)
