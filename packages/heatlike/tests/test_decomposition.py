"""PCA against scikit-learn on the same data: components (up to sign, and the documented sign
rule), explained variance and ratios, singular values, transforms, whitening, both solvers,
every split; argument checks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import decomposition as sklearn_decomposition

import heatlike as ht
from heatlike.testing import assert_equal_np, rng

pytestmark = pytest.mark.mpi

DATA = rng(60).standard_normal((40, 6)) @ rng(61).standard_normal((6, 6)) + 3.0


def _same_up_to_row_signs(got, want, atol):
    signs = np.sign((got * want).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(got, signs * want, atol=atol)


@pytest.mark.parametrize("solver", ["full", "hierarchical"])
@pytest.mark.parametrize("n_components", [None, 3, 0.9])
def test_pca_matches_scikit_learn(comm, solver, n_components):
    reference = sklearn_decomposition.PCA(n_components=n_components, svd_solver="full").fit(DATA)
    for split in [None, 0, 1]:
        pca = ht.decomposition.PCA(n_components=n_components, svd_solver=solver)
        pca.fit(ht.array(DATA, split=split))
        assert pca.n_components_ == reference.n_components_
        components = pca.components_.numpy()
        _same_up_to_row_signs(components, reference.components_, atol=1e-8)
        largest = components[np.arange(len(components)), np.abs(components).argmax(1)]
        assert np.all(largest > 0)  # the documented sign rule (scikit-learn's, >= 1.5)
        for ours, theirs in [
            (pca.explained_variance_, reference.explained_variance_),
            (pca.explained_variance_ratio_, reference.explained_variance_ratio_),
            (pca.singular_values_, reference.singular_values_),
            (pca.mean_, reference.mean_),
        ]:
            assert_equal_np(ours, theirs, rtol=1e-8, atol=1e-10)
        assert np.isclose(pca.noise_variance_, reference.noise_variance_, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("whiten", [False, True])
def test_pca_transform_and_inverse_match_scikit_learn(comm, whiten):
    reference = sklearn_decomposition.PCA(n_components=4, whiten=whiten).fit(DATA)
    projected_ref = reference.transform(DATA)
    for split in [None, 0]:
        x = ht.array(DATA, split=split)
        pca = ht.decomposition.PCA(n_components=4, whiten=whiten)
        projected = pca.fit_transform(x)
        assert projected.split == split
        flip = np.sign((pca.components_.numpy() * reference.components_).sum(1))
        np.testing.assert_allclose(projected.numpy(), projected_ref * flip, atol=1e-8)
        back = pca.inverse_transform(projected)
        assert_equal_np(back, reference.inverse_transform(projected_ref), rtol=1e-8, atol=1e-8)


def test_pca_of_low_rank_data_is_exact_with_the_hierarchical_solver(comm):
    g = rng(62)
    X = g.standard_normal((50, 3)) @ g.standard_normal((3, 9))  # rank 3
    reference = sklearn_decomposition.PCA(n_components=3).fit(X)
    for split in [None, 0, 1]:
        pca = ht.decomposition.PCA(n_components=3, svd_solver="hierarchical")
        pca.fit(ht.array(X, split=split))
        _same_up_to_row_signs(pca.components_.numpy(), reference.components_, atol=1e-8)
        assert_equal_np(pca.explained_variance_ratio_, reference.explained_variance_ratio_, 1e-8)


def test_pca_rejects_bad_arguments_on_every_rank(comm):
    with pytest.raises(ValueError, match="n_components must be None, an int"):
        ht.decomposition.PCA(n_components=1.5)
    with pytest.raises(ValueError, match="svd_solver must be one of"):
        ht.decomposition.PCA(svd_solver="randomized")
    pca = ht.decomposition.PCA(n_components=7)
    with pytest.raises(ValueError, match="n_components=7 must be at most"):
        pca.fit(ht.array(DATA, split=0))
    with pytest.raises(ValueError, match="not fitted"):
        pca.transform(ht.array(DATA))
    pca = ht.decomposition.PCA(n_components=2).fit(ht.array(DATA, split=0))
    with pytest.raises(ValueError, match="X must have 6 features"):
        pca.transform(ht.zeros((3, 5)))
    with pytest.raises(TypeError, match="X must be a DNDarray"):
        pca.transform(DATA)
