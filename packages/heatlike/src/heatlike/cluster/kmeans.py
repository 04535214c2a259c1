"""k-means (Lloyd's algorithm) on row-distributed data: one allreduce of per-cluster sums and
counts per iteration."""

from __future__ import annotations

import torch

from ..spatial._rows import LocalRows
from ..spatial.distance import squared_euclidean
from ._kcluster import _KCluster, squared_distances

__all__ = ["KMeans"]

_BLOCK_ROWS = 4096  # rows per pass: a block and its scores stay in cache


class KMeans(_KCluster):
    """k-means clustering, scikit-learn's estimator on distributed data.

    Parameters
    ----------
    n_clusters : int
        Number of clusters (centres).
    init : {'random', 'k-means++'} or array
        'random': ``n_clusters`` distinct rows drawn uniformly; 'k-means++' (also Heat's
        'kmeans++' and 'probability_based'): greedy k-means++ seeding, done in parallel and
        independent of the number of ranks for a given ``random_state``; an array of shape
        (n_clusters, features): these centres (then ``n_init`` is 1).
    max_iter : int
        Most Lloyd iterations per run.
    tol : float
        Convergence when the squared movement of the centres, summed over centres, is at most
        ``tol`` times the mean variance of the features (scikit-learn's rule; Heat compares
        with ``tol`` itself). The run also stops when no label changes.
    random_state : int or None
        Seed of the initialisation (None: drawn on rank 0 and shared).
    n_init : int
        Runs from different initial centres; the one with the lowest inertia is kept.

    Attributes
    ----------
    cluster_centers_ : DNDarray
        (n_clusters, features) centres, replicated.
    labels_ : DNDarray
        (samples,) int64 index of each row's centre, split like the rows of the data.
    inertia_ : float
        Sum of squared distances of the rows to their centres.
    n_iter_ : int
        Iterations of the best run.

    Notes
    -----
    Every iteration assigns each local row to its nearest centre (``||c||² - 2 x·c``, one
    matrix product), sums the rows of each cluster locally and combines sums, counts and the
    number of changed labels in one allreduce. A cluster that loses all its rows is moved to the
    row farthest from its centre, as in scikit-learn (one more small collective, only then).
    ``labels_`` is 1-d as in scikit-learn (Heat's is a column).
    """

    _cost = staticmethod(squared_distances)

    def _assign(self, x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        labels = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
        norms = (centres * centres).sum(1)
        for start in range(0, x.shape[0], _BLOCK_ROWS):
            block = x[start : start + _BLOCK_ROWS]
            labels[start : start + _BLOCK_ROWS] = _nearest(block, centres, norms)
        return labels

    def _step(self, rows: LocalRows, centres, old_labels):
        """Assignment and the local sums of the clusters in one pass over blocks of rows (the
        block stays in cache), then one allreduce of sums, counts and changed labels."""
        k, f = centres.shape
        x = rows.data
        buf = torch.zeros(k * (f + 1) + 1, dtype=torch.float64, device=x.device)
        sums, counts = buf[: k * f].view(k, f), buf[k * f : k * (f + 1)]
        labels = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
        norms = (centres * centres).sum(1)
        for start in range(0, x.shape[0], _BLOCK_ROWS):
            block = x[start : start + _BLOCK_ROWS]
            nearest = _nearest(block, centres, norms)
            labels[start : start + _BLOCK_ROWS] = nearest
            sums.index_add_(0, nearest, block.to(torch.float64))
        counts += torch.bincount(labels, minlength=k)
        buf[-1] = (labels != old_labels).sum()
        rows.allreduce(buf)
        if bool((counts == 0).any()):
            _relocate_empty(rows, labels, centres, sums, counts)
        new = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centres)
        return labels, new.to(centres.dtype), int(buf[-1])

    def transform(self, x):
        """Euclidean distances of the rows of ``x`` to the centres, (samples, n_clusters),
        split like the rows of ``x``."""
        from ..spatial._rows import wrap_rows

        x = self._check_fitted(x)
        centres = self.cluster_centers_.larray
        local = squared_euclidean(x.larray.to(centres.dtype), centres, True).sqrt_()
        return wrap_rows(local, x, columns=centres.shape[0])


def _nearest(block: torch.Tensor, centres: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
    """The nearest centre of every row: the smallest ``||c||² - 2 x·c`` (``||x||²`` is the same
    for every centre); the first one on ties."""
    return torch.addmm(norms, block, centres.T, alpha=-2.0).min(1).indices


def _relocate_empty(rows: LocalRows, labels, centres, sums, counts) -> None:
    """Give each empty cluster one of the rows farthest from their centres (scikit-learn's
    rule): the farthest row leaves its cluster's sum and becomes the empty cluster's only row.
    Updates ``sums`` and ``counts`` in place, identically on every rank."""
    empty = torch.nonzero(counts == 0).flatten().tolist()
    x = rows.data
    far = ((x - centres[labels]) ** 2).sum(1).to(torch.float64)
    top = torch.topk(far, min(len(empty), far.shape[0]))
    mine = torch.cat(
        [
            top.values[:, None],
            (top.indices + rows.offset).to(torch.float64)[:, None],
            labels[top.indices].to(torch.float64)[:, None],
            x[top.indices].to(torch.float64),
        ],
        1,
    )
    every = mine if rows.comm is None else rows.comm.allgatherv(mine, 0)
    # farthest first; among equal distances the lowest global row index
    order = sorted(range(every.shape[0]), key=lambda i: (-float(every[i, 0]), float(every[i, 1])))
    for cluster, i in zip(empty, order):
        source, row = int(every[i, 2]), every[i, 3:]
        sums[source] -= row
        counts[source] -= 1
        sums[cluster] = row
        counts[cluster] = 1
