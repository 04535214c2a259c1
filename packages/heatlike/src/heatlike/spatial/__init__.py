"""Pairwise distances and kernels between the rows of distributed matrices (``ht.spatial``)."""

from . import distance as distance
from .distance import cdist, manhattan, rbf

__all__ = ["cdist", "distance", "manhattan", "rbf"]
