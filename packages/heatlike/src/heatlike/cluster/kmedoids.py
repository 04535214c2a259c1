"""k-medoids on row-distributed data: each centre is the row of its cluster nearest to the
cluster's coordinate-wise median (Heat's variant, not PAM)."""

from __future__ import annotations

import torch

import hpc_comm as hc

from ..spatial._rows import LocalRows
from ._kcluster import _KCluster, cluster_sizes, manhattan_distances
from ._order import group_medians

__all__ = ["KMedoids"]


class KMedoids(_KCluster):
    """k-medoids clustering with the L1 (manhattan) distance: the centres are always rows of
    the data.

    Parameters
    ----------
    n_clusters : int
        Number of clusters.
    init : {'random', 'k-medoids++'} or array
        As for `KMedians`. Given centres need not be rows; after the first update they
        are.
    max_iter : int
        Most iterations per run.
    random_state : int or None
        Seed of the initialisation.
    n_init : int
        Runs from different initial centres; the lowest inertia wins.

    Attributes
    ----------
    cluster_centers_, labels_, n_iter_ :
        As for `KMeans`.
    inertia_ : float
        Sum of the L1 distances of the rows to their medoids.

    Notes
    -----
    An update computes each cluster's coordinate-wise median exactly (as `KMedians`)
    and moves the centre to the cluster's row nearest to it in L1, the lowest global row index
    on ties (three small allreduces). Heat picks the nearest row among all rows; here it is
    always a row of the cluster, so a medoid is a member of the cluster it represents. The
    iteration stops when no label changes or the medoids stay put. A cluster left without rows
    keeps its medoid.
    """

    _cost = staticmethod(manhattan_distances)

    def __init__(
        self,
        n_clusters: int = 8,
        init="random",
        max_iter: int = 300,
        random_state=None,
        n_init: int = 1,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.max_iter = max_iter
        self.random_state = random_state
        self.n_init = n_init

    def _update(self, rows: LocalRows, labels, old_labels, centres):
        k = centres.shape[0]
        sizes = cluster_sizes(rows, labels, old_labels, k)
        medians = group_medians(rows, labels, k, sizes[:k]).to(centres.dtype)
        nearest = _nearest_members(rows, labels, medians, k)
        medoids = rows.rows_at(nearest.clamp(max=rows.n - 1))
        new = torch.where(sizes[:k, None] > 0, medoids, centres)
        return new, int(sizes[k])


def _nearest_members(rows: LocalRows, labels, targets, k: int) -> torch.Tensor:
    """For each cluster, the global index of its row nearest (L1) to ``targets[cluster]``; the
    lowest index on ties, ``rows.n`` for an empty cluster."""
    x = rows.data
    dist = (x - targets[labels]).abs().sum(1).to(torch.float64)
    best = torch.full((k,), float("inf"), dtype=torch.float64, device=x.device)
    best.scatter_reduce_(0, labels, dist, reduce="amin")
    rows.allreduce(best, hc.MIN)
    index = torch.full((k,), rows.n, dtype=torch.int64, device=x.device)
    at_best = dist == best[labels]
    index.scatter_reduce_(0, labels[at_best], rows.global_indices()[at_best], reduce="amin")
    return rows.allreduce(index, hc.MIN)
