"""Lasso against scikit-learn's Lasso (fit_intercept=True, alpha = lam) on the same data, for
every split of X and y; predictions, iteration control, argument checks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import linear_model as sklearn_linear_model

import heatlike as ht
from heatlike.testing import assert_equal_np, rng

pytestmark = pytest.mark.mpi

G = rng(70)
X = G.standard_normal((45, 7)) * np.array([1.0, 2.0, 0.5, 1.0, 3.0, 1.0, 0.1]) + 1.5
COEF = np.array([1.5, 0.0, -2.0, 0.0, 0.7, 0.0, 4.0])
Y = X @ COEF + 0.3 + 0.1 * G.standard_normal(45)


def _reference(lam):
    return sklearn_linear_model.Lasso(alpha=lam, tol=1e-14, max_iter=100_000).fit(X, Y)


@pytest.mark.parametrize("precompute", [False, True, "auto"])
@pytest.mark.parametrize("lam", [0.01, 0.1, 0.5, 5.0])
def test_lasso_matches_scikit_learn_coefficients(comm, lam, precompute):
    reference = _reference(lam)
    for split_x, split_y in [(None, None), (0, 0), (0, None), (1, 0)]:
        model = ht.regression.Lasso(lam=lam, max_iter=5000, tol=1e-12, precompute=precompute)
        model.fit(ht.array(X, split=split_x), ht.array(Y, split=split_y))
        assert model.coef_.split is None and model.coef_.shape == (7,)
        np.testing.assert_allclose(model.coef_.numpy(), reference.coef_, atol=1e-5)
        assert abs(model.intercept_ - reference.intercept_) <= 1e-5
        assert model.n_iter_ < 5000
        theta = model.theta.numpy()
        np.testing.assert_allclose(theta[:, 0], np.r_[model.intercept_, model.coef_.numpy()])


def test_lasso_predicts_like_scikit_learn(comm):
    reference = _reference(0.1)
    model = ht.regression.Lasso(lam=0.1, max_iter=5000, tol=1e-12)
    model.fit(ht.array(X, split=0), ht.array(Y[:, None], split=0))  # a column y works too
    new = rng(71).standard_normal((9, 7))
    prediction = model.predict(ht.array(new, split=0))
    assert prediction.split == 0
    assert_equal_np(prediction, reference.predict(new), rtol=1e-5, atol=1e-5)


def test_lasso_without_penalty_is_least_squares(comm):
    design = np.c_[np.ones(len(X)), X]
    solution = np.linalg.lstsq(design, Y, rcond=None)[0]
    model = ht.regression.Lasso(lam=0.0, max_iter=20000, tol=1e-13)
    model.fit(ht.array(X, split=0), ht.array(Y, split=0))
    np.testing.assert_allclose(model.coef_.numpy(), solution[1:], atol=1e-6)
    assert abs(model.intercept_ - solution[0]) < 1e-6


def test_lasso_runs_all_sweeps_without_tolerance(comm):
    model = ht.regression.Lasso(lam=0.1, max_iter=3, tol=None).fit(
        ht.array(X, split=0), ht.array(Y)
    )
    assert model.n_iter_ == 3


def test_lasso_rejects_bad_arguments_on_every_rank(comm):
    with pytest.raises(ValueError, match="lam must be a non-negative number"):
        ht.regression.Lasso(lam=-1.0)
    with pytest.raises(ValueError, match="max_iter must be a positive int"):
        ht.regression.Lasso(max_iter=0)
    with pytest.raises(ValueError, match="tol must be a non-negative number"):
        ht.regression.Lasso(tol=-1e-3)
    with pytest.raises(TypeError, match="precompute must be a bool"):
        ht.regression.Lasso(precompute="yes")
    model = ht.regression.Lasso()
    with pytest.raises(ValueError, match=r"y must have shape \(45,\)"):
        model.fit(ht.array(X, split=0), ht.zeros(44))
    with pytest.raises(TypeError, match="x must be a DNDarray"):
        model.fit(X, ht.array(Y))
    with pytest.raises(ValueError, match="not fitted"):
        model.predict(ht.array(X))
