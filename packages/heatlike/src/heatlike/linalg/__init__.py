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


def _norm_method(self, axis=None, keepdims=False, ord=None):
    """A vector or matrix norm of ``self``: ``ht.linalg.norm(self, axis, keepdims, ord)``."""
    return norm(self, axis, keepdims, ord)


def _dot_method(self, other, out=None):
    """The dot product of ``self`` and ``other``: ``ht.dot(self, other, out)``."""
    return dot(self, other, out)


DNDarray.norm = _norm_method
DNDarray.dot = _dot_method
