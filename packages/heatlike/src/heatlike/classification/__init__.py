"""Classifiers on distributed data with scikit-learn's API (``ht.classification``):
k-nearest neighbours and Gaussian naive Bayes."""

from .kneighbors import KNeighborsClassifier
from .naive_bayes import GaussianNB

__all__ = ["GaussianNB", "KNeighborsClassifier"]
