"""Feature scaling of distributed data with scikit-learn's API (``ht.preprocessing``)."""

from .scalers import MinMaxScaler, Normalizer, RobustScaler, StandardScaler

__all__ = ["MinMaxScaler", "Normalizer", "RobustScaler", "StandardScaler"]
