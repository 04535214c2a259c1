"""heatlike: distributed N-d arrays with a NumPy-like, Heat-compatible API on top of hpc-comm.

``import heatlike as ht`` gives Heat's core names: ``ht.array``, ``ht.zeros``, ``ht.arange``,
element-wise functions and reductions, ``ht.resplit``, ``ht.random``, ``ht.MPI_WORLD`` ...
"""

from importlib import metadata as _metadata

from . import classification as classification
from . import cluster as cluster
from . import decomposition as decomposition
from . import linalg as linalg
from . import naive_bayes as naive_bayes
from . import preprocessing as preprocessing
from . import random as random
from . import regression as regression
from . import spatial as spatial
from ._methods import __all__ as _methods_all  # noqa: F401  (binds the DNDarray methods)
from .communication import *  # noqa: F403
from .devices import *  # noqa: F403
from .dndarray import DNDarray as DNDarray
from .elementwise import *  # noqa: F403
from .factories import *  # noqa: F403
from .indexing import nonzero as nonzero
from .indexing import take as take
from .io import *  # noqa: F403
from .linalg import cg as cg
from .linalg import det as det
from .linalg import dot as dot
from .linalg import hsvd as hsvd
from .linalg import hsvd_rank as hsvd_rank
from .linalg import hsvd_rtol as hsvd_rtol
from .linalg import inv as inv
from .linalg import lanczos as lanczos
from .linalg import matmul as matmul
from .linalg import matrix_norm as matrix_norm
from .linalg import norm as norm
from .linalg import outer as outer
from .linalg import qr as qr
from .linalg import svd as svd
from .linalg import trace as trace
from .linalg import vdot as vdot
from .linalg import vecdot as vecdot
from .linalg import vector_norm as vector_norm
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
