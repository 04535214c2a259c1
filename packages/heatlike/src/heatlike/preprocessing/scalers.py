"""Feature scaling of distributed data with scikit-learn's estimators: StandardScaler,
MinMaxScaler, Normalizer and RobustScaler."""

from __future__ import annotations

import statistics

import torch

import hpc_comm as hc

from .._redistribute import resplit
from ..dndarray import DNDarray
from ..factories import array
from ..reductions import percentile
from ..spatial._rows import LocalRows, Params, as_matrix, moments, rows_on_split0

__all__ = ["MinMaxScaler", "Normalizer", "RobustScaler", "StandardScaler"]


def _float_dtype(x: DNDarray) -> torch.dtype:
    t = x.larray.dtype
    return t if t in (torch.float32, torch.float64) else torch.float32


def _replicated(values: torch.Tensor, like: DNDarray) -> DNDarray:
    return array(values, comm=like.comm, device=like.device)


def _safe_scale(scale: torch.Tensor) -> torch.Tensor:
    """Scales of (near) constant features become 1, so they are left as they are (as
    scikit-learn's ``_handle_zeros_in_scale``)."""
    tiny = 10 * torch.finfo(scale.dtype).eps
    return torch.where(scale < tiny, torch.ones_like(scale), scale)


class _Scaler(Params):
    """Shared checks and the column-wise application of per-feature parameters."""

    def _check_input(self, x, fitting: bool) -> DNDarray:
        x = as_matrix(x, "x")
        if not fitting:
            if not hasattr(self, "n_features_in_"):
                raise ValueError(f"this {type(self).__name__} is not fitted yet: call fit first")
            if x.gshape[1] != self.n_features_in_:
                raise ValueError(
                    f"x must have {self.n_features_in_} features as in fit, got {x.gshape[1]}"
                )
        return x

    @staticmethod
    def _columns(x: DNDarray, per_feature: torch.Tensor) -> torch.Tensor:
        """The entries of a per-feature vector for this rank's columns of ``x``."""
        if x.split == 1:
            return per_feature[x.offset : x.offset + x.lshape[1]]
        return per_feature

    def _result(self, x: DNDarray, local: torch.Tensor) -> DNDarray:
        """``local`` laid out as ``x``; written into ``x`` itself when ``copy`` is False and the
        dtypes agree."""
        if not getattr(self, "copy", True) and x.larray.dtype == local.dtype:
            x.larray.copy_(local)
            return x
        counts = None if x.split is None else x.counts
        return DNDarray._make(local, x.gshape, x.split, x.comm, x.device, counts)

    def _apply(self, x, fn) -> DNDarray:
        """``fn(local float block, x)`` on every rank's block of the fitted ``x``."""
        x = self._check_input(x, fitting=False)
        local = x.larray.to(_float_dtype(x))
        return self._result(x, fn(local, x))

    def fit_transform(self, x, y=None) -> DNDarray:
        """``fit(x)`` then ``transform(x)``."""
        return self.fit(x, y).transform(x)


class StandardScaler(_Scaler):
    """Remove the mean and scale to unit variance, per feature.

    Parameters
    ----------
    copy : bool
        False: ``transform`` writes into a float input instead of a new array.
    with_mean : bool
        Subtract the mean.
    with_std : bool
        Divide by the standard deviation (population, ``ddof=0``).

    Attributes
    ----------
    mean_ : DNDarray or None
        (features,) float64 means (None with neither ``with_mean`` nor ``with_std``).
    var_ : DNDarray or None
        (features,) float64 variances (None without ``with_std``).
    scale_ : DNDarray or None
        (features,) standard deviations, 1 for constant features (None without ``with_std``).
    n_samples_seen_ : int
        Rows seen by ``fit`` / ``partial_fit``.

    Notes
    -----
    Moments are computed in float64 in two passes (sums, then squares around the global mean),
    two allreduces of (features,) per fit; ``partial_fit`` merges batches exactly (Chan et al.).
    """

    def __init__(self, copy: bool = True, with_mean: bool = True, with_std: bool = True):
        self.copy = copy
        self.with_mean = with_mean
        self.with_std = with_std

    def fit(self, x, y=None):
        """Learn the per-feature mean and variance of ``x`` (samples, features); returns self."""
        for name in ("mean_", "var_", "scale_", "n_samples_seen_"):
            self.__dict__.pop(name, None)
        return self.partial_fit(x, y)

    def partial_fit(self, x, y=None):
        """Update the mean and variance with the rows of ``x``; returns self."""
        fitted = hasattr(self, "n_samples_seen_")
        x = self._check_input(x, fitting=not fitted)
        rows = LocalRows.of(rows_on_split0(x), torch.float64)
        counts, means, m2 = moments(rows.data, rows.comm)
        n, mean, m2 = float(counts[0]), means[0], m2[0]
        if fitted:
            n, mean, m2 = _merge(self.n_samples_seen_, self._mean, self._m2, n, mean, m2)
        self.n_samples_seen_, self._mean, self._m2 = int(n), mean, m2
        self.n_features_in_ = x.gshape[1]
        var = m2 / max(n, 1.0)
        keep_mean = self.with_mean or self.with_std
        self.mean_ = _replicated(mean, x) if keep_mean else None
        self.var_ = _replicated(var, x) if self.with_std else None
        self.scale_ = _replicated(_safe_scale(var.sqrt()), x) if self.with_std else None
        return self

    def transform(self, x) -> DNDarray:
        """Standardise ``x``: ``(x - mean_) / scale_``, laid out as ``x``."""

        def fn(local, x):
            if self.with_mean:
                local = local - self._columns(x, self.mean_.larray).to(local.dtype)
            if self.with_std:
                local = local / self._columns(x, self.scale_.larray).to(local.dtype)
            return local

        return self._apply(x, fn)

    def inverse_transform(self, x) -> DNDarray:
        """Undo ``transform``: ``x * scale_ + mean_``."""

        def fn(local, x):
            if self.with_std:
                local = local * self._columns(x, self.scale_.larray).to(local.dtype)
            if self.with_mean:
                local = local + self._columns(x, self.mean_.larray).to(local.dtype)
            return local

        return self._apply(x, fn)


def _merge(n_a, mean_a, m2_a, n_b, mean_b, m2_b):
    """Count, mean and squared deviations of two batches together (Chan et al. 1979)."""
    n = n_a + n_b
    if n_b == 0:
        return n_a, mean_a, m2_a
    delta = mean_b - mean_a
    mean = mean_a + delta * (n_b / n)
    m2 = m2_a + m2_b + delta * delta * (n_a * n_b / n)
    return n, mean, m2


class MinMaxScaler(_Scaler):
    """Scale every feature linearly onto ``feature_range``.

    Parameters
    ----------
    feature_range : (float, float)
        Target (min, max), min < max.
    copy : bool
        False: ``transform`` writes into a float input.
    clip : bool
        Clip transformed values to ``feature_range`` (for data outside the fitted range).

    Attributes
    ----------
    data_min_, data_max_, data_range_ : DNDarray
        (features,) per-feature minimum, maximum and their difference.
    scale_, min_ : DNDarray
        ``transform(x) = x * scale_ + min_``.
    n_samples_seen_ : int
        Rows seen.

    Notes
    -----
    One allreduce of the per-feature minima and maxima (as one buffer) per fit.
    """

    def __init__(self, feature_range=(0, 1), copy: bool = True, clip: bool = False):
        self.feature_range = feature_range
        self.copy = copy
        self.clip = clip

    def _range(self) -> tuple[float, float]:
        try:
            low, high = (float(v) for v in self.feature_range)
        except (TypeError, ValueError):
            raise ValueError(
                f"feature_range must be a pair of numbers (min, max), got {self.feature_range!r}"
            ) from None
        if not low < high:
            raise ValueError(f"feature_range must have min < max, got {self.feature_range!r}")
        return low, high

    def fit(self, x, y=None):
        """Learn the per-feature minimum and maximum of ``x``; returns self."""
        self.__dict__.pop("n_samples_seen_", None)
        return self.partial_fit(x, y)

    def partial_fit(self, x, y=None):
        """Update the per-feature minimum and maximum with the rows of ``x``; returns self."""
        low, high = self._range()
        fitted = hasattr(self, "n_samples_seen_")
        x = self._check_input(x, fitting=not fitted)
        rows = LocalRows.of(rows_on_split0(x), torch.float64)
        f = x.gshape[1]
        bounds = torch.full((2, f), float("inf"), dtype=torch.float64)
        if rows.data.shape[0]:
            bounds[0], bounds[1] = rows.data.amin(0), -rows.data.amax(0)
        rows.allreduce(bounds, hc.MIN)
        data_min, data_max = bounds[0], -bounds[1]
        if fitted:
            data_min = torch.minimum(data_min, self.data_min_.larray)
            data_max = torch.maximum(data_max, self.data_max_.larray)
        self.n_samples_seen_ = (self.n_samples_seen_ if fitted else 0) + rows.n
        self.n_features_in_ = f
        data_range = data_max - data_min
        scale = (high - low) / _safe_scale(data_range)
        self.data_min_ = _replicated(data_min, x)
        self.data_max_ = _replicated(data_max, x)
        self.data_range_ = _replicated(data_range, x)
        self.scale_ = _replicated(scale, x)
        self.min_ = _replicated(low - data_min * scale, x)
        return self

    def transform(self, x) -> DNDarray:
        """``x * scale_ + min_`` (clipped to ``feature_range`` with ``clip``)."""
        low, high = self._range()

        def fn(local, x):
            out = local * self._columns(x, self.scale_.larray).to(local.dtype)
            out = out + self._columns(x, self.min_.larray).to(local.dtype)
            return out.clamp(low, high) if self.clip else out

        return self._apply(x, fn)

    def inverse_transform(self, x) -> DNDarray:
        """Undo ``transform``: ``(x - min_) / scale_``."""

        def fn(local, x):
            out = local - self._columns(x, self.min_.larray).to(local.dtype)
            return out / self._columns(x, self.scale_.larray).to(local.dtype)

        return self._apply(x, fn)


class Normalizer(_Scaler):
    """Scale every row (sample) to unit norm.

    Parameters
    ----------
    norm : {'l2', 'l1', 'max'}
        The row norm. Rows of norm 0 are left as they are.
    copy : bool
        False: ``transform`` writes into a float input.

    Notes
    -----
    Stateless: ``fit`` only checks its input. There is no ``inverse_transform`` (the norms are
    not kept, as in scikit-learn). For data split along columns the partial row norms are
    combined with one allreduce; otherwise no communication.
    """

    def __init__(self, norm: str = "l2", copy: bool = True):
        self.norm = norm
        self.copy = copy

    def _check_norm(self) -> str:
        if self.norm not in ("l1", "l2", "max"):
            raise ValueError(f"norm must be 'l1', 'l2' or 'max', got {self.norm!r}")
        return self.norm

    def fit(self, x, y=None):
        """Check ``x`` and the norm; returns self."""
        self._check_norm()
        self.n_features_in_ = self._check_input(x, fitting=True).gshape[1]
        return self

    def transform(self, x) -> DNDarray:
        """Every row of ``x`` divided by its norm."""
        norm = self._check_norm()

        def fn(local, x):
            partial, op = _partial_row_norms(local, norm)
            if x.split == 1 and x.comm.size > 1:
                x.comm.handle.allreduce(partial, op)
            norms = partial.sqrt() if norm == "l2" else partial
            return local / torch.where(norms == 0, torch.ones_like(norms), norms)[:, None]

        return self._apply(x, fn)


def _partial_row_norms(local: torch.Tensor, norm: str):
    """Each row's norm over this rank's columns (squared for 'l2') and how partial norms of
    column blocks combine."""
    if norm == "l2":
        return (local * local).sum(1), hc.SUM
    if norm == "l1":
        return local.abs().sum(1), hc.SUM
    if local.shape[1] == 0:
        return local.new_zeros(local.shape[0]), hc.MAX
    return local.abs().amax(1), hc.MAX


class RobustScaler(_Scaler):
    """Centre on the median and scale by an inter-quantile range, per feature (robust to
    outliers).

    Parameters
    ----------
    with_centering : bool
        Subtract the median.
    with_scaling : bool
        Divide by the quantile range.
    quantile_range : (float, float)
        Percentiles (q_min, q_max), 0 <= q_min <= q_max <= 100.
    copy : bool
        False: ``transform`` writes into a float input.
    unit_variance : bool
        Also divide by the quantile range of the standard normal, so normal data ends with
        variance 1.

    Attributes
    ----------
    center_ : DNDarray or None
        (features,) medians (None without ``with_centering``).
    scale_ : DNDarray or None
        (features,) quantile ranges, 1 where the range is 0 (None without ``with_scaling``).

    Notes
    -----
    The percentiles come from `heatlike.percentile` along axis 0 (NumPy's linear rule),
    which moves the columns apart once (one alltoallv), never gathering the data.
    """

    def __init__(
        self,
        with_centering: bool = True,
        with_scaling: bool = True,
        quantile_range=(25.0, 75.0),
        copy: bool = True,
        unit_variance: bool = False,
    ):
        self.with_centering = with_centering
        self.with_scaling = with_scaling
        self.quantile_range = quantile_range
        self.copy = copy
        self.unit_variance = unit_variance

    def _quantiles(self) -> tuple[float, float]:
        try:
            low, high = (float(v) for v in self.quantile_range)
        except (TypeError, ValueError):
            raise ValueError(
                f"quantile_range must be a pair (q_min, q_max), got {self.quantile_range!r}"
            ) from None
        if not 0.0 <= low <= high <= 100.0:
            raise ValueError(
                f"quantile_range must satisfy 0 <= q_min <= q_max <= 100, got "
                f"{self.quantile_range!r}"
            )
        return low, high

    def fit(self, x, y=None):
        """Learn the per-feature median and quantile range of ``x``; returns self."""
        low, high = self._quantiles()
        x = self._check_input(x, fitting=True)
        data = DNDarray._make(
            x.larray.to(torch.float64), x.gshape, x.split, x.comm, x.device,
            None if x.split is None else x.counts,
        )  # fmt: skip
        values = resplit(percentile(data, [low, 50.0, high], axis=0), None).larray
        self.n_features_in_ = x.gshape[1]
        self.center_ = _replicated(values[1], x) if self.with_centering else None
        self.scale_ = None
        if self.with_scaling:
            scale = _safe_scale(values[2] - values[0])
            if self.unit_variance:
                normal = statistics.NormalDist()
                scale = scale / (normal.inv_cdf(high / 100.0) - normal.inv_cdf(low / 100.0))
            self.scale_ = _replicated(scale, x)
        return self

    def transform(self, x) -> DNDarray:
        """``(x - center_) / scale_``."""

        def fn(local, x):
            if self.with_centering:
                local = local - self._columns(x, self.center_.larray).to(local.dtype)
            if self.with_scaling:
                local = local / self._columns(x, self.scale_.larray).to(local.dtype)
            return local

        return self._apply(x, fn)

    def inverse_transform(self, x) -> DNDarray:
        """Undo ``transform``: ``x * scale_ + center_``."""

        def fn(local, x):
            if self.with_scaling:
                local = local * self._columns(x, self.scale_.larray).to(local.dtype)
            if self.with_centering:
                local = local + self._columns(x, self.center_.larray).to(local.dtype)
            return local

        return self._apply(x, fn)
