"""What k-means, k-medians and k-medoids share: checks, the initial centres (random rows,
parallel k-means++ or given), the iteration loop, labels, inertia and predict."""

from __future__ import annotations

import math

import numpy as np
import torch

import hpc_comm as hc

from ..dndarray import DNDarray
from ..factories import array
from ..spatial._rows import (
    LocalRows,
    Params,
    as_matrix,
    check_int,
    check_number,
    float_type,
    generator,
    moments,
    rows_on_split0,
    wrap_rows,
)

_PLUSPLUS = ("k-means++", "kmeans++", "probability_based", "kmedians++", "kmedoids++")


def squared_distances(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Squared euclidean distances (rows of x, rows of c), computed from the differences so that
    each entry depends on its two rows only (not on how the rows are blocked)."""
    return torch.cdist(x, c, compute_mode="donot_use_mm_for_euclid_dist") ** 2


def cluster_sizes(rows: LocalRows, labels, old_labels, k: int) -> torch.Tensor:
    """(k + 1,) int64 over all ranks: the rows of each cluster, then how many labels changed
    (one allreduce)."""
    sizes = torch.zeros(k + 1, dtype=torch.int64, device=labels.device)
    sizes[:k].index_add_(0, labels, torch.ones_like(labels))
    sizes[k] = (labels != old_labels).sum()
    rows.allreduce(sizes)
    return sizes


def manhattan_distances(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """L1 distances (rows of x, rows of c)."""
    return torch.cdist(x, c, p=1.0)


class _KCluster(Params):
    """Base of the k-centre estimators. Subclasses set ``_cost`` (a point's cost to a centre)
    and implement ``_update`` (new centres from the labels) or the whole ``_step``."""

    _cost = staticmethod(squared_distances)

    # the hyperparameters of KMeans and KMedians (KMedoids, without ``tol``, has its own)
    def __init__(
        self,
        n_clusters: int = 8,
        init="random",
        max_iter: int = 300,
        tol: float = 1e-4,
        random_state=None,
        n_init: int = 1,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_init = n_init

    def _relative_tol(self) -> float:
        return getattr(self, "tol", 0.0)

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        check_int(self.n_clusters, "n_clusters")
        check_int(self.max_iter, "max_iter")
        check_int(self.n_init, "n_init")
        check_number(self._relative_tol(), "tol")
        init = self.init
        if isinstance(init, str):
            if init != "random" and init not in _PLUSPLUS:
                raise ValueError(f"init must be 'random', 'k-means++' or an array, got {init!r}")
        elif not isinstance(init, (DNDarray, np.ndarray, torch.Tensor)):
            raise ValueError(f"init must be 'random', 'k-means++' or an array, got {init!r}")
        if self.random_state is not None:
            check_int(self.random_state, "random_state", low=0)

    def _check_data(self, x) -> DNDarray:
        self._check_params()
        x = as_matrix(x, "x")
        if x.gshape[0] < self.n_clusters:
            raise ValueError(
                f"n_clusters={self.n_clusters} must not exceed the number of samples "
                f"{x.gshape[0]} of x"
            )
        return rows_on_split0(x)

    def _given_centres(self, x: DNDarray, dtype: torch.dtype) -> torch.Tensor:
        init = self.init
        if isinstance(init, DNDarray):
            from .._redistribute import resplit

            centres = resplit(init, None).larray
        else:
            centres = torch.as_tensor(np.array(init, dtype=np.float64))
        if tuple(centres.shape) != (self.n_clusters, x.gshape[1]):
            raise ValueError(
                f"init must have shape (n_clusters, features) = ({self.n_clusters}, "
                f"{x.gshape[1]}), got {tuple(centres.shape)}"
            )
        return centres.to(dtype=dtype, device=x.larray.device).clone()

    # ------------------------------------------------------------ initialise
    def _initial_centres(self, rows: LocalRows, rng: np.random.Generator) -> torch.Tensor:
        if self.init == "random":
            return rows.rows_at(rng.choice(rows.n, self.n_clusters, replace=False))
        return plusplus(rows, self.n_clusters, rng, self._cost)

    # --------------------------------------------------------------- iterate
    def _assign(self, x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        return self._cost(x, centres).argmin(1)

    def _iterate(self, rows: LocalRows, centres: torch.Tensor, tol: float):
        """Assign, update, until no label changes, the centres move less than ``tol`` (squared
        shift summed over centres) or ``max_iter``; as scikit-learn's Lloyd loop, the labels
        are recomputed for the final centres unless the labels stopped changing."""
        labels = torch.full((rows.data.shape[0],), -1, dtype=torch.int64, device=centres.device)
        strict, n_iter = False, 0
        for n_iter in range(1, self.max_iter + 1):  # noqa: B007  (n_iter is the result)
            new_labels, new_centres, changed = self._step(rows, centres, labels)
            shift = float(((new_centres - centres) ** 2).sum())
            centres, labels = new_centres, new_labels
            if changed == 0:
                strict = True
                break
            if shift <= tol:
                break
        if not strict:
            labels = self._assign(rows.data, centres)
        return centres, labels, n_iter

    def _step(self, rows: LocalRows, centres, old_labels):
        """One iteration: the new labels, the new centres and how many labels changed over
        all ranks."""
        labels = self._assign(rows.data, centres)
        new_centres, changed = self._update(rows, labels, old_labels, centres)
        return labels, new_centres, changed

    def _update(self, rows, labels, old_labels, centres):
        raise NotImplementedError

    def _inertia(self, rows: LocalRows, centres, labels) -> float:
        cost = self._cost_to_own(rows.data, centres, labels)
        return float(rows.allreduce(cost.sum().to(torch.float64).reshape(1)))

    def _cost_to_own(self, x, centres, labels) -> torch.Tensor:
        diff = x - centres[labels]
        if self._cost is squared_distances:
            return (diff * diff).sum(1)
        return diff.abs().sum(1)

    # ------------------------------------------------------------------- API
    def fit(self, x, y=None):
        """Cluster the rows of ``x``.

        Parameters
        ----------
        x : DNDarray
            (samples, features) data, replicated or split along rows (a column split is moved
            to rows first).
        y : ignored
            For scikit-learn's signature.

        Returns
        -------
        self
        """
        x = self._check_data(x)
        dtype = float_type(x)
        rows = LocalRows.of(x, dtype)
        given = None if isinstance(self.init, str) else self._given_centres(x, dtype)
        rng = None if given is not None else generator(self.random_state, x.comm.handle)
        tol = self._tolerance(rows)
        best = None
        for _ in range(1 if given is not None else self.n_init):
            start = given if given is not None else self._initial_centres(rows, rng)
            centres, labels, n_iter = self._iterate(rows, start, tol)
            inertia = self._inertia(rows, centres, labels)
            if best is None or inertia < best[0]:
                best = (inertia, centres, labels, n_iter)
        self.inertia_, centres, labels, self.n_iter_ = best
        self.cluster_centers_ = array(centres, comm=x.comm, device=x.device)
        self.labels_ = wrap_rows(labels, x)
        self.n_features_in_ = x.gshape[1]
        return self

    def _tolerance(self, rows: LocalRows) -> float:
        """scikit-learn's tolerance: ``tol`` times the mean variance of the features."""
        tol = self._relative_tol()
        if tol == 0.0:
            return 0.0
        counts, _, m2 = moments(rows.data, rows.comm)
        return float((m2[0] / counts[0]).mean()) * tol

    def _check_fitted(self, x) -> DNDarray:
        if not hasattr(self, "cluster_centers_"):
            raise ValueError(f"this {type(self).__name__} is not fitted yet: call fit first")
        x = rows_on_split0(as_matrix(x, "x"))
        if x.gshape[1] != self.n_features_in_:
            raise ValueError(
                f"x must have {self.n_features_in_} features as in fit, got {x.gshape[1]}"
            )
        return x

    def predict(self, x) -> DNDarray:
        """The index of the nearest centre of every row of ``x``.

        Parameters
        ----------
        x : DNDarray
            (samples, features) data.

        Returns
        -------
        DNDarray
            (samples,) int64 labels, split like the rows of ``x``.
        """
        x = self._check_fitted(x)
        centres = self.cluster_centers_.larray
        return wrap_rows(self._assign(x.larray.to(centres.dtype), centres), x)

    def fit_predict(self, x, y=None) -> DNDarray:
        """``fit(x)`` and return ``labels_``."""
        return self.fit(x).labels_


def _quantised(weights: torch.Tensor, rows: LocalRows) -> tuple[torch.Tensor, float]:
    """Integer weights proportional to ``weights`` (>= 0), whose sum over all rows fits int64;
    integer sums are exact and associative, so what is drawn from them does not depend on how
    the rows are split. Returns the integers and the scale used (0 when all weights are 0)."""
    local_max = weights.max() if weights.numel() else weights.new_zeros(())
    top = float(rows.allreduce(local_max.to(torch.float64).reshape(1), hc.MAX))
    if top <= 0.0:
        return torch.zeros_like(weights, dtype=torch.int64), 0.0
    bits = 62 - max(math.ceil(math.log2(max(rows.n, 2))), 1)
    scale = 2.0**bits / top
    return torch.floor(weights.to(torch.float64) * scale).to(torch.int64), scale


def _draw(rows: LocalRows, q: torch.Tensor, uniforms: np.ndarray) -> torch.Tensor:
    """Rows drawn with probability proportional to the integer weights ``q`` (one row per
    uniform in [0, 1)).

    Each rank's total weight is combined in one allreduce; the rank whose share covers a draw
    picks the row among its own by the prefix sums of its local weights; the picked rows reach
    every rank in one more allreduce.
    """
    size = 1 if rows.comm is None else rows.comm.size
    totals = torch.zeros(size, dtype=torch.int64, device=q.device)
    totals[rows.rank] = q.sum()
    rows.allreduce(totals)
    grand = int(totals.sum())
    if grand == 0:  # every row sits on a centre already: draw uniformly
        return rows.rows_at([min(int(u * rows.n), rows.n - 1) for u in uniforms])
    targets = [min(int(u * grand), grand - 1) for u in uniforms]
    start, mine = int(totals[: rows.rank].sum()), int(totals[rows.rank])
    cumulative = torch.cumsum(q, 0)
    picked = rows.data.new_zeros((len(targets), rows.data.shape[1]))
    for i, t in enumerate(targets):
        if start <= t < start + mine:
            local = int(
                torch.searchsorted(cumulative, cumulative.new_tensor(t - start), right=True)
            )
            picked[i] = rows.data[local]
    return rows.allreduce(picked)


def _best_candidate(with_candidate: torch.Tensor, scale: float, rows: LocalRows) -> int:
    """The candidate with the smallest total cost, compared as integer-quantised sums (one
    allreduce); the first one on ties."""
    if scale == 0.0:
        return 0
    quantised = torch.floor(with_candidate.to(torch.float64) * scale).to(torch.int64)
    return int(torch.argmin(rows.allreduce(quantised.sum(0))))


def plusplus(rows: LocalRows, k: int, rng: np.random.Generator, cost) -> torch.Tensor:
    """k-means++ seeding (greedy, as scikit-learn: each new centre is the best of
    ``2 + log(k)`` candidates drawn with probability proportional to the cost to the nearest
    centre chosen so far).

    Every rank draws the same uniforms; rows are picked from integer-quantised costs and the
    candidates compared by integer-quantised potentials, so for a given ``rng`` the centres are
    the same for any number of ranks and any split of the rows.

    Parameters
    ----------
    rows : LocalRows
        The data.
    k : int
        Number of centres.
    rng : numpy.random.Generator
        Drawing the same numbers on every rank.
    cost : callable
        ``cost(x, c)``: (rows, centres) cost of assigning each row to each centre.

    Returns
    -------
    torch.Tensor
        (k, features) centres, rows of the data.
    """
    n_trials = 2 + int(math.log(k))
    first = int(rng.integers(rows.n))
    centres = [rows.rows_at([first])[0]]
    closest = cost(rows.data, centres[0][None]).squeeze(1)
    for _ in range(1, k):
        q, scale = _quantised(closest, rows)
        candidates = _draw(rows, q, rng.random(n_trials))
        with_candidate = torch.minimum(closest[:, None], cost(rows.data, candidates))
        best = _best_candidate(with_candidate, scale, rows)
        centres.append(candidates[best])
        closest = with_candidate[:, best]
    return torch.stack(centres)
