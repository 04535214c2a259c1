"""abtrain: AB-training, communication-efficient low-rank data-parallel training over hpc-comm."""

from importlib import metadata as _metadata

from .baselines import DataParallelTrainer, PowerSGDTrainer
from .layers import (
    ABConv2d,
    ABLayer,
    ABLinear,
    ab_layers,
    compression_report,
    convert_model,
    default_full_rank_names,
    truncation_rank,
)
from .schedule import SYNC_MODES, TRAIN_COMMS, GroupLayout, Schedule, group_layout
from .traffic import ABTrafficModel, data_parallel_bytes, powersgd_bytes
from .trainer import ABTrainer, resize_optimizer_state

try:
    __version__ = _metadata.version("abtrain")
except _metadata.PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "SYNC_MODES",
    "TRAIN_COMMS",
    "ABConv2d",
    "ABLayer",
    "ABLinear",
    "ABTrafficModel",
    "ABTrainer",
    "DataParallelTrainer",
    "GroupLayout",
    "PowerSGDTrainer",
    "Schedule",
    "__version__",
    "ab_layers",
    "compression_report",
    "convert_model",
    "data_parallel_bytes",
    "default_full_rank_names",
    "group_layout",
    "powersgd_bytes",
    "resize_optimizer_state",
    "truncation_rank",
]
