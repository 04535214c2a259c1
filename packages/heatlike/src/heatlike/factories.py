"""Array creation: array/asarray, zeros/ones/empty/full and their *_like, ranges, eye, meshgrid."""

from __future__ import annotations

import math

import numpy as np
import torch

from . import types
from .communication import chunk_counts, sanitize_comm
from .devices import sanitize_device
from .dndarray import DNDarray

__all__ = [
    "arange",
    "array",
    "asarray",
    "empty",
    "empty_like",
    "eye",
    "from_numpy",
    "full",
    "full_like",
    "linspace",
    "logspace",
    "meshgrid",
    "ones",
    "ones_like",
    "zeros",
    "zeros_like",
]


def sanitize_shape(shape, name: str = "shape") -> tuple:
    """A tuple of non-negative ints from an int or a sequence of ints."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{name} must be an int or a sequence of ints, got {shape!r}") from None
    out = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise TypeError(f"{name} must contain ints, got {d!r}")
        if d < 0:
            raise ValueError(f"{name} must be non-negative, got {tuple(dims)}")
        out.append(int(d))
    return tuple(out)


def sanitize_split(split, ndim: int, name: str = "split") -> int | None:
    """``split`` as an axis in ``0 .. ndim - 1`` (negative values count from the end), or None.
    TypeError unless an int or None, ValueError when out of range; ``name`` is the argument
    named in the message."""
    if split is None:
        return None
    if isinstance(split, bool) or not isinstance(split, (int, np.integer)):
        raise TypeError(f"{name} must be an int or None, got {type(split).__name__}")
    if ndim == 0 or not -ndim <= split < ndim:
        raise ValueError(f"{name}={split} is out of range for {ndim} dimensions")
    return int(split) % ndim


def _torch_dtype(dtype, default=None):
    if dtype is None:
        return default
    return types.canonical_heat_type(dtype).torch_type()


def _local_block(shape, split, comm):
    """This rank's local shape, its offset along ``split`` and every rank's count."""
    if split is None:
        return shape, 0, None
    counts = chunk_counts(shape[split], comm.size)
    offset = sum(counts[: comm.rank])
    local = (*shape[:split], counts[comm.rank], *shape[split + 1 :])
    return local, offset, tuple(counts)


def _filled(shape, value, dtype, split, device, comm, make) -> DNDarray:
    shape = sanitize_shape(shape)
    split = sanitize_split(split, len(shape))
    device, comm = sanitize_device(device), sanitize_comm(comm)
    local, _, counts = _local_block(shape, split, comm)
    tensor = make(local, dtype=_torch_dtype(dtype, torch.float32), device=device.torch_device)
    if value is not None:
        tensor.fill_(value)
    return DNDarray._make(tensor, shape, split, comm, device, counts)


def zeros(shape, dtype=types.float32, split=None, device=None, comm=None, order="C") -> DNDarray:
    """An array of zeros (float32 unless ``dtype``), split on ``split``."""
    return _filled(shape, None, dtype, split, device, comm, torch.zeros)


def ones(shape, dtype=types.float32, split=None, device=None, comm=None, order="C") -> DNDarray:
    """An array of ones (float32 unless ``dtype``), split on ``split``."""
    return _filled(shape, None, dtype, split, device, comm, torch.ones)


def empty(shape, dtype=types.float32, split=None, device=None, comm=None, order="C") -> DNDarray:
    """An array of uninitialised values (float32 unless ``dtype``), split on ``split``."""
    return _filled(shape, None, dtype, split, device, comm, torch.empty)


def full(
    shape, fill_value, dtype=types.float32, split=None, device=None, comm=None, order="C"
) -> DNDarray:
    """An array of ``fill_value`` (float32 unless ``dtype``), split on ``split``."""
    return _filled(shape, fill_value, dtype, split, device, comm, torch.empty)


def _like(a, dtype, split, device, comm):
    dtype = a.dtype if dtype is None else dtype
    if isinstance(a, DNDarray):
        split = a.split if split is None else split
        device = a.device if device is None else device
        comm = a.comm if comm is None else comm
    return a.shape, dtype, split, device, comm


def zeros_like(a, dtype=None, split=None, device=None, comm=None, order="C") -> DNDarray:
    """An array of zeros with the shape of ``a``; ``dtype``, ``split``, ``device`` and ``comm``
    default to ``a``'s (``order`` is accepted for NumPy's signature)."""
    return zeros(*_like(a, dtype, split, device, comm))


def ones_like(a, dtype=None, split=None, device=None, comm=None, order="C") -> DNDarray:
    """An array of ones with the shape of ``a``; ``dtype``, ``split``, ``device`` and ``comm``
    default to ``a``'s (``order`` is accepted for NumPy's signature)."""
    return ones(*_like(a, dtype, split, device, comm))


def empty_like(a, dtype=None, split=None, device=None, comm=None, order="C") -> DNDarray:
    """An array of uninitialised values with the shape of ``a``; ``dtype``, ``split``, ``device`` and ``comm``
    default to ``a``'s (``order`` is accepted for NumPy's signature)."""
    return empty(*_like(a, dtype, split, device, comm))


def full_like(a, fill_value, dtype=None, split=None, device=None, comm=None, order="C"):
    """An array of ``fill_value`` with the shape of ``a``; ``dtype``, ``split``, ``device`` and ``comm``
    default to ``a``'s (``order`` is accepted for NumPy's signature)."""
    shape, dtype, split, device, comm = _like(a, dtype, split, device, comm)
    return full(shape, fill_value, dtype, split, device, comm)


def _as_tensor(obj, dtype, device) -> torch.Tensor:
    if isinstance(obj, torch.Tensor):
        tensor = obj
    elif isinstance(obj, np.ndarray):
        tensor = torch.from_numpy(np.ascontiguousarray(obj))
    else:
        try:
            tensor = torch.as_tensor(obj)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(f"obj must be array-like, got {type(obj).__name__}: {exc}") from None
    tensor = tensor.to(device.torch_device)
    return tensor if dtype is None else tensor.to(dtype)


def array(
    obj,
    dtype=None,
    copy=None,
    ndmin: int = 0,
    order: str = "C",
    split=None,
    is_split=None,
    device=None,
    comm=None,
) -> DNDarray:
    """An array from ``obj`` (a sequence, NumPy array, tensor, scalar or DNDarray).

    ``split=k``: every rank passes the whole data and keeps its block along axis k.
    ``is_split=k``: every rank passes its own block; blocks are joined along axis k (their other
    dimensions must agree).
    """
    if split is not None and is_split is not None:
        raise ValueError("split and is_split are mutually exclusive, give at most one")
    if copy is False and dtype is not None:
        pass  # a cast copies anyway; Heat accepts this combination
    if isinstance(obj, DNDarray):
        return _from_dndarray(obj, dtype, copy, split, is_split, device)
    device, comm = sanitize_device(device), sanitize_comm(comm)
    tensor = _as_tensor(obj, _torch_dtype(dtype), device)
    if not isinstance(ndmin, int) or ndmin < 0:
        raise ValueError(f"ndmin must be a non-negative int, got {ndmin!r}")
    while tensor.dim() < ndmin:
        tensor = tensor.unsqueeze(0)
    if is_split is not None:
        return _join_local_blocks(tensor, is_split, device, comm)
    split = sanitize_split(split, tensor.dim())
    shape = tuple(tensor.shape)
    local, offset, counts = _local_block(shape, split, comm)
    if split is not None:
        tensor = tensor.narrow(split, offset, local[split])
    if copy is not False and (tensor.data_ptr() == _data_ptr(obj) or split is not None):
        tensor = tensor.clone()
    return DNDarray._make(tensor, shape, split, comm, device, counts)


def _data_ptr(obj) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.data_ptr()
    if isinstance(obj, np.ndarray):
        return obj.__array_interface__["data"][0]
    return -1


def _join_local_blocks(tensor, is_split, device, comm) -> DNDarray:
    is_split = sanitize_split(is_split, tensor.dim(), "is_split")
    shapes = comm.handle.allgather_obj(tuple(tensor.shape))
    others = {s[:is_split] + s[is_split + 1 :] for s in shapes}
    if len({len(s) for s in shapes}) != 1 or len(others) != 1:
        raise ValueError(
            f"is_split={is_split}: the local blocks must agree off the split axis, got {shapes}"
        )
    counts = tuple(s[is_split] for s in shapes)
    gshape = list(shapes[0])
    gshape[is_split] = sum(counts)
    return DNDarray._make(tensor, tuple(gshape), is_split, comm, device, counts)


def _from_dndarray(obj, dtype, copy, split, is_split, device) -> DNDarray:
    from ._redistribute import resplit

    out = obj
    if split is not None and split != obj.split:
        out = resplit(obj, sanitize_split(split, obj.ndim))
    if is_split is not None:
        return _join_local_blocks(obj.larray, is_split, obj.device, obj.comm)
    tensor = out.larray
    if dtype is not None:
        tensor = tensor.to(_torch_dtype(dtype))
    if device is not None:
        tensor = tensor.to(sanitize_device(device).torch_device)
    if copy is not False and tensor is obj.larray:
        tensor = tensor.clone()
    return DNDarray._make(tensor, out.gshape, out.split, out.comm, out.device, out._counts)


def asarray(
    obj, dtype=None, copy=None, order="C", is_split=None, device=None, split=None, comm=None
):
    """Like ``array`` but without a copy when ``obj`` already fits."""
    return array(
        obj,
        dtype=dtype,
        copy=False if copy is None else copy,
        split=split,
        is_split=is_split,
        device=device,
        comm=comm,
    )


def from_numpy(x: np.ndarray, split=None, device=None, comm=None) -> DNDarray:
    """An array with the data of the NumPy array ``x`` (every rank passes the same data)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy.ndarray, got {type(x).__name__}")
    return array(x, split=split, device=device, comm=comm)


def _ranged(count, value_of, dtype, split, device, comm) -> DNDarray:
    """A 1-d array of ``count`` values; each rank computes only its block (``value_of`` maps
    global positions, float64 or int64, to values)."""
    device, comm = sanitize_device(device), sanitize_comm(comm)
    split = sanitize_split(split, 1)
    local, offset, counts = _local_block((count,), split, comm)
    positions = torch.arange(offset, offset + local[0], dtype=torch.int64)
    values = value_of(positions).to(dtype).to(device.torch_device)
    return DNDarray._make(values, (count,), split, comm, device, counts)


def arange(*args, dtype=None, split=None, device=None, comm=None) -> DNDarray:
    """Evenly spaced values in ``[start, stop)`` with ``step``, like ``numpy.arange``; int32 for
    integer arguments and float32 otherwise unless ``dtype`` (Heat's defaults)."""
    if not 1 <= len(args) <= 3:
        raise TypeError(f"arange takes 1 to 3 positional arguments, got {len(args)}")
    start, stop, step = (0, args[0], 1) if len(args) == 1 else (*args, 1)[:3]
    for name, v in (("start", start), ("stop", stop), ("step", step)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} must be a number, got {type(v).__name__}")
    if step == 0:
        raise ValueError("step must not be zero")
    integral = all(isinstance(v, (int, np.integer)) for v in (start, stop, step))
    count = max(math.ceil((stop - start) / step), 0)
    default = torch.int32 if integral else torch.float32
    target = _torch_dtype(dtype, default)
    if integral:
        return _ranged(count, lambda i: start + step * i, target, split, device, comm)
    return _ranged(count, lambda i: start + step * i.double(), target, split, device, comm)


def linspace(
    start,
    stop,
    num=50,
    endpoint=True,
    retstep=False,
    dtype=None,
    split=None,
    device=None,
    comm=None,
):
    """``num`` evenly spaced values from ``start`` to ``stop`` (float32 unless ``dtype``)."""
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 0:
        raise ValueError(f"num must be a non-negative int, got {num!r}")
    div = (num - 1) if endpoint else num
    step = (stop - start) / div if div > 0 else float("nan")

    def value_of(i):
        v = start + i.double() * step if div > 0 else start + i.double() * (stop - start)
        if endpoint and num > 1:
            v = torch.where(i == num - 1, torch.tensor(float(stop), dtype=torch.float64), v)
        return v

    out = _ranged(num, value_of, _torch_dtype(dtype, torch.float32), split, device, comm)
    return (out, step) if retstep else out


def logspace(
    start, stop, num=50, endpoint=True, base=10.0, dtype=None, split=None, device=None, comm=None
) -> DNDarray:
    """``base`` to the power of ``num`` evenly spaced exponents (float32 unless ``dtype``)."""
    exps = linspace(
        start, stop, num, endpoint, dtype=types.float64, split=split, device=device, comm=comm
    )
    values = torch.pow(torch.tensor(float(base), dtype=torch.float64), exps.larray)
    exps._larray = values.to(_torch_dtype(dtype, torch.float32))
    return exps


def eye(shape, dtype=types.float32, split=None, device=None, comm=None, order="C") -> DNDarray:
    """The identity (ones on the main diagonal) of ``shape`` = n or (n, m)."""
    shape = sanitize_shape(shape)
    if len(shape) == 1:
        shape = (shape[0], shape[0])
    if len(shape) != 2:
        raise ValueError(f"shape must be n or (n, m), got {shape}")
    out = zeros(shape, dtype, split, device, comm)
    rows = torch.arange(out.larray.shape[0]) + (out.offset if split == 0 else 0)
    cols = torch.arange(out.larray.shape[1]) + (out.offset if split == 1 else 0)
    out.larray[rows[:, None] == cols[None, :]] = 1
    return out


def meshgrid(*arrays, indexing: str = "xy") -> list[DNDarray]:
    """Coordinate grids from 1-d arrays, as ``numpy.meshgrid``; a split input makes every output
    split along that input's grid axis."""
    from ._redistribute import resplit

    if indexing not in ("xy", "ij"):
        raise ValueError(f"indexing must be 'xy' or 'ij', got {indexing!r}")
    if not arrays:
        return []
    arrays = [a if isinstance(a, DNDarray) else array(a) for a in arrays]
    if any(a.ndim != 1 for a in arrays):
        raise ValueError("meshgrid takes 1-d arrays")
    axes = list(range(len(arrays)))
    if indexing == "xy" and len(arrays) > 1:
        axes[0], axes[1] = 1, 0
    split_inputs = [i for i, a in enumerate(arrays) if a.split is not None]
    out_split = axes[split_inputs[0]] if split_inputs else None
    shape = [0] * len(arrays)
    for i, a in enumerate(arrays):
        shape[axes[i]] = a.shape[0]
    locals_ = []
    for i, a in enumerate(arrays):
        if i == (split_inputs[0] if split_inputs else -1):
            a = resplit(a, 0)
        elif a.split is not None:
            a = resplit(a, None)
        locals_.append(a.larray)
    ordered = [None] * len(arrays)
    for i, t in enumerate(locals_):
        ordered[axes[i]] = t
    grids = torch.meshgrid(*ordered, indexing="ij")
    comm, device = arrays[0].comm, arrays[0].device
    counts = None if out_split is None else chunk_counts(shape[out_split], comm.size)
    results = [
        DNDarray._make(grids[axes[i]].contiguous(), tuple(shape), out_split, comm, device, counts)
        for i in range(len(arrays))
    ]
    return results
