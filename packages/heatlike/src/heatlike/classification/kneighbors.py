"""k-nearest-neighbour classification on row-distributed data: the training rows travel around
a ring of ranks while every rank keeps the best neighbours of its own query rows."""

from __future__ import annotations

import torch

from .._redistribute import resplit
from ..communication import offsets_of
from ..dndarray import DNDarray
from ..factories import array
from ..spatial._rows import (
    Params,
    as_matrix,
    check_int,
    classes_of,
    float_type,
    labels_like,
    ring,
    rows_on_split0,
    wrap_rows,
)

__all__ = ["KNeighborsClassifier"]


class KNeighborsClassifier(Params):
    """Classify every row by a vote of its ``n_neighbors`` nearest training rows (euclidean).

    Parameters
    ----------
    n_neighbors : int
        Neighbours that vote.
    weights : {'uniform', 'distance'}
        'uniform': one vote each; 'distance': votes weighted by the inverse distance (a
        neighbour at distance 0 outvotes all others, as in scikit-learn).

    Attributes
    ----------
    classes_ : DNDarray
        (classes,) the sorted labels.
    n_samples_fit_ : int
        Training rows.

    Notes
    -----
    ``fit`` keeps the training rows where they are. A query visits every training row block in
    turn: the blocks pass from rank to rank around a ring (non-blocking, overlapped with the
    distance computation), each rank keeping the running ``n_neighbors`` best of its own query
    rows, so no rank ever holds all training rows. Distances are computed from differences, and
    ties are broken by the lower training row index, so the neighbours are the same for any
    number of ranks.
    """

    def __init__(self, n_neighbors: int = 5, weights: str = "uniform"):
        self.n_neighbors = n_neighbors
        self.weights = weights

    def _check_params(self) -> None:
        check_int(self.n_neighbors, "n_neighbors")
        if self.weights not in ("uniform", "distance"):
            raise ValueError(f"weights must be 'uniform' or 'distance', got {self.weights!r}")

    def fit(self, x, y):
        """Keep the training rows ``x`` (samples, features) and their labels ``y``; returns
        self."""
        self._check_params()
        x = rows_on_split0(as_matrix(x, "x"))
        if x.gshape[0] < self.n_neighbors:
            raise ValueError(
                f"n_neighbors={self.n_neighbors} must not exceed the {x.gshape[0]} rows of x"
            )
        y_local = labels_like(y, x)
        comm = x.comm.handle if (x.split == 0 and x.comm.size > 1) else None
        classes = classes_of(y_local, comm)
        self.classes_ = array(classes, comm=x.comm, device=x.device)
        self._x = x
        self._y = torch.searchsorted(classes.to(torch.float64), y_local.to(torch.float64))
        self.n_samples_fit_ = x.gshape[0]
        self.n_features_in_ = x.gshape[1]
        return self

    # ------------------------------------------------------------ neighbours
    def _query(self, x) -> tuple[DNDarray, bool]:
        if not hasattr(self, "_x"):
            raise ValueError("this KNeighborsClassifier is not fitted yet: call fit first")
        x = rows_on_split0(as_matrix(x, "x"))
        if x.gshape[1] != self.n_features_in_:
            raise ValueError(
                f"x must have {self.n_features_in_} features as in fit, got {x.gshape[1]}"
            )
        replicated = x.split is None and self._x.split == 0
        if replicated:  # each rank answers its share of the queries, then they are shared
            x = resplit(x, 0)
        return x, replicated

    def _neighbours(self, x: DNDarray, k: int):
        """(distances, global training indices, class indices) of the ``k`` nearest training
        rows of every local query row, nearest first."""
        train = self._x
        dtype = float_type(x, train)
        q = x.larray.to(dtype)
        m = q.shape[0]
        best = (q.new_empty((m, 0)), torch.empty((m, 0), dtype=torch.int64, device=q.device))
        best = (*best, best[1].clone())
        blocks = [train.larray.to(dtype), self._y]
        if train.split is None:
            steps, starts = [(0, blocks)], [0]
        else:
            steps, starts = ring(blocks, train.counts, train.comm.handle), offsets_of(train.counts)
        for owner, (rows, labels) in steps:
            d = torch.cdist(q, rows, compute_mode="donot_use_mm_for_euclid_dist")
            index = torch.arange(starts[owner], starts[owner] + rows.shape[0], device=q.device)
            candidates = (d, index.expand(m, -1), labels.expand(m, -1))
            best = _keep_nearest(*(torch.cat([b, c], 1) for b, c in zip(best, candidates)), k=k)
        return best

    def kneighbors(self, x, n_neighbors=None, return_distance: bool = True):
        """The nearest training rows of every row of ``x``.

        Parameters
        ----------
        x : DNDarray
            (samples, features) queries.
        n_neighbors : int, optional
            How many (default: the estimator's).
        return_distance : bool
            Also return the distances.

        Returns
        -------
        (DNDarray, DNDarray) or DNDarray
            (samples, n_neighbors) euclidean distances and int64 global training row indices,
            nearest first, split like the rows of ``x``.
        """
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        check_int(k, "n_neighbors")
        x, replicated = self._query(x)
        if k > self.n_samples_fit_:
            raise ValueError(
                f"n_neighbors={k} must not exceed the {self.n_samples_fit_} training rows"
            )
        d, index, _ = self._neighbours(x, k)
        dist, index = wrap_rows(d, x, columns=k), wrap_rows(index, x, columns=k)
        if replicated:
            dist, index = resplit(dist, None), resplit(index, None)
        return (dist, index) if return_distance else index

    def predict_proba(self, x) -> DNDarray:
        """(samples, classes) the share of (weighted) votes of every class, split like the rows
        of ``x``."""
        self._check_params()
        x, replicated = self._query(x)
        d, _, classes = self._neighbours(x, self.n_neighbors)
        votes = _vote_weights(d, self.weights)
        n_classes = self.classes_.gshape[0]
        proba = torch.zeros(d.shape[0], n_classes, dtype=d.dtype, device=d.device)
        proba.scatter_add_(1, classes, votes)
        proba /= proba.sum(1, keepdim=True)
        out = wrap_rows(proba, x, columns=n_classes)
        return resplit(out, None) if replicated else out

    def predict(self, x) -> DNDarray:
        """(samples,) the class with most (weighted) votes; the lowest class on ties."""
        proba = self.predict_proba(x)
        local = self.classes_.larray[proba.larray.argmax(1)]
        return wrap_rows(local, proba)


def _keep_nearest(d: torch.Tensor, index: torch.Tensor, labels: torch.Tensor, k: int):
    """The ``k`` smallest distances of every row with their indices and labels, ordered by
    (distance, index) so that ties are resolved alike whatever order the candidates came in."""
    order = torch.argsort(index, dim=1, stable=True)
    d, index, labels = d.gather(1, order), index.gather(1, order), labels.gather(1, order)
    order = torch.argsort(d, dim=1, stable=True)[:, :k]
    return d.gather(1, order), index.gather(1, order), labels.gather(1, order)


def _vote_weights(d: torch.Tensor, weights: str) -> torch.Tensor:
    if weights == "uniform":
        return torch.ones_like(d)
    exact = d == 0
    inverse = 1.0 / d.clamp(min=torch.finfo(d.dtype).tiny)
    return torch.where(exact.any(1, keepdim=True), exact.to(d.dtype), inverse)
