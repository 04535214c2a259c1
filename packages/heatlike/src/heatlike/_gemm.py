"""Local matrix products on the CPU through whichever BLAS is faster on this machine.

torch's CPU wheels multiply with MKL, NumPy's with OpenBLAS. On Intel processors MKL is usually
the faster of the two; on AMD processors it often is not (measured on a 2-core AMD EPYC, one
thread, 2048 x 4096 by 4096 x 4096 float32: torch 1.21-1.36 s, NumPy 0.99-1.01 s). The first
large product of each dtype (`agree`, called by the distributed matmul on every rank) times
both on a 768 x 768 probe (about 0.2 s, once per process;
at 384 x 384 the two were equal there, so the probe must be large enough to show the steady
state) and keeps NumPy only when it is at least 7% faster, unless ``HEATLIKE_GEMM`` is ``torch``
or ``numpy``. Both libraries see the same thread limit (hpc-comm
sets torch's and, through threadpoolctl, every BLAS pool to one share of the cores per rank).
"""

from __future__ import annotations

import os
import time
import weakref

import numpy as np
import torch

__all__ = ["addmm_", "agree", "matmul"]

# Products smaller than this many multiply-adds stay in torch: the choice only matters where
# the arithmetic dominates, and a NumPy call costs a few microseconds more.
MIN_WORK = 1 << 27
_DTYPES = (torch.float32, torch.float64)
_PROBE = 768
_choice: dict = {}  # dtype -> True when NumPy's BLAS is the faster one (the last agreement)
_agreed: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # communicator -> dtypes


def agree(comm, dtype) -> bool:
    """Choose the BLAS for ``dtype`` once, the same on every rank of ``comm`` (collective on the
    first call for a dtype: every rank probes and the mean ratio decides; ranks probing side by
    side measure differently, and ranks that chose differently would wait for the slower one).
    True when NumPy's BLAS was chosen."""
    if dtype not in _DTYPES:
        return False
    # agreed per communicator: a rank that decided on a sub-communicator must still take part
    # when the ranks of another communicator decide, or the undecided ones would wait forever
    agreed = _agreed.setdefault(comm.handle, set())
    if dtype not in agreed or dtype not in _choice:
        _choice.pop(dtype, None)
        agreed.add(dtype)
        forced = os.environ.get("HEATLIKE_GEMM", "auto").strip().lower()
        if forced in ("torch", "numpy"):
            _choice[dtype] = forced == "numpy"
        else:
            ratio = torch.tensor([_probe_ratio(dtype)], dtype=torch.float64)
            if comm.handle.size > 1:
                comm.handle.allreduce(ratio)
            _choice[dtype] = bool(ratio.item() / comm.handle.size < 0.93)
    return _choice[dtype]


def _numpy_faster(dtype) -> bool:
    """The choice made by ``agree`` (torch until then)."""
    return _choice.get(dtype, False)


def _probe_ratio(dtype) -> float:
    """NumPy's time over torch's for one probe product, the fastest of three each."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(_PROBE, _PROBE, generator=g, dtype=dtype)
    y = torch.randn(_PROBE, _PROBE, generator=g, dtype=dtype)
    out = torch.empty(_PROBE, _PROBE, dtype=dtype)
    xn, yn, on = x.numpy(), y.numpy(), out.numpy()
    best = {"torch": float("inf"), "numpy": float("inf")}
    for _ in range(5):  # alternating, the fastest of each: interference only adds time
        for name in best:
            start = time.perf_counter()
            if name == "torch":
                torch.mm(x, y, out=out)
            else:
                np.matmul(xn, yn, out=on)
            best[name] = min(best[name], time.perf_counter() - start)
    return best["numpy"] / best["torch"]


def _use_numpy(x: torch.Tensor, y: torch.Tensor) -> bool:
    return (
        x.dim() == 2
        and y.dim() == 2
        and x.dtype in _DTYPES
        and y.dtype is x.dtype
        and x.device.type == "cpu"
        and y.device.type == "cpu"
        and not (x.requires_grad or y.requires_grad)
        and x.shape[0] * x.shape[1] * y.shape[1] >= MIN_WORK
        and _numpy_faster(x.dtype)
    )


def matmul(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``x @ y`` (torch.matmul semantics), 2-d CPU floating-point products by the faster BLAS."""
    if _use_numpy(x, y):
        return torch.from_numpy(np.matmul(x.numpy(), y.numpy()))
    return torch.matmul(x, y)


def addmm_(c: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``c += x @ y`` in place for a 2-d floating-point ``c``."""
    if _use_numpy(x, y) and c.dtype is x.dtype and c.is_contiguous():
        c.numpy()[...] += np.matmul(x.numpy(), y.numpy())
        return c
    return c.addmm_(x, y)
