"""Distributed linear algebra (``ht.linalg``): products, norms, QR, SVD and hierarchical SVD,
iterative solvers, and small dense inverse/determinant/solve."""

from __future__ import annotations

from ..dndarray import DNDarray
from ..manipulations import transpose, tril, triu
from .norms import matrix_norm, matrix_transpose, norm, trace, vector_norm
from .products import dot, matmul, outer, vdot, vecdot
from .qr import qr
from .small import det, inv, solve
from .solver import cg, lanczos
from .svd import svd, svdvals
from .svdtools import hsvd, hsvd_rank, hsvd_rtol

__all__ = [
    "cg",
    "det",
    "dot",
    "hsvd",
    "hsvd_rank",
    "hsvd_rtol",
    "inv",
    "lanczos",
    "matmul",
    "matrix_norm",
    "matrix_transpose",
    "norm",
    "outer",
    "qr",
    "solve",
    "svd",
    "svdvals",
    "trace",
    "transpose",
    "tril",
    "triu",
    "vdot",
    "vecdot",
    "vector_norm",
]


def _matmul_operator(self, other):
    if not isinstance(other, DNDarray):
        return NotImplemented
    return matmul(self, other)


def _rmatmul_operator(self, other):
    if not isinstance(other, DNDarray):
        return NotImplemented
    return matmul(other, self)


DNDarray.__matmul__ = _matmul_operator
DNDarray.__rmatmul__ = _rmatmul_operator
DNDarray.norm = lambda self, axis=None, keepdims=False, ord=None: norm(self, axis, keepdims, ord)
DNDarray.dot = lambda self, other, out=None: dot(self, other, out)
