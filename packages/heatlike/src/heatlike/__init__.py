"""heatlike: distributed N-d arrays with a NumPy-like, Heat-compatible API on top of hpc-comm.

``import heatlike as ht`` gives Heat's core names: ``ht.array``, ``ht.zeros``, ``ht.arange``,
element-wise functions and reductions, ``ht.resplit``, ``ht.random``, ``ht.MPI_WORLD`` ...
"""

from importlib import metadata as _metadata

from . import random as random
from ._methods import __all__ as _methods_all  # noqa: F401  (binds the DNDarray methods)
from .communication import *  # noqa: F403
from .devices import *  # noqa: F403
from .dndarray import DNDarray as DNDarray
from .elementwise import *  # noqa: F403
from .factories import *  # noqa: F403
from .indexing import nonzero as nonzero
from .indexing import take as take
from .io import *  # noqa: F403
from .manipulations import *  # noqa: F403
from .printing import get_printoptions as get_printoptions
from .printing import set_printoptions as set_printoptions
from .reductions import *  # noqa: F403
from .sorting import argsort as argsort
from .sorting import sort as sort
from .sorting import unique as unique
from .types import *  # noqa: F403

try:
    __version__ = _metadata.version("heatlike")
except _metadata.PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0.0.0+unknown"
