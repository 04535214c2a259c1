"""oialr: orthogonality-informed adaptive low-rank training (U·S·Vᵀ layers, only S trained)."""

from importlib import metadata as _metadata

from .core import (
    OIALR,
    LayerReport,
    average_gradients,
    broadcast_parameters,
    load_checkpoint,
    merge,
    pruned_rank,
    save_checkpoint,
)
from .layers import (
    LowRankConv,
    LowRankLinear,
    LowRankMultiheadAttention,
    LowRankWeight,
    is_eligible,
    tall_shape,
)
from .optim_state import transform_state

try:
    __version__ = _metadata.version("oialr")
except _metadata.PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "OIALR",
    "LayerReport",
    "LowRankConv",
    "LowRankLinear",
    "LowRankMultiheadAttention",
    "LowRankWeight",
    "__version__",
    "average_gradients",
    "broadcast_parameters",
    "is_eligible",
    "load_checkpoint",
    "merge",
    "pruned_rank",
    "save_checkpoint",
    "tall_shape",
    "transform_state",
]
