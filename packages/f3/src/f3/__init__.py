"""f3: feed-forward training with delayed error feedback (F³) and the BP, DFA, DRTP, LLO baselines.

Modules: ``f3.network`` (F3Network, block builders), ``f3.trainer`` (Trainer),
``f3.pipeline`` (PipelineTrainer over hpc-comm ranks), ``f3.data``, ``f3.heads``,
``f3.feedback``, ``f3.experiment``; the ``f3`` command is ``f3.cli``. Importing ``f3`` loads
neither torch nor MPI.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("f3")
except _metadata.PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0.0.0+unknown"
