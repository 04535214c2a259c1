"""Principal component analysis with scikit-learn's estimator API, by the distributed SVD (TSQR)
or the hierarchical SVD."""

from __future__ import annotations

import math

import torch

from .. import elementwise as ew
from .. import reductions
from .._redistribute import resplit
from ..dndarray import DNDarray
from ..linalg import hsvd_rank, hsvd_rtol
from ..linalg.svd import largest_entry_signs, right_singular

__all__ = ["PCA"]

_SOLVERS = ("full", "hierarchical")


class PCA:
    """Principal component analysis: centre the data, project it onto the leading right singular
    vectors.

    ``svd_solver="full"`` uses the exact distributed SVD (TSQR for data split on its samples).
    ``svd_solver="hierarchical"`` uses ``hsvd_rank`` (int or None ``n_components``) or
    ``hsvd_rtol`` with ``rtol = sqrt(1 - n_components)`` (float ``n_components``): approximate,
    exact when ``n_components`` is at least the rank of the data.

    Signs follow scikit-learn (>= 1.5): the largest-magnitude entry of every row of
    ``components_`` is positive.

    Parameters
    ----------
    n_components : None, int or float
        None keeps min(n_samples, n_features) components; an int keeps that many; a float in
        (0, 1) keeps the fewest components whose explained variance ratio exceeds it.
    svd_solver : {"full", "hierarchical"}
    whiten : bool
        Scale the transformed data to unit variance per component.
    random_state : int, optional
        Accepted for scikit-learn compatibility; both solvers are deterministic.

    Attributes
    ----------
    components_ : DNDarray (n_components_, n_features), on every rank
    explained_variance_, explained_variance_ratio_, singular_values_ : DNDarray (n_components_,)
    mean_ : DNDarray (n_features,)
    n_components_ : int
    n_samples_, n_features_in_ : int
    noise_variance_ : float
        The mean variance of the discarded components (0 if none is discarded).
    total_explained_variance_ratio_ : float
    """

    def __init__(self, n_components=None, svd_solver="full", whiten=False, random_state=None):
        if n_components is not None:
            is_int = isinstance(n_components, int) and not isinstance(n_components, bool)
            is_fraction = isinstance(n_components, float) and 0.0 < n_components < 1.0
            if not (is_int and n_components >= 1) and not is_fraction:
                raise ValueError(
                    "n_components must be None, an int >= 1 or a float in (0, 1), "
                    f"got {n_components!r}"
                )
        if svd_solver not in _SOLVERS:
            raise ValueError(f"svd_solver must be one of {_SOLVERS}, got {svd_solver!r}")
        if not isinstance(whiten, bool):
            raise TypeError(f"whiten must be a bool, got {type(whiten).__name__}")
        if random_state is not None and not isinstance(random_state, int):
            raise TypeError(f"random_state must be an int or None, got {random_state!r}")
        self.n_components = n_components
        self.svd_solver = svd_solver
        self.whiten = whiten
        self.random_state = random_state

    def fit(self, X: DNDarray, y=None) -> PCA:
        """Learn the components of ``X`` (n_samples, n_features), split on any axis.

        Returns
        -------
        PCA
            ``self``.
        """
        _check_data(X)
        n_samples, n_features = X.gshape
        if isinstance(self.n_components, int) and self.n_components > min(X.gshape):
            raise ValueError(
                f"n_components={self.n_components} must be at most min(n_samples, n_features)"
                f" = {min(X.gshape)}"
            )
        self.mean_ = reductions.mean(X, axis=0)
        centred = X - self.mean_
        total_var = float(reductions.sum(reductions.var(X, axis=0, ddof=1)).larray)
        S, Vh = self._singular_factors(centred)
        variances = S.larray**2 / max(n_samples - 1, 1)
        k = self._kept(variances, total_var, S.gshape[0])
        signs = largest_entry_signs(Vh)
        comps = (Vh.larray * signs[:, None])[:k]
        self.components_ = DNDarray._make(comps, (k, n_features), None, X.comm, X.device)
        self.n_components_ = k
        self.n_samples_, self.n_features_in_ = n_samples, n_features
        self.explained_variance_ = _vector(variances[:k], X)
        self.explained_variance_ratio_ = _vector(variances[:k] / total_var, X)
        self.singular_values_ = _vector(S.larray[:k], X)
        self.total_explained_variance_ratio_ = float(variances[:k].sum() / total_var)
        rest = min(X.gshape) - k
        self.noise_variance_ = (total_var - float(variances[:k].sum())) / rest if rest else 0.0
        return self

    def _singular_factors(self, centred: DNDarray):
        """Singular values (descending) and right singular vectors (replicated)."""
        if self.svd_solver == "full":
            S, Vh = right_singular(centred)
        elif isinstance(self.n_components, float):
            _, S, Vh, _ = hsvd_rtol(centred, math.sqrt(1 - self.n_components), compute_sv=True)
        else:
            rank = min(centred.gshape) if self.n_components is None else self.n_components
            _, S, Vh, _ = hsvd_rank(centred, rank, compute_sv=True)
        S, Vh = resplit(S, None), resplit(Vh, None)
        order = torch.argsort(S.larray, descending=True, stable=True)
        S = DNDarray._make(S.larray[order], S.gshape, None, S.comm, S.device)
        Vh = DNDarray._make(Vh.larray[order], Vh.gshape, None, Vh.comm, Vh.device)
        return S, Vh

    def _kept(self, variances: torch.Tensor, total_var: float, available: int) -> int:
        """How many components to keep (scikit-learn's rule for a fractional n_components)."""
        if self.n_components is None:
            return available
        if isinstance(self.n_components, int):
            return min(self.n_components, available)
        ratios = torch.cumsum(variances.double(), 0) / total_var
        k = int(torch.searchsorted(ratios, ratios.new_tensor([self.n_components]), right=True)) + 1
        return min(k, available)

    def transform(self, X: DNDarray) -> DNDarray:
        """The projection of ``X`` onto the components (split like ``X``'s samples)."""
        self._check_fitted()
        _check_data(X)
        if X.gshape[1] != self.n_features_in_:
            raise ValueError(f"X must have {self.n_features_in_} features, got {X.gshape[1]}")
        projected = (X - self.mean_) @ self.components_.T
        if self.whiten:
            projected = projected / ew.sqrt(self.explained_variance_)
        return projected

    def fit_transform(self, X: DNDarray, y=None) -> DNDarray:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def inverse_transform(self, X: DNDarray) -> DNDarray:
        """Map projected data back to feature space."""
        self._check_fitted()
        _check_data(X)
        if X.gshape[1] != self.n_components_:
            raise ValueError(f"X must have {self.n_components_} columns, got {X.gshape[1]}")
        if self.whiten:
            X = X * ew.sqrt(self.explained_variance_)
        return X @ self.components_ + self.mean_

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise ValueError("this PCA is not fitted yet: call fit first")


def _check_data(X) -> None:
    if not isinstance(X, DNDarray):
        raise TypeError(f"X must be a DNDarray, got {type(X).__name__}")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-d (n_samples, n_features), got shape {X.gshape}")
    if X.larray.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"X must be float32 or float64, got {X.dtype.__name__}")


def _vector(t: torch.Tensor, like: DNDarray) -> DNDarray:
    t = t.to(like.larray.dtype)
    return DNDarray._make(t, tuple(t.shape), None, like.comm, like.device)
