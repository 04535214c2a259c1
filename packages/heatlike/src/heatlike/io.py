"""I/O: HDF5 (each rank reads its own hyperslab), CSV and .npy; writes go rank by rank into a
temporary file that is renamed when complete, so no parallel HDF5 is needed."""

from __future__ import annotations

import os

import numpy as np
import torch

from . import types
from ._redistribute import resplit
from .communication import sanitize_comm
from .devices import sanitize_device
from .dndarray import DNDarray
from .factories import _local_block, sanitize_split

__all__ = [
    "load",
    "load_csv",
    "load_hdf5",
    "load_npy",
    "save",
    "save_csv",
    "save_hdf5",
    "save_npy",
    "supports_hdf5",
]


def supports_hdf5() -> bool:
    """Whether h5py is installed (the ``hdf5`` extra)."""
    try:
        import h5py  # noqa: F401
    except ImportError:
        return False
    return True


def _h5py():
    try:
        import h5py
    except ImportError as exc:
        raise ImportError("HDF5 I/O needs h5py: pip install 'heatlike[hdf5]'") from exc
    return h5py


def _check_path(path, name="path") -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or path, got {type(path).__name__}")
    return os.fspath(path)


def _wrap(block: np.ndarray, shape, split, dtype, device, comm) -> DNDarray:
    device = sanitize_device(device)
    t = torch.from_numpy(np.ascontiguousarray(block))
    if dtype is not None:
        t = t.to(types.canonical_heat_type(dtype).torch_type())
    _local, _, counts = _local_block(tuple(shape), split, comm)
    return DNDarray._make(t.to(device.torch_device), tuple(shape), split, comm, device, counts)


def _block_slices(shape, split, comm):
    _, offset, counts = _local_block(tuple(shape), split, comm)
    if split is None:
        return tuple(slice(0, s) for s in shape)
    return tuple(
        slice(offset, offset + counts[comm.rank]) if a == split else slice(0, s)
        for a, s in enumerate(shape)
    )


def load_hdf5(
    path, dataset, dtype=types.float32, load_fraction=1.0, split=None, device=None, comm=None
):
    """Read ``dataset`` of an HDF5 file; with ``split`` each rank reads only its own block."""
    path = _check_path(path)
    if not isinstance(dataset, str):
        raise TypeError(f"dataset must be a str, got {type(dataset).__name__}")
    if not 0.0 < load_fraction <= 1.0:
        raise ValueError(f"load_fraction must be in (0, 1], got {load_fraction}")
    if not os.path.exists(path):
        raise ValueError(f"path {path!r} does not exist")
    h5py = _h5py()
    comm = sanitize_comm(comm)
    with h5py.File(path, "r") as handle:
        data = handle[dataset]
        shape = list(data.shape)
        split = sanitize_split(split, len(shape))
        if split is not None and load_fraction < 1.0:
            shape[split] = int(shape[split] * load_fraction)
        block = data[_block_slices(shape, split, comm)] if shape else data[()]
    return _wrap(np.asarray(block), shape, split, dtype, device, comm)


def _in_turns(comm, write_block) -> None:
    """Call ``write_block()`` on one rank at a time, in rank order."""
    for r in range(comm.size):
        if comm.rank == r:
            write_block()
        comm.handle.barrier()


def _temp_name(path: str, comm) -> str:
    name = f"{path}.tmp-{os.getpid()}" if comm.rank == 0 else None
    return comm.handle.bcast_obj(name, 0)


def _finish(tmp: str, path: str, comm) -> None:
    if comm.rank == 0:
        os.replace(tmp, path)
    comm.handle.barrier()


def save_hdf5(data: DNDarray, path, dataset, mode="w", **kwargs) -> None:
    """Write ``data`` to ``dataset`` of an HDF5 file (``mode`` 'w' or 'a'), rank by rank into a
    temporary file that replaces ``path`` when all blocks are written."""
    if not isinstance(data, DNDarray):
        raise TypeError(f"data must be a DNDarray, got {type(data).__name__}")
    path = _check_path(path)
    if mode not in ("w", "a", "r+"):
        raise ValueError(f"mode must be 'w', 'a' or 'r+', got {mode!r}")
    h5py = _h5py()
    comm = data.comm
    tmp = _temp_name(path, comm)
    np_dtype = _np_dtype(data)
    if comm.rank == 0:
        if mode != "w" and os.path.exists(path):
            import shutil

            shutil.copyfile(path, tmp)
        with h5py.File(tmp, "a" if mode != "w" else "w") as handle:
            if dataset in handle:
                del handle[dataset]
            handle.create_dataset(dataset, shape=data.gshape, dtype=np_dtype, **kwargs)
    comm.handle.barrier()

    def write():
        if data.split is None and comm.rank != 0:
            return
        with h5py.File(tmp, "r+") as handle:
            slices = _written_slices(data)
            if data.lnumel:
                handle[dataset][slices] = _local_numpy(data)

    _in_turns(comm, write)
    _finish(tmp, path, comm)


def _written_slices(data: DNDarray):
    return tuple(
        slice(data.offset, data.offset + data.lshape[a]) if a == data.split else slice(0, s)
        for a, s in enumerate(data.gshape)
    )


def _np_dtype(data: DNDarray):
    t = data.larray.dtype
    return np.dtype(np.float32) if t is torch.bfloat16 else torch.empty(0, dtype=t).numpy().dtype


def _local_numpy(data: DNDarray) -> np.ndarray:
    t = data.larray.detach().cpu()
    return (t.float() if t.dtype is torch.bfloat16 else t).numpy()


def load_csv(
    path,
    header_lines=0,
    sep=",",
    dtype=types.float32,
    encoding="utf-8",
    split=None,
    device=None,
    comm=None,
):
    """Read a CSV file of numbers; with ``split=0`` each rank parses only its rows."""
    path = _check_path(path)
    if not isinstance(sep, str):
        raise TypeError(f"sep must be a str, got {type(sep).__name__}")
    if not os.path.exists(path):
        raise ValueError(f"path {path!r} does not exist")
    comm = sanitize_comm(comm)
    with open(path, encoding=encoding) as handle:
        lines = [ln for ln in handle.read().splitlines()[header_lines:] if ln.strip()]
    ncols = len(lines[0].split(sep)) if lines else 0
    shape = (len(lines), ncols)
    split = sanitize_split(split, 2)
    rows = _block_slices(shape, split, comm)[0] if split == 0 else slice(0, len(lines))
    mine = lines[rows]
    block = np.array([[float(v) for v in ln.split(sep)] for ln in mine], dtype=np.float64)
    block = block.reshape(len(mine), ncols)
    if split == 1:
        block = block[:, _block_slices(shape, 1, comm)[1]]
    return _wrap(block, shape, split, dtype, device, comm)


def save_csv(
    data: DNDarray, path, header_lines=None, sep=",", decimals=-1, encoding="utf-8", truncate=True
):
    """Write a 1-d or 2-d array as CSV, rank by rank, then rename into place."""
    if not isinstance(data, DNDarray):
        raise TypeError(f"data must be a DNDarray, got {type(data).__name__}")
    if data.ndim not in (1, 2):
        raise ValueError(f"save_csv writes 1-d or 2-d arrays, got {data.ndim} dimensions")
    path = _check_path(path)
    if data.split not in (None, 0):
        data = resplit(data, 0)
    comm = data.comm
    tmp = _temp_name(path, comm)
    fmt = f"%.{decimals}f" if decimals >= 0 else "%s"
    if comm.rank == 0:
        with open(tmp, "w", encoding=encoding) as handle:
            for line in header_lines or []:
                handle.write(f"{line}\n")
    comm.handle.barrier()

    def write():
        if data.split is None and comm.rank != 0:
            return
        block = _local_numpy(data).reshape(data.lshape[0], -1)
        with open(tmp, "a", encoding=encoding) as handle:
            for row in block:
                handle.write(sep.join(fmt % v for v in row) + "\n")

    _in_turns(comm, write)
    _finish(tmp, path, comm)


def load_npy(path, dtype=None, split=None, device=None, comm=None) -> DNDarray:
    """Read a .npy file; with ``split`` each rank reads only its block (memory-mapped)."""
    path = _check_path(path)
    if not os.path.exists(path):
        raise ValueError(f"path {path!r} does not exist")
    comm = sanitize_comm(comm)
    mapped = np.load(path, mmap_mode="r")
    split = sanitize_split(split, mapped.ndim)
    block = np.array(mapped[_block_slices(mapped.shape, split, comm)] if mapped.ndim else mapped)
    return _wrap(block, mapped.shape, split, dtype, device, comm)


def save_npy(data: DNDarray, path) -> None:
    """Write a .npy file: rank 0 writes the header, then each rank its block in turn."""
    if not isinstance(data, DNDarray):
        raise TypeError(f"data must be a DNDarray, got {type(data).__name__}")
    path = _check_path(path)
    comm = data.comm
    tmp = _temp_name(path, comm)
    if comm.rank == 0:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=_np_dtype(data), shape=data.gshape)
        del out
    comm.handle.barrier()

    def write():
        if data.split is None and comm.rank != 0:
            return
        out = np.lib.format.open_memmap(tmp, mode="r+")
        if data.lnumel:
            out[_written_slices(data)] = _local_numpy(data)
        out.flush()
        del out

    _in_turns(comm, write)
    _finish(tmp, path, comm)


def _extension(path) -> str:
    return os.path.splitext(_check_path(path))[1].lower()


def load(path, *args, **kwargs) -> DNDarray:
    """Read a file by extension: .h5/.hdf5 (give the dataset), .csv, .npy."""
    ext = _extension(path)
    if ext in (".h5", ".hdf5"):
        return load_hdf5(path, *args, **kwargs)
    if ext == ".csv":
        return load_csv(path, *args, **kwargs)
    if ext == ".npy":
        return load_npy(path, *args, **kwargs)
    raise ValueError(f"unsupported file extension {ext!r}: use .h5, .hdf5, .csv or .npy")


def save(data: DNDarray, path, *args, **kwargs) -> None:
    """Write a file by extension: .h5/.hdf5 (give the dataset), .csv, .npy."""
    ext = _extension(path)
    if ext in (".h5", ".hdf5"):
        return save_hdf5(data, path, *args, **kwargs)
    if ext == ".csv":
        return save_csv(data, path, *args, **kwargs)
    if ext == ".npy":
        return save_npy(data, path, *args, **kwargs)
    raise ValueError(f"unsupported file extension {ext!r}: use .h5, .hdf5, .csv or .npy")
