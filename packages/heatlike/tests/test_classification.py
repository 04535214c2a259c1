"""Gaussian naive Bayes and k-nearest neighbours against scikit-learn for every layout of the
training and query rows; the neighbour search never gathers the training rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.naive_bayes import GaussianNB as SkGaussianNB
from sklearn.neighbors import KNeighborsClassifier as SkKNN

import heatlike as ht
from heatlike.testing import assert_equal_np, largest_receive_within_share, rng

pytestmark = pytest.mark.mpi

TRAIN = rng(40).normal(size=(23, 4)) * [1.0, 2.0, 0.5, 3.0]
LABELS = np.array([3, 7, 9])[(TRAIN[:, 0] > 0).astype(int) + (TRAIN[:, 1] > 1.0)]
QUERY = rng(41).normal(size=(11, 4)) * 1.5


# ------------------------------------------------------------- naive Bayes
@pytest.mark.parametrize("split", [None, 0, 1])
@pytest.mark.parametrize("priors", [None, [0.2, 0.5, 0.3]])
def test_gaussian_nb_matches_sklearn(comm, split, priors):
    ref = SkGaussianNB(priors=priors).fit(TRAIN, LABELS)
    ours = ht.naive_bayes.GaussianNB(priors=priors)
    ours.fit(ht.array(TRAIN, split=split), ht.array(LABELS, split=0))
    assert_equal_np(ours.classes_, ref.classes_)
    for name in ("class_count_", "class_prior_", "theta_", "var_"):
        np.testing.assert_allclose(getattr(ours, name).numpy(), getattr(ref, name), rtol=1e-10)
    np.testing.assert_allclose(ours.epsilon_, ref.epsilon_, rtol=1e-10)
    for query_split in (None, 0, 1):
        q = ht.array(QUERY, split=query_split)
        assert_equal_np(ours.predict(q), ref.predict(QUERY))
        assert_equal_np(ours.predict_proba(q), ref.predict_proba(QUERY), rtol=1e-8, atol=1e-12)
        assert_equal_np(ours.predict_log_proba(q), ref.predict_log_proba(QUERY), rtol=1e-8)


def test_gaussian_nb_partial_fit_matches_sklearn(comm):
    ref, ours = SkGaussianNB(), ht.classification.GaussianNB()
    for rows in (slice(0, 9), slice(9, 10), slice(10, 23)):
        ref.partial_fit(TRAIN[rows], LABELS[rows], classes=[3, 7, 9])
        ours.partial_fit(
            ht.array(TRAIN[rows], split=0), ht.array(LABELS[rows], split=0), classes=[3, 7, 9]
        )
    for name in ("class_count_", "class_prior_", "theta_", "var_"):
        np.testing.assert_allclose(getattr(ours, name).numpy(), getattr(ref, name), rtol=1e-10)
    np.testing.assert_allclose(ours.epsilon_, ref.epsilon_, rtol=1e-10)
    assert_equal_np(ours.predict(ht.array(QUERY, split=0)), ref.predict(QUERY))


def test_gaussian_nb_bad_arguments(comm):
    x, y = ht.array(TRAIN, split=0), ht.array(LABELS, split=0)
    with pytest.raises(ValueError, match="priors must sum to 1"):
        ht.naive_bayes.GaussianNB(priors=[0.5, 0.6, 0.1]).fit(x, y)
    with pytest.raises(ValueError, match="priors must have one entry per class"):
        ht.naive_bayes.GaussianNB(priors=[0.5, 0.5]).fit(x, y)
    with pytest.raises(ValueError, match="var_smoothing"):
        ht.naive_bayes.GaussianNB(var_smoothing=-1.0).fit(x, y)
    with pytest.raises(ValueError, match="y must be 1-d with 23 entries"):
        ht.naive_bayes.GaussianNB().fit(x, ht.array(LABELS[:5], split=0))
    with pytest.raises(ValueError, match="classes must be given"):
        ht.naive_bayes.GaussianNB().partial_fit(x, y)
    with pytest.raises(ValueError, match=r"y has labels \[9\]"):
        ht.naive_bayes.GaussianNB().partial_fit(x, y, classes=[3, 7])
    with pytest.raises(ValueError, match="not fitted"):
        ht.naive_bayes.GaussianNB().predict(x)


# ---------------------------------------------------------- k neighbours
@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("train_split", [None, 0, 1])
def test_knn_matches_sklearn_for_every_layout(comm, weights, train_split):
    ref = SkKNN(4, weights=weights).fit(TRAIN, LABELS)
    ours = ht.classification.KNeighborsClassifier(4, weights=weights)
    ours.fit(ht.array(TRAIN, split=train_split), ht.array(LABELS, split=0))
    assert_equal_np(ours.classes_, ref.classes_)
    want_d, want_i = ref.kneighbors(QUERY)
    for query_split in (None, 0, 1):
        q = ht.array(QUERY, split=query_split)
        got = ours.predict(q)
        assert got.split == (None if query_split is None else 0)
        assert_equal_np(got, ref.predict(QUERY))
        assert_equal_np(ours.predict_proba(q), ref.predict_proba(QUERY), rtol=1e-10)
        dist, index = ours.kneighbors(q)
        assert_equal_np(index, want_i)
        assert_equal_np(dist, want_d, rtol=1e-10, atol=1e-12)


def test_knn_distance_weights_with_an_exact_match(comm):
    """A query equal to a training row: that neighbour gets all the weight (scikit-learn)."""
    query = np.vstack([TRAIN[[2, 15]], QUERY[:3]])
    ref = SkKNN(5, weights="distance").fit(TRAIN, LABELS)
    ours = ht.classification.KNeighborsClassifier(5, weights="distance")
    ours.fit(ht.array(TRAIN, split=0), ht.array(LABELS, split=0))
    q = ht.array(query, split=0)
    assert_equal_np(ours.predict_proba(q), ref.predict_proba(query), rtol=1e-10)
    assert_equal_np(ours.predict(q), ref.predict(query))


def test_knn_more_ranks_than_rows(comm):
    train, labels, query = TRAIN[:2], LABELS[:2], QUERY[:1]
    ref = SkKNN(2).fit(train, labels)
    ours = ht.classification.KNeighborsClassifier(2).fit(ht.array(train, split=0), labels)
    assert_equal_np(ours.predict_proba(ht.array(query, split=0)), ref.predict_proba(query))
    assert_equal_np(ours.kneighbors(ht.array(query, split=0))[1], ref.kneighbors(query)[1])


def test_knn_neighbours_are_found_without_gathering_the_training_rows(comm):
    train = rng(42).normal(size=(1200, 8))  # a gathered copy would exceed the limit
    labels = (train[:, 0] > 0).astype(np.int64)
    ours = ht.classification.KNeighborsClassifier(3).fit(ht.array(train, split=0), labels)
    q = ht.array(rng(43).normal(size=(30, 8)), split=0)
    got = ours.predict(q)
    total = train.nbytes + labels.nbytes
    largest_receive_within_share(lambda: ours.predict(q), total, comm.size, 1.2)
    assert_equal_np(got, SkKNN(3).fit(train, labels).predict(q.numpy()))


def test_knn_bad_arguments(comm):
    x, y = ht.array(TRAIN, split=0), ht.array(LABELS, split=0)
    with pytest.raises(ValueError, match="n_neighbors"):
        ht.classification.KNeighborsClassifier(0).fit(x, y)
    with pytest.raises(ValueError, match="n_neighbors"):
        ht.classification.KNeighborsClassifier(24).fit(x, y)
    with pytest.raises(ValueError, match="weights"):
        ht.classification.KNeighborsClassifier(weights="gauss").fit(x, y)
    with pytest.raises(ValueError, match="not fitted"):
        ht.classification.KNeighborsClassifier().predict(x)
    fitted = ht.classification.KNeighborsClassifier(3).fit(x, y)
    with pytest.raises(ValueError, match="x must have 4 features"):
        fitted.predict(ht.zeros((2, 3), split=0))
    with pytest.raises(ValueError, match="n_neighbors"):
        fitted.kneighbors(x, n_neighbors=30)
