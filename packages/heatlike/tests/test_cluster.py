"""k-means against scikit-learn from the same initial centres; k-medians and k-medoids against
NumPy reference loops; seeded k-means++ the same at any rank count and any split of the rows."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist as scipy_cdist
from sklearn.cluster import KMeans as SkKMeans
from sklearn.cluster import SpectralClustering
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

import heatlike as ht
from heatlike.testing import assert_equal_np, rng

pytestmark = pytest.mark.mpi

BLOBS, _ = make_blobs(157, 3, centers=4, cluster_std=2.5, random_state=0)
INIT = BLOBS[[0, 40, 80, 120]]


def _skewed(data: np.ndarray, comm) -> ht.DNDarray:
    """``data`` split along rows with one row on rank 0, none on the middle ranks and the rest
    on the last rank (a layout ``ht.array(split=0)`` never makes)."""
    counts = [0] * comm.size
    counts[0] += 1
    counts[-1] += data.shape[0] - 1
    start = sum(counts[: comm.rank])
    return ht.array(data[start : start + counts[comm.rank]], is_split=0)


def _same_up_to_float(a, b, rtol=1e-10):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


# ------------------------------------------------------------------ k-means
@pytest.mark.parametrize("split", [None, 0, 1])
def test_kmeans_from_same_centres_reaches_sklearn(comm, split):
    ours = ht.cluster.KMeans(4, init=INIT).fit(ht.array(BLOBS, split=split))
    ref = SkKMeans(4, init=INIT, n_init=1).fit(BLOBS)
    np.testing.assert_allclose(ours.cluster_centers_.numpy(), ref.cluster_centers_, rtol=1e-5)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-5)
    assert ours.n_iter_ == ref.n_iter_
    assert ours.labels_.split == (None if split is None else 0)
    assert_equal_np(ours.labels_, ref.labels_)


def test_kmeans_with_uneven_layout_and_float32_reaches_sklearn(comm):
    data = BLOBS.astype(np.float32)
    ours = ht.cluster.KMeans(4, init=INIT).fit(_skewed(data, comm))
    ref = SkKMeans(4, init=INIT.astype(np.float32), n_init=1).fit(data)
    assert ours.cluster_centers_.dtype is ht.float32
    np.testing.assert_allclose(ours.cluster_centers_.numpy(), ref.cluster_centers_, rtol=1e-5)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-5)
    np.testing.assert_array_equal(ours.labels_.numpy(), ref.labels_)


def test_kmeans_moves_an_empty_cluster_to_the_farthest_row_like_sklearn(comm):
    init = np.vstack([INIT[:3], [[100.0, 100.0, 100.0]]])  # no row is nearest to the last one
    ours = ht.cluster.KMeans(4, init=init).fit(ht.array(BLOBS, split=0))
    ref = SkKMeans(4, init=init, n_init=1).fit(BLOBS)
    np.testing.assert_allclose(ours.cluster_centers_.numpy(), ref.cluster_centers_, rtol=1e-5)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-5)
    assert ours.n_iter_ == ref.n_iter_


@pytest.mark.parametrize(("tol", "max_iter"), [(0.05, 300), (1e-4, 2), (0.0, 300)])
def test_kmeans_stops_where_sklearn_stops(comm, tol, max_iter):
    data = rng(7).uniform(size=(101, 2))  # no clear clusters: many iterations
    init = data[:5]
    ours = ht.cluster.KMeans(5, init=init, tol=tol, max_iter=max_iter).fit(ht.array(data, split=0))
    ref = SkKMeans(5, init=init, n_init=1, tol=tol, max_iter=max_iter).fit(data)
    assert ours.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(ours.cluster_centers_.numpy(), ref.cluster_centers_, rtol=1e-5)
    np.testing.assert_array_equal(ours.labels_.numpy(), ref.labels_)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-5)


def test_kmeans_predict_and_transform_match_sklearn(comm):
    new = rng(8).normal(size=(13, 3)) * 5
    ours = ht.cluster.KMeans(4, init=INIT).fit(ht.array(BLOBS, split=0))
    ref = SkKMeans(4, init=INIT, n_init=1).fit(BLOBS)
    for split in (None, 0, 1):
        assert_equal_np(ours.predict(ht.array(new, split=split)), ref.predict(new))
        assert_equal_np(ours.transform(ht.array(new, split=split)), ref.transform(new), rtol=1e-6)
    assert_equal_np(
        ht.cluster.KMeans(4, init=INIT).fit_predict(ht.array(BLOBS, split=0)), ref.labels_
    )


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_seeded_kmeans_is_rank_count_and_layout_independent(comm, init):
    """The same seed gives the same clustering on all ranks of the world, on this rank alone and
    on a lopsided split of the rows (uniform data has many local optima, so a different
    initialisation would show)."""
    data = rng(9).uniform(size=(97, 3))
    for seed in (0, 1, 2):
        runs = [
            ht.cluster.KMeans(6, init=init, random_state=seed).fit(x)
            for x in (
                ht.array(data, split=0),
                ht.array(data, split=0, comm=ht.MPI_SELF),
                _skewed(data, comm),
                ht.array(data),
            )
        ]
        for other in runs[1:]:
            _same_up_to_float(other.cluster_centers_.numpy(), runs[0].cluster_centers_.numpy())
            assert other.n_iter_ == runs[0].n_iter_
            np.testing.assert_array_equal(other.labels_.numpy(), runs[0].labels_.numpy())


def test_kmeans_plusplus_reaches_sklearn_optimum_on_separated_blobs(comm):
    data, _ = make_blobs(300, 4, centers=5, cluster_std=0.5, random_state=3)
    ref = SkKMeans(5, n_init=10, random_state=0).fit(data)
    for init, n_init in (("k-means++", 1), ("random", 8)):
        ours = ht.cluster.KMeans(5, init=init, n_init=n_init, random_state=4)
        ours.fit(ht.array(data, split=0))
        np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-8)
        centres = ours.cluster_centers_.numpy()
        match = scipy_cdist(ref.cluster_centers_, centres).argmin(1)
        np.testing.assert_allclose(centres[match], ref.cluster_centers_, rtol=1e-8, atol=1e-8)


def test_kmeans_plusplus_never_seeds_on_a_chosen_point(comm):
    """Three points, each repeated 20 times: D² weighting gives a copy of a chosen point zero
    weight, so the seeds are the three distinct points and one step reaches inertia 0 (seeds
    drawn uniformly would repeat a point for most seeds)."""
    points = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    data = np.repeat(points, 20, axis=0)[rng(10).permutation(60)]
    for seed in range(5):
        km = ht.cluster.KMeans(3, init="k-means++", random_state=seed, max_iter=1, tol=0.0)
        km.fit(ht.array(data, split=0))
        assert km.inertia_ == 0.0
        np.testing.assert_array_equal(np.unique(km.cluster_centers_.numpy(), axis=0), points)


def test_more_ranks_than_rows(comm):
    data = np.array([[0.0, 0.0], [10.0, 10.0]])
    km = ht.cluster.KMeans(2, init="k-means++", random_state=0).fit(ht.array(data, split=0))
    np.testing.assert_allclose(np.sort(km.cluster_centers_.numpy(), 0), data)
    assert km.inertia_ == 0.0
    medoids = ht.cluster.KMedoids(2, init=data[::-1]).fit(ht.array(data, split=0))
    np.testing.assert_array_equal(medoids.cluster_centers_.numpy(), data[::-1])


# ------------------------------------------------------- k-medians / k-medoids
def _reference_kmedians(data, centres, medoids=False, max_iter=100):
    """Plain NumPy: L1 nearest centre, then the median of each cluster (or its member nearest
    to that median), until no label changes."""
    labels = None
    centres = centres.copy()
    for _ in range(max_iter):
        new_labels = scipy_cdist(data, centres, "cityblock").argmin(1)
        for j in range(len(centres)):
            members = np.flatnonzero(new_labels == j)
            if len(members) == 0:
                continue
            median = np.median(data[members], 0)
            if medoids:
                nearest = np.abs(data[members] - median).sum(1).argmin()
                centres[j] = data[members[nearest]]
            else:
                centres[j] = median
        if labels is not None and (labels == new_labels).all():
            break
        labels = new_labels
    labels = scipy_cdist(data, centres, "cityblock").argmin(1)
    return centres, labels, np.abs(data - centres[labels]).sum()


@pytest.mark.parametrize("split", [None, 0])
def test_kmedians_matches_numpy_reference(comm, split):
    ours = ht.cluster.KMedians(4, init=INIT, tol=0.0).fit(ht.array(BLOBS, split=split))
    centres, labels, inertia = _reference_kmedians(BLOBS, INIT)
    np.testing.assert_allclose(ours.cluster_centers_.numpy(), centres, rtol=1e-12)
    assert_equal_np(ours.labels_, labels)
    np.testing.assert_allclose(ours.inertia_, inertia, rtol=1e-10)


def test_kmedians_medians_with_ties_negatives_and_even_counts(comm):
    """Integer data (many ties), negative values and signed zeros, clusters of even size: each
    centre is exactly NumPy's median of its rows."""
    data = rng(11).integers(-4, 5, (38, 3)).astype(np.float64)
    data[::7, 1] = -0.0
    init = data[[0, 1, 2]]
    ours = ht.cluster.KMedians(3, init=init, tol=0.0).fit(_skewed(data, comm))
    centres, labels, _ = _reference_kmedians(data, init)
    np.testing.assert_array_equal(ours.cluster_centers_.numpy(), centres)
    np.testing.assert_array_equal(ours.labels_.numpy(), labels)
    for j in range(3):
        members = data[labels == j]
        if len(members):
            np.testing.assert_array_equal(centres[j], np.median(members, 0))


@pytest.mark.parametrize("split", [None, 0])
def test_kmedoids_matches_numpy_reference(comm, split):
    ours = ht.cluster.KMedoids(4, init=INIT).fit(ht.array(BLOBS, split=split))
    centres, labels, inertia = _reference_kmedians(BLOBS, INIT, medoids=True)
    medoids = ours.cluster_centers_.numpy()
    np.testing.assert_array_equal(medoids, centres)
    assert_equal_np(ours.labels_, labels)
    np.testing.assert_allclose(ours.inertia_, inertia, rtol=1e-10)
    for j, row in enumerate(medoids):  # a medoid is a row of its own cluster
        assert (BLOBS[labels == j] == row).all(1).any()


def test_seeded_kmedians_and_kmedoids_are_rank_count_independent(comm):
    data = rng(12).uniform(size=(61, 2))
    for cls in (ht.cluster.KMedians, ht.cluster.KMedoids):
        runs = [
            cls(4, init="k-means++", random_state=3).fit(x)
            for x in (ht.array(data, split=0), ht.array(data, split=0, comm=ht.MPI_SELF))
        ]
        _same_up_to_float(runs[0].cluster_centers_.numpy(), runs[1].cluster_centers_.numpy())
        np.testing.assert_array_equal(runs[0].labels_.numpy(), runs[1].labels_.numpy())


# ------------------------------------------------------------------ spectral
SPECTRAL_DATA, SPECTRAL_TRUTH = make_blobs(48, 2, centers=3, cluster_std=0.5, random_state=1)


def _numpy_laplacian(data, gamma, threshold=None):
    """I - D^-1/2 A D^-1/2 of the RBF graph without self-loops (edges below ``threshold``)."""
    a = np.exp(-gamma * scipy_cdist(data, data, "sqeuclidean"))
    np.fill_diagonal(a, 0.0)
    if threshold is not None:
        a = np.where(a < threshold, a, 0.0)
    d = a.sum(1)
    d[d == 0] = 1.0
    return np.eye(len(data)) - a / np.sqrt(d)[:, None] / np.sqrt(d)[None, :]


@pytest.mark.parametrize("split", [None, 0])
def test_spectral_recovers_blobs_like_sklearn(comm, split):
    ours = ht.cluster.Spectral(3, gamma=0.5, n_lanczos=48, random_state=0)
    labels = ours.fit_predict(ht.array(SPECTRAL_DATA, split=split)).numpy()
    ref = SpectralClustering(3, affinity="rbf", gamma=0.5, random_state=0).fit(SPECTRAL_DATA)
    assert adjusted_rand_score(labels, ref.labels_) == 1.0
    assert adjusted_rand_score(labels, SPECTRAL_TRUTH) == 1.0


@pytest.mark.parametrize(
    ("laplacian", "threshold"), [("fully_connected", None), ("eNeighbour", 0.3)]
)
def test_spectral_eigenvalues_match_numpy_laplacian(comm, laplacian, threshold):
    ours = ht.cluster.Spectral(
        3, gamma=0.5, laplacian=laplacian, threshold=threshold or 1.0, n_lanczos=48,
        random_state=0,
    )  # fmt: skip
    ours.fit(ht.array(SPECTRAL_DATA, split=0))
    want = np.linalg.eigvalsh(_numpy_laplacian(SPECTRAL_DATA, 0.5, threshold))
    np.testing.assert_allclose(ours.eigenvalues_.numpy()[:6], want[:6], atol=1e-9)


def test_spectral_chooses_n_clusters_at_the_eigengap(comm):
    ours = ht.cluster.Spectral(None, gamma=0.5, n_lanczos=48, random_state=0)
    ours.fit(ht.array(SPECTRAL_DATA, split=0))
    want = np.linalg.eigvalsh(_numpy_laplacian(SPECTRAL_DATA, 0.5))
    assert ours.n_clusters_ == int(np.argmax(np.diff(want))) + 1 == 3


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"gamma": 0.0}, "gamma"), ({"metric": "cosine"}, "metric"), ({"n_lanczos": 0}, "n_lanczos"),
     ({"laplacian": "knn"}, "laplacian"), ({"n_clusters": 100}, "n_clusters")],
)  # fmt: skip
def test_spectral_bad_arguments(comm, kwargs, name):
    with pytest.raises(ValueError, match=name):
        ht.cluster.Spectral(**{"n_clusters": 3, **kwargs}).fit(ht.array(SPECTRAL_DATA, split=0))


# ------------------------------------------------------------------ checks
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_clusters": 0}, "n_clusters"),
        ({"n_clusters": 200}, "n_clusters"),
        ({"init": "kmeans+++"}, "init"),
        ({"init": np.zeros((3, 3))}, "init"),
        ({"max_iter": 0}, "max_iter"),
        ({"tol": -1.0}, "tol"),
        ({"n_init": 0}, "n_init"),
        ({"random_state": 1.5}, "random_state"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(comm, kwargs, name):
    params = {"n_clusters": 4, **kwargs}
    with pytest.raises(ValueError, match=name):
        ht.cluster.KMeans(**params).fit(ht.array(BLOBS, split=0))


def test_predict_checks_fitting_and_features(comm):
    km = ht.cluster.KMedians(2)
    with pytest.raises(ValueError, match="not fitted"):
        km.predict(ht.array(BLOBS, split=0))
    km.fit(ht.array(BLOBS, split=0))
    with pytest.raises(ValueError, match="x must have 3 features"):
        km.predict(ht.zeros((4, 2), split=0))
    with pytest.raises(ValueError, match="x must be 2-dimensional"):
        km.fit(ht.zeros(5, split=0))


def test_get_and_set_params_follow_sklearn(comm):
    km = ht.cluster.KMeans(3, tol=0.5)
    params = km.get_params()
    assert set(params) <= set(SkKMeans().get_params()), set(params) - set(SkKMeans().get_params())
    assert params == {
        "n_clusters": 3, "init": "random", "max_iter": 300, "tol": 0.5, "random_state": None,
        "n_init": 1,
    }  # fmt: skip
    assert km.set_params(n_clusters=5).n_clusters == 5
    with pytest.raises(ValueError, match="copy_x"):
        km.set_params(copy_x=True)
