"""Spectral clustering of row-distributed data: a similarity graph, its normalised Laplacian,
Lanczos for the smallest eigenvectors, k-means on the embedding."""

from __future__ import annotations

import math

import torch

from ..dndarray import DNDarray
from ..factories import full
from ..spatial._rows import (
    Params,
    as_matrix,
    check_int,
    check_number,
    float_type,
    rows_on_split0,
    wrap_rows,
)
from ..spatial.distance import cdist, rbf
from .kmeans import KMeans

__all__ = ["Spectral"]


class Spectral(Params):
    """Spectral clustering (Heat's ``ht.cluster.Spectral``).

    Parameters
    ----------
    n_clusters : int or None
        Number of clusters; None: chosen at the largest gap between consecutive eigenvalues.
    gamma : float
        RBF kernel coefficient: similarity ``exp(-gamma ||x - y||²)`` (metric 'rbf').
    metric : {'rbf', 'euclidean'}
        Similarity of two rows: the RBF kernel, or (as Heat) their euclidean distance.
    laplacian : {'fully_connected', 'eNeighbour'}
        Graph: every pair connected with its similarity, or only pairs whose similarity is
        below ('upper') or above ('lower') ``threshold``.
    threshold : float
        The similarity bound of 'eNeighbour'.
    boundary : {'upper', 'lower'}
        Which side of ``threshold`` keeps an edge in 'eNeighbour'.
    n_lanczos : int
        Lanczos steps (at most the number of rows); more steps, more accurate eigenvectors.
    assign_labels : {'kmeans'}
        How rows are clustered in the embedding.
    random_state : int or None
        Seed of the k-means++ seeding in the embedding.
    n_init : int
        k-means runs in the embedding (best inertia kept).

    Attributes
    ----------
    labels_ : DNDarray
        (samples,) int64 cluster of every row, split like the rows.
    eigenvalues_ : DNDarray
        (n_lanczos,) the Ritz values of the Laplacian, ascending (the smallest approximate the
        Laplacian's smallest eigenvalues).
    cluster_centers_ : DNDarray
        (n_clusters, n_clusters) k-means centres in the embedding.

    Notes
    -----
    The similarity matrix (samples x samples) is split along rows like the data (its column
    blocks come around a ring: no rank holds all rows of the data). The Laplacian is the
    symmetric normalised one, ``I - D^-1/2 A D^-1/2`` with the diagonal of ``A`` set to 0 and
    isolated vertices given degree 1; `heatlike.linalg.lanczos` starts from the constant
    vector. There is no ``predict`` (as scikit-learn): the embedding belongs to the data it was
    computed from.
    """

    def __init__(
        self,
        n_clusters=None,
        gamma: float = 1.0,
        metric: str = "rbf",
        laplacian: str = "fully_connected",
        threshold: float = 1.0,
        boundary: str = "upper",
        n_lanczos: int = 300,
        assign_labels: str = "kmeans",
        random_state=None,
        n_init: int = 10,
    ):
        self.n_clusters = n_clusters
        self.gamma = gamma
        self.metric = metric
        self.laplacian = laplacian
        self.threshold = threshold
        self.boundary = boundary
        self.n_lanczos = n_lanczos
        self.assign_labels = assign_labels
        self.random_state = random_state
        self.n_init = n_init

    def _check_params(self) -> None:
        if self.n_clusters is not None:
            check_int(self.n_clusters, "n_clusters")
        check_number(self.gamma, "gamma", 0.0, strict=True)
        check_int(self.n_lanczos, "n_lanczos")
        check_int(self.n_init, "n_init")
        choices = {
            "metric": ("rbf", "euclidean"),
            "laplacian": ("fully_connected", "eNeighbour"),
            "boundary": ("upper", "lower"),
            "assign_labels": ("kmeans",),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        check_number(self.threshold, "threshold", -math.inf)

    def _laplacian(self, x: DNDarray) -> DNDarray:
        """The symmetric normalised graph Laplacian of the rows of ``x``, split like them."""
        if self.metric == "rbf":
            similarity = rbf(x, sigma=math.sqrt(1.0 / (2.0 * self.gamma)), quadratic_expansion=True)
        else:
            similarity = cdist(x, quadratic_expansion=True)
        s = similarity.larray
        offset = similarity.offset if similarity.split == 0 else 0
        rows = torch.arange(s.shape[0], device=s.device)
        s[rows, rows + offset] = 0.0
        if self.laplacian == "eNeighbour":
            keep = s < self.threshold if self.boundary == "upper" else s > self.threshold
            s = torch.where(keep, s, torch.zeros_like(s))
        degree = s.sum(1)
        if similarity.split == 0 and x.comm.size > 1:
            degree = x.comm.handle.allgatherv(degree.contiguous(), 0)
        degree = torch.where(degree == 0, torch.ones_like(degree), degree)
        scale = degree.rsqrt()
        local = -s * scale[offset : offset + s.shape[0], None] * scale[None, :]
        local[rows, rows + offset] = 1.0
        counts = None if similarity.split is None else similarity.counts
        return DNDarray._make(local, similarity.gshape, similarity.split, x.comm, x.device, counts)

    def _embedding(self, x: DNDarray):
        """Ascending Ritz values of the Laplacian and the matching Ritz vectors (rows split
        like ``x``)."""
        from ..linalg import lanczos

        laplacian = self._laplacian(x)
        n = laplacian.gshape[0]
        v0 = full(
            (n,), 1.0 / math.sqrt(n), dtype=laplacian.dtype, split=laplacian.split,
            device=x.device, comm=x.comm,
        )  # fmt: skip
        basis, tridiagonal = lanczos(laplacian, min(self.n_lanczos, n), v0)
        values, vectors = torch.linalg.eigh(tridiagonal.larray)
        return values, basis.larray @ vectors

    def fit(self, x, y=None):
        """Cluster the rows of ``x`` (samples, features); returns self."""
        self._check_params()
        x = rows_on_split0(as_matrix(x, "x"))
        x = DNDarray._make(
            x.larray.to(float_type(x)), x.gshape, x.split, x.comm, x.device,
            None if x.split is None else x.counts,
        )  # fmt: skip
        k = self.n_clusters
        if k is not None and k > x.gshape[0]:
            raise ValueError(f"n_clusters={k} must not exceed the {x.gshape[0]} rows of x")
        values, vectors = self._embedding(x)
        if k is None:
            k = int(torch.argmax(values[1:] - values[:-1])) + 1
        components = wrap_rows(vectors[:, :k].contiguous(), x, columns=k)
        model = KMeans(k, init="k-means++", n_init=self.n_init, random_state=self.random_state)
        model.fit(components)
        self.n_clusters_ = k
        self.eigenvalues_ = DNDarray._make(values, tuple(values.shape), None, x.comm, x.device)
        self.labels_ = model.labels_
        self.cluster_centers_ = model.cluster_centers_
        return self

    def fit_predict(self, x, y=None) -> DNDarray:
        """``fit(x)`` and return ``labels_``."""
        return self.fit(x).labels_
