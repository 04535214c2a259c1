"""Naive Bayes classifiers under Heat's module name (``ht.naive_bayes.GaussianNB``)."""

from ..classification.naive_bayes import GaussianNB

__all__ = ["GaussianNB"]
