"""daso: hierarchical, asynchronous, selective data-parallel training (DASO) for PyTorch."""

from importlib import metadata as _metadata

from daso.baseline import SyncDataParallel
from daso.optimizer import DASO
from daso.schedule import BatchPlan, PlateauDetector, SkipSchedule, plan_batch
from daso.topology import Topology

try:
    __version__ = _metadata.version("daso")
except _metadata.PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "DASO",
    "BatchPlan",
    "PlateauDetector",
    "SkipSchedule",
    "SyncDataParallel",
    "Topology",
    "__version__",
    "plan_batch",
]
