"""Scalers against scikit-learn for every split, uneven shapes, more ranks than rows or columns:
learned attributes, transform, inverse_transform, partial_fit; bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import preprocessing as skp

import heatlike as ht
from heatlike.testing import assert_equal_np, rng, splits_of

pytestmark = pytest.mark.mpi

DATA = {
    "uneven": rng(20).normal(size=(7, 5)) * [1.0, 3.0, 0.5, 10.0, 2.0] + [0, 1, -2, 5, 0],
    "few rows": rng(21).normal(size=(2, 3)),
    "few columns": rng(22).normal(size=(9, 2)),
}
SCALERS = {
    "standard": (ht.preprocessing.StandardScaler, skp.StandardScaler, {}),
    "standard no mean": (ht.preprocessing.StandardScaler, skp.StandardScaler, {"with_mean": False}),
    "standard no std": (ht.preprocessing.StandardScaler, skp.StandardScaler, {"with_std": False}),
    "minmax": (ht.preprocessing.MinMaxScaler, skp.MinMaxScaler, {"feature_range": (-1, 3)}),
    "robust": (ht.preprocessing.RobustScaler, skp.RobustScaler, {}),
    "robust q": (ht.preprocessing.RobustScaler, skp.RobustScaler,
                 {"quantile_range": (10.0, 80.0), "unit_variance": True}),
    "robust no centre": (ht.preprocessing.RobustScaler, skp.RobustScaler, {"with_centering": False}),
    "normalizer l2": (ht.preprocessing.Normalizer, skp.Normalizer, {}),
    "normalizer l1": (ht.preprocessing.Normalizer, skp.Normalizer, {"norm": "l1"}),
    "normalizer max": (ht.preprocessing.Normalizer, skp.Normalizer, {"norm": "max"}),
}  # fmt: skip
ATTRIBUTES = ["mean_", "var_", "scale_", "data_min_", "data_max_", "data_range_", "min_", "center_"]


@pytest.mark.parametrize("scaler", SCALERS)
@pytest.mark.parametrize("data", DATA)
def test_scaler_matches_sklearn_for_every_split(comm, scaler, data):
    ours_cls, ref_cls, kwargs = SCALERS[scaler]
    values = DATA[data]
    ref = ref_cls(**kwargs).fit(values)
    want = ref.transform(values)
    for split in splits_of(2):
        ours = ours_cls(**kwargs)
        got = ours.fit_transform(ht.array(values, split=split))
        assert got.split == split
        assert_equal_np(got, want, rtol=1e-10, atol=1e-12)
        for name in ATTRIBUTES:
            if getattr(ref, name, None) is not None:
                np.testing.assert_allclose(
                    getattr(ours, name).numpy(), getattr(ref, name), rtol=1e-10
                )
        if hasattr(ref, "inverse_transform"):
            back = ours.inverse_transform(got)
            assert_equal_np(back, ref.inverse_transform(want), rtol=1e-10, atol=1e-12)
            assert_equal_np(back, values, rtol=1e-10, atol=1e-12)


def test_transform_of_new_data_and_float32(comm):
    train, new = DATA["uneven"].astype(np.float32), rng(23).normal(size=(4, 5)).astype(np.float32)
    for ours_cls, ref_cls, kwargs in SCALERS.values():
        ref = ref_cls(**kwargs).fit(train)
        ours = ours_cls(**kwargs).fit(ht.array(train, split=0))
        got = ours.transform(ht.array(new, split=1))
        assert got.dtype is ht.float32
        assert_equal_np(got, ref.transform(new), rtol=1e-5, atol=1e-5)


def test_integer_input_is_scaled_in_float32(comm):
    ints = rng(24).integers(0, 10, (6, 3))
    got = ht.preprocessing.StandardScaler().fit_transform(ht.array(ints, split=0))
    assert got.dtype is ht.float32
    assert_equal_np(got, skp.StandardScaler().fit_transform(ints), rtol=1e-5, atol=1e-6)


def test_constant_feature_keeps_scale_one_like_sklearn(comm):
    values = np.column_stack([np.full(5, 3.0), np.arange(5.0)])
    for ours_cls, ref_cls, kwargs in SCALERS.values():
        ref = ref_cls(**kwargs).fit(values)
        got = ours_cls(**kwargs).fit_transform(ht.array(values, split=0))
        assert_equal_np(got, ref.transform(values), rtol=1e-12, atol=1e-12)


def test_partial_fit_over_batches_matches_sklearn(comm):
    batches = [rng(25 + i).normal(size=(n, 3)) * (i + 1) + i for i, n in enumerate((5, 1, 8))]
    ref_std, ref_mm = skp.StandardScaler(), skp.MinMaxScaler()
    ours_std, ours_mm = ht.preprocessing.StandardScaler(), ht.preprocessing.MinMaxScaler()
    for i, batch in enumerate(batches):
        x = ht.array(batch, split=0 if i != 1 else None)
        ref_std.partial_fit(batch), ours_std.partial_fit(x)
        ref_mm.partial_fit(batch), ours_mm.partial_fit(x)
    assert ours_std.n_samples_seen_ == ref_std.n_samples_seen_ == 14
    np.testing.assert_allclose(ours_std.mean_.numpy(), ref_std.mean_, rtol=1e-12)
    np.testing.assert_allclose(ours_std.var_.numpy(), ref_std.var_, rtol=1e-12)
    np.testing.assert_allclose(ours_mm.data_min_.numpy(), ref_mm.data_min_)
    np.testing.assert_allclose(ours_mm.data_max_.numpy(), ref_mm.data_max_)


def test_minmax_clip_and_copy_false(comm):
    train, new = DATA["uneven"], DATA["uneven"] * 3
    ref = skp.MinMaxScaler(clip=True).fit(train)
    ours = ht.preprocessing.MinMaxScaler(clip=True).fit(ht.array(train, split=0))
    assert_equal_np(ours.transform(ht.array(new, split=0)), ref.transform(new), rtol=1e-12)
    x = ht.array(train, split=0)
    out = ht.preprocessing.StandardScaler(copy=False).fit(x).transform(x)
    assert out is x
    assert_equal_np(x, skp.StandardScaler().fit_transform(train), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: ht.preprocessing.MinMaxScaler(feature_range=(2, 1)), "feature_range"),
        (lambda: ht.preprocessing.MinMaxScaler(feature_range="ab"), "feature_range"),
        (lambda: ht.preprocessing.Normalizer(norm="l3"), "norm"),
        (lambda: ht.preprocessing.RobustScaler(quantile_range=(80, 20)), "quantile_range"),
        (lambda: ht.preprocessing.RobustScaler(quantile_range=(-1, 20)), "quantile_range"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(comm, make, name):
    with pytest.raises(ValueError, match=name):
        make().fit(ht.array(DATA["uneven"], split=0))


def test_transform_checks_fitting_and_features(comm):
    x = ht.array(DATA["uneven"], split=0)
    for cls in (ht.preprocessing.StandardScaler, ht.preprocessing.RobustScaler):
        with pytest.raises(ValueError, match="not fitted"):
            cls().transform(x)
        with pytest.raises(ValueError, match="x must have 5 features"):
            cls().fit(x).transform(ht.zeros((3, 4), split=0))
    with pytest.raises(ValueError, match="x must be 2-dimensional"):
        ht.preprocessing.MinMaxScaler().fit(ht.zeros(4, split=0))
