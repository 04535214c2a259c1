"""Clustering estimators on distributed data with scikit-learn's API (``ht.cluster``)."""

from .kmeans import KMeans
from .kmedians import KMedians
from .kmedoids import KMedoids
from .spectral import Spectral

__all__ = ["KMeans", "KMedians", "KMedoids", "Spectral"]
