"""k-medians on row-distributed data: centres are coordinate-wise medians of their clusters,
found exactly by a search over counts (no rows move between ranks)."""

from __future__ import annotations

import torch

from ..spatial._rows import LocalRows
from ._kcluster import _KCluster, cluster_sizes, manhattan_distances
from ._order import group_medians

__all__ = ["KMedians"]


class KMedians(_KCluster):
    """k-medians clustering: rows go to the nearest centre in the L1 (manhattan) distance, each
    centre moves to the coordinate-wise median of its rows.

    Parameters
    ----------
    n_clusters : int
        Number of clusters.
    init : {'random', 'k-medians++'} or array
        As for `KMeans`; the '++' seeding weights rows by their L1 distance to the
        nearest chosen centre.
    max_iter : int
        Most iterations per run.
    tol : float
        Convergence when the squared movement of the centres, summed, is at most ``tol`` times
        the mean variance of the features (as `KMeans`); also when no label changes.
    random_state : int or None
        Seed of the initialisation.
    n_init : int
        Runs from different initial centres; the lowest inertia wins.

    Attributes
    ----------
    cluster_centers_, labels_, n_iter_ :
        As for `KMeans`.
    inertia_ : float
        Sum of the L1 distances of the rows to their centres.

    Notes
    -----
    The median of each cluster and feature is found by a search over the 64-bit patterns of
    the values: each round counts the values at or below 15 pivots per search interval (one
    allreduce of ``15 x 2 x n_clusters x features`` integers, for the two middle order
    statistics), at most 16 rounds per iteration. It is exact (NumPy's median: the mean of the
    two middle values for even counts) and the same for any number of ranks. A cluster left
    without rows keeps its centre.
    """

    _cost = staticmethod(manhattan_distances)

    def _update(self, rows: LocalRows, labels, old_labels, centres):
        k = centres.shape[0]
        sizes = cluster_sizes(rows, labels, old_labels, k)
        medians = group_medians(rows, labels, k, sizes[:k])
        new = torch.where(sizes[:k, None] > 0, medians.to(centres.dtype), centres)
        return new, int(sizes[k])
