"""Matrix decompositions with scikit-learn's estimator API (``ht.decomposition.PCA``)."""

from .pca import PCA

__all__ = ["PCA"]
