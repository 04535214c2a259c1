"""Checks for tests of code that uses heatlike: compare a distributed array with NumPy on every
rank, check the layout, and prove an operation gathered nothing (via hpc-comm's traffic)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

import hpc_comm as hc

from .dndarray import DNDarray

__all__ = [
    "assert_equal_np",
    "assert_layout",
    "largest_receive_within_share",
    "received_within_share",
    "rng",
    "splits_of",
]


def splits_of(ndim: int) -> list:
    """None and every axis."""
    return [None, *range(ndim)]


def rng(seed: int = 0) -> np.random.Generator:
    """The same generator on every rank, so every rank knows the global data."""
    return np.random.default_rng(seed)


def assert_layout(x: DNDarray) -> None:
    """The local block agrees with the global shape and the recorded counts."""
    assert isinstance(x, DNDarray)
    if x.split is None:
        assert tuple(x.larray.shape) == x.gshape
        return
    counts = x.counts
    assert len(counts) == x.comm.size and sum(counts) == x.gshape[x.split]
    expected = list(x.gshape)
    expected[x.split] = counts[x.comm.rank]
    assert tuple(x.larray.shape) == tuple(expected)


def assert_equal_np(x, expected, rtol=1e-5, atol=1e-6, check_dtype=False) -> None:
    """``x`` (a DNDarray) equals ``expected`` (NumPy): shape, layout, each rank's block, the
    global values.

    Collective, and fails on every rank alike: each rank checks its own block, then the ranks
    agree on the outcome, so one rank's failure cannot leave the others waiting in the next
    test's collectives.
    """
    expected = np.asarray(expected)
    assert isinstance(x, DNDarray), type(x)
    whole = x.numpy()  # collective first: every rank takes part whatever it finds below
    error = ""
    try:
        _check_against(x, whole, expected, rtol, atol, check_dtype)
    except AssertionError as exc:
        error = f"rank {x.comm.rank}: {exc}"
    errors = [e for e in x.comm.handle.allgather_obj(error) if e]
    assert not errors, "\n".join(errors)


def _check_against(x, whole, expected, rtol, atol, check_dtype) -> None:
    assert_layout(x)
    assert x.gshape == expected.shape, (x.gshape, expected.shape)
    local = x.larray.detach().cpu()
    local = (local.float() if local.dtype.__str__() == "torch.bfloat16" else local).numpy()
    if x.split is None:
        block = expected
    else:
        index = [slice(None)] * x.ndim
        index[x.split] = slice(x.offset, x.offset + x.counts[x.comm.rank])
        block = expected[tuple(index)]
    if expected.dtype.kind in "fc":
        np.testing.assert_allclose(local, block, rtol=rtol, atol=atol, equal_nan=True)
        np.testing.assert_allclose(whole, expected, rtol=rtol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(local, block)
        np.testing.assert_array_equal(whole, expected)
    if check_dtype:
        assert np.dtype(local.dtype) == expected.dtype, (local.dtype, expected.dtype)


class _PeakCounter(defaultdict):
    """A byte counter that also remembers the largest single increment (one call's receive)."""

    def __init__(self, initial=()):
        super().__init__(int, initial)
        self.peak = 0

    def __setitem__(self, key, value):
        self.peak = max(self.peak, value - self.get(key, 0))
        super().__setitem__(key, value)


def _measure(run):
    with hc.traffic() as t:
        t.bytes_received = _PeakCounter(t.bytes_received)
        run()
    return t


def _agree(ok: bool, message: str, comm=None) -> None:
    """Fail on every rank if the check failed on any (no rank is left in a collective)."""
    comm = hc.world() if comm is None else comm
    errors = [m for m in comm.allgather_obj("" if ok else message) if m]
    assert not errors, "\n".join(errors)


def received_within_share(run, total_bytes: int, size: int, factor: float = 1.3) -> int:
    """Run ``run()`` (collectively) and check that no rank received more than about its share of
    ``total_bytes`` in total; returns the bytes this rank received."""
    t = _measure(run)
    got = t.total_bytes_received
    limit = factor * total_bytes / size + 4096
    rank = hc.world().rank
    _agree(
        got <= limit, f"rank {rank} received {got} bytes, share limit {limit:.0f} ({t.as_dict()})"
    )
    return got


def largest_receive_within_share(run, total_bytes: int, size: int, factor: float = 1.5) -> int:
    """Run ``run()`` (collectively) and check that no single call handed any rank more than
    about its share of ``total_bytes``: proof that nothing was gathered onto one rank even when
    the operation moves the data several times (a gather's one call would bring ``size`` shares).
    Returns the largest single receive of this rank."""
    t = _measure(run)
    peak = t.bytes_received.peak
    limit = factor * total_bytes / size + 4096
    rank = hc.world().rank
    _agree(
        peak <= limit,
        f"rank {rank} received {peak} bytes in one call, share limit {limit:.0f} ({t.as_dict()})",
    )
    return peak
