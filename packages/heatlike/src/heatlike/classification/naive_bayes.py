"""Gaussian naive Bayes on row-distributed data: per-class means and variances from two
allreduces, predictions without communication."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..dndarray import DNDarray
from ..factories import array
from ..spatial._rows import (
    LocalRows,
    Params,
    as_matrix,
    check_number,
    classes_of,
    float_type,
    labels_like,
    moments,
    rows_on_split0,
    wrap_rows,
)

__all__ = ["GaussianNB"]


class GaussianNB(Params):
    """Gaussian naive Bayes classifier (scikit-learn's ``GaussianNB``).

    Parameters
    ----------
    priors : array-like or None
        (classes,) prior probabilities; None: the class frequencies of the data.
    var_smoothing : float
        Added to every variance: ``var_smoothing`` times the largest feature variance of the
        data (keeps the likelihoods finite).

    Attributes
    ----------
    classes_ : DNDarray
        (classes,) the sorted labels.
    class_count_ : DNDarray
        (classes,) float64 rows per class.
    class_prior_ : DNDarray
        (classes,) float64 prior probabilities.
    theta_ : DNDarray
        (classes, features) float64 means per class.
    var_ : DNDarray
        (classes, features) float64 variances per class, smoothing added.
    epsilon_ : float
        The smoothing added to the variances (from the last batch, as scikit-learn).

    Notes
    -----
    Per-class counts, sums and squared deviations are float64 and combined over ranks in two
    allreduces; ``partial_fit`` merges batches exactly (Chan et al.), like scikit-learn.
    """

    def __init__(self, priors=None, var_smoothing: float = 1e-9):
        self.priors = priors
        self.var_smoothing = var_smoothing

    # ------------------------------------------------------------------ fit
    def fit(self, x, y):
        """Learn the class statistics from ``x`` (samples, features) and labels ``y``
        (samples,); returns self."""
        for name in ("classes_", "_count", "_theta", "_var"):
            self.__dict__.pop(name, None)
        return self._partial_fit(x, y, None, first=True)

    def partial_fit(self, x, y, classes=None):
        """Update the class statistics with one batch; ``classes`` (every label that will
        occur) is required on the first call. Returns self."""
        first = not hasattr(self, "classes_")
        if first and classes is None:
            raise ValueError("classes must be given on the first call to partial_fit")
        return self._partial_fit(x, y, classes if first else None, first)

    def _partial_fit(self, x, y, classes, first: bool):
        check_number(self.var_smoothing, "var_smoothing")
        if first and self.priors is not None:
            _check_priors(self.priors)
        x = rows_on_split0(as_matrix(x, "x"))
        y_local = labels_like(y, x)
        comm = x.comm.handle if (x.split == 0 and x.comm.size > 1) else None
        seen = classes_of(y_local, comm)
        if first:
            known = seen if classes is None else torch.as_tensor(np.unique(np.asarray(classes)))
            self._start(x, known)
        elif x.gshape[1] != self.n_features_in_:
            raise ValueError(
                f"x must have {self.n_features_in_} features as before, got {x.gshape[1]}"
            )
        known = self.classes_.larray
        missing = [v for v in seen.tolist() if v not in known.tolist()]
        if missing:
            raise ValueError(f"y has labels {missing} that are not in classes {known.tolist()}")
        rows = LocalRows.of(x, torch.float64)
        index = torch.searchsorted(known.to(torch.float64), y_local.to(torch.float64))
        counts, means, m2 = moments(rows.data, rows.comm, index, len(known))
        self.epsilon_ = self.var_smoothing * float(_total_variance(counts, means, m2).max())
        # as scikit-learn: the new batch's smoothing comes off the stored variances before the
        # merge and goes back on after it
        base = self._var if first else self._var - self.epsilon_
        n, self._theta, m2 = _merge(
            self._count, self._theta, self._count[:, None] * base, counts, means, m2
        )
        self._var = torch.where(n[:, None] > 0, m2 / n.clamp(min=1)[:, None], base)
        self._var += self.epsilon_
        self._count = n
        self._publish(x)
        return self

    def _start(self, x: DNDarray, classes: torch.Tensor) -> None:
        k, f = len(classes), x.gshape[1]
        if self.priors is not None and len(_check_priors(self.priors)) != k:
            raise ValueError(f"priors must have one entry per class ({k}), got {len(self.priors)}")
        self.classes_ = array(classes, comm=x.comm, device=x.device)
        self.n_features_in_ = f
        self._count = torch.zeros(k, dtype=torch.float64)
        self._theta = torch.zeros(k, f, dtype=torch.float64)
        self._var = torch.zeros(k, f, dtype=torch.float64)

    def _publish(self, x: DNDarray) -> None:
        """The learned attributes as replicated arrays."""
        var = self._var
        if self.priors is None:
            prior = self._count / self._count.sum()
        else:
            prior = torch.as_tensor(np.asarray(self.priors, dtype=np.float64)).reshape(-1)
        for name, value in (
            ("class_count_", self._count), ("class_prior_", prior),
            ("theta_", self._theta), ("var_", var),
        ):  # fmt: skip
            setattr(self, name, array(value.clone(), comm=x.comm, device=x.device))

    @property
    def sigma_(self) -> DNDarray:
        """Heat's and older scikit-learn's name of ``var_``."""
        return self.var_

    # -------------------------------------------------------------- predict
    def _joint_log_likelihood(self, x) -> tuple[DNDarray, torch.Tensor]:
        if not hasattr(self, "classes_"):
            raise ValueError("this GaussianNB is not fitted yet: call fit first")
        x = rows_on_split0(as_matrix(x, "x"))
        if x.gshape[1] != self.n_features_in_:
            raise ValueError(
                f"x must have {self.n_features_in_} features as in fit, got {x.gshape[1]}"
            )
        t = x.larray.to(torch.float64)
        var, theta = self.var_.larray, self.theta_.larray
        log_prior = torch.log(self.class_prior_.larray)
        normaliser = -0.5 * torch.log(2.0 * math.pi * var).sum(1)
        squares = ((t[:, None, :] - theta[None]) ** 2 / var[None]).sum(2)
        return x, log_prior + normaliser - 0.5 * squares

    def predict_log_proba(self, x) -> DNDarray:
        """(samples, classes) log posterior probabilities, split like the rows of ``x``."""
        x, jll = self._joint_log_likelihood(x)
        out = jll - torch.logsumexp(jll, 1, keepdim=True)
        return wrap_rows(out.to(float_type(x)), x, columns=jll.shape[1])

    def predict_proba(self, x) -> DNDarray:
        """(samples, classes) posterior probabilities, split like the rows of ``x``."""
        x, jll = self._joint_log_likelihood(x)
        out = torch.softmax(jll, 1)
        return wrap_rows(out.to(float_type(x)), x, columns=jll.shape[1])

    def predict(self, x) -> DNDarray:
        """(samples,) the most probable class of every row, split like the rows of ``x``."""
        x, jll = self._joint_log_likelihood(x)
        return wrap_rows(self.classes_.larray[jll.argmax(1)], x)


def _check_priors(priors) -> np.ndarray:
    """``priors`` as a float64 vector of probabilities; ValueError otherwise."""
    try:
        values = np.asarray(priors, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"priors must be a sequence of probabilities, got {priors!r}") from None
    if (values < 0).any():
        raise ValueError(f"priors must be non-negative, got {values.tolist()}")
    if not math.isclose(values.sum(), 1.0, rel_tol=0, abs_tol=1e-10):
        raise ValueError(f"priors must sum to 1, got {values.sum()}")
    return values


def _merge(n_a, mean_a, m2_a, n_b, mean_b, m2_b):
    """Per-class counts, means and squared deviations of two batches together."""
    n = n_a + n_b
    safe = n.clamp(min=1)[:, None]
    delta = mean_b - mean_a
    mean = mean_a + delta * (n_b[:, None] / safe)
    m2 = m2_a + m2_b + delta * delta * (n_a * n_b)[:, None] / safe
    return n, mean, m2


def _total_variance(counts, means, m2) -> torch.Tensor:
    """Variance of every feature over all groups together (law of total variance)."""
    n = counts.sum().clamp(min=1)
    mean = (counts[:, None] * means).sum(0) / n
    return (m2 + counts[:, None] * (means - mean) ** 2).sum(0) / n
