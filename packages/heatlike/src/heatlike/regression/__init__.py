"""Regression estimators with scikit-learn's API (``ht.regression.Lasso``)."""

from .lasso import Lasso

__all__ = ["Lasso"]
