"""Tiled inference: global statistics from a sample, then overlapping tiles blended by weights.

A cube larger than memory is read tile by tile (from an HDF5 dataset, a memory-mapped .npy file
or a tensor). First a sample of tiles gives the method's global statistics (noise per band,
signal subspace), so every tile is denoised with the same ones. Tiles overlap by ``overlap``
pixels and are blended with separable linear ramps normalised to a partition of unity, so there
is no seam. Under MPI the output rows are split between ranks; each rank denoises the tiles that
touch its rows and writes them, and since every pixel sums the same contributions in the same
order, the result equals the single-process one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from hpc_comm.cli_support import progress_bar

from ._checks import positive


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` overlapping by ``overlap`` along ``length``."""
    tile = min(tile, length)
    if tile >= length:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _profile(start: int, tile: int, length: int, overlap: int) -> np.ndarray:
    """Linear ramp weights of one tile along one axis (flat at the borders of the image)."""
    i = np.arange(tile, dtype=np.float64)
    ramp = (np.minimum(i + 1, tile - i)) / (overlap + 1)
    if start == 0:
        ramp = np.where(i < tile / 2, 1.0, ramp)
    if start + tile == length:
        ramp = np.where(i >= tile / 2, 1.0, ramp)
    return np.minimum(ramp, 1.0)


def _axis_weights(length: int, tile: int, overlap: int):
    """Per-tile profiles along an axis, already divided by their sum (a partition of unity)."""
    tile = min(tile, length)
    starts = tile_starts(length, tile, overlap)
    profiles = [_profile(s, tile, length, overlap) for s in starts]
    total = np.zeros(length)
    for s, p in zip(starts, profiles, strict=True):
        total[s : s + tile] += p
    return tile, starts, [p / total[s : s + tile] for s, p in zip(starts, profiles, strict=True)]


def _open_source(source, key):
    """A sliceable rows x cols x bands array (h5py dataset, memmap, ndarray or tensor) + closer."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.suffix.lower() in (".h5", ".hdf5"):
            import h5py

            handle = h5py.File(path, "r")
            if key is None:
                names = [k for k, v in handle.items() if getattr(v, "ndim", 0) == 3]
                if len(names) != 1:
                    handle.close()
                    raise ValueError(f"{path} holds {names or 'no'} 3-D datasets; pass key=")
                key = names[0]
            return handle[key], handle.close
        if path.suffix.lower() == ".npy":
            return np.load(path, mmap_mode="r"), lambda: None
        raise ValueError(f"source path must end in .h5, .hdf5 or .npy, got {path.name!r}")
    if isinstance(source, (torch.Tensor, np.ndarray)) or hasattr(source, "shape"):
        if len(source.shape) != 3:
            raise ValueError(f"source must be rows x cols x bands, got shape {source.shape}")
        return source, lambda: None
    raise TypeError(f"source must be a tensor, array, h5py dataset or path, got {type(source)}")


def _read(source, rows: slice, cols: slice) -> torch.Tensor:
    block = source[rows, cols, :]
    if isinstance(block, torch.Tensor):
        return block.to(torch.float64 if block.dtype == torch.float64 else torch.float32)
    block = np.asarray(block)
    dtype = torch.float64 if block.dtype == np.float64 else torch.float32
    return torch.from_numpy(np.array(block, copy=True, order="C")).to(dtype)


def sample_cube(source, tile: int, overlap: int, max_tiles: int = 16) -> torch.Tensor:
    """Up to ``max_tiles`` tiles spread evenly over the grid, stacked along the rows."""
    rows, cols = source.shape[:2]
    th, tw = min(tile, rows), min(tile, cols)
    grid = [(r, c) for r in tile_starts(rows, th, overlap) for c in tile_starts(cols, tw, overlap)]
    pick = np.unique(np.linspace(0, len(grid) - 1, min(max_tiles, len(grid))).round().astype(int))
    tiles = [_read(source, slice(r, r + th), slice(c, c + tw)) for r, c in (grid[i] for i in pick)]
    return torch.cat(tiles, dim=0)


def _row_split(rows: int, starts: list[int], tile: int, size: int) -> list[tuple[int, int]]:
    """Contiguous output rows per rank, cut at tile starts so the work is balanced by tile rows."""
    bounds = np.linspace(0, len(starts), size + 1).round().astype(int)
    cuts = [0] + [starts[b] if b < len(starts) else rows for b in bounds[1:-1]] + [rows]
    return [(cuts[k], cuts[k + 1]) for k in range(size)]


def tiled_denoise(
    method,
    source,
    out=None,
    tile: int = 128,
    overlap: int = 16,
    comm=None,
    key: str | None = None,
    sample_tiles: int = 16,
    stats: dict | None = None,
    progress: bool = False,
):
    """Denoise a cube tile by tile with ``method`` (a `hyde.methods.Denoiser`).

    ``source``: tensor, array, h5py dataset or a path to .h5 (dataset ``key``) or .npy (memory
    mapped). ``out``: None returns the cube as a tensor (on every rank); a ``.npy`` path is
    written in place by all ranks (bounded memory: a strip of tile rows per rank); a ``.h5``
    path is written by a single process only. ``stats`` overrides the statistics that are
    otherwise computed from ``sample_tiles`` tiles of the cube. Returns the tensor, or None when
    ``out`` is a path.
    """
    positive(tile, "tile", integer=True)
    positive(overlap, "overlap", integer=True, allow_zero=True)
    if overlap >= tile:
        raise ValueError(f"overlap must be smaller than tile ({tile}), got {overlap}")
    if comm is None:
        import hpc_comm as hc

        comm = hc.world()
    if out is not None:
        out = Path(out)
        if out.suffix.lower() not in (".npy", ".h5", ".hdf5"):
            raise ValueError(f"out must end in .npy, .h5 or .hdf5, got {out.name!r}")
        if out.suffix.lower() != ".npy" and comm.size > 1:
            raise ValueError("out must be a .npy file when running on several ranks")
    array, close = _open_source(source, key)
    try:
        rows, cols, bands = (int(s) for s in array.shape)
        th, row_starts, row_w = _axis_weights(rows, tile, overlap)
        tw, col_starts, col_w = _axis_weights(cols, tile, overlap)
        if stats is None:
            if comm.rank == 0:
                sample = sample_cube(array, tile, overlap, sample_tiles)
                stats = method.tile_statistics(sample)
            stats = comm.bcast_obj(stats, root=0)
        lo, hi = _row_split(rows, row_starts, th, comm.size)[comm.rank]
        dtype = (
            np.float64
            if _read(array, slice(0, 1), slice(0, 1)).dtype == torch.float64
            else np.float32
        )
        writer, result = _open_output(out, (rows, cols, bands), dtype, comm, (lo, hi))
        todo = [i for i, s in enumerate(row_starts) if s < hi and s + th > lo] if lo < hi else []
        bar = (
            progress_bar(len(todo) * len(col_starts), desc="tiles", unit="tile", enabled=progress)
            or _NoBar()
        )
        strip = np.zeros((0, cols, bands))
        strip_lo = lo
        for i in todo:
            r0 = row_starts[i]
            # rows below this tile row's start are final: no later tile touches them
            done = max(min(r0, hi) - strip_lo, 0)
            if done:
                writer(strip_lo, strip[:done].astype(dtype))
                strip, strip_lo = strip[done:], strip_lo + done
            need = min(r0 + th, hi) - strip_lo
            if need > strip.shape[0]:
                strip = np.concatenate([strip, np.zeros((need - strip.shape[0], cols, bands))])
            a, b = max(r0, lo), min(r0 + th, hi)
            for j, c0 in enumerate(col_starts):
                block = _read(array, slice(r0, r0 + th), slice(c0, c0 + tw))
                clean = method(block, stats).to(torch.float64).numpy()
                weight = row_w[i][:, None, None] * col_w[j][None, :, None]
                strip[a - strip_lo : b - strip_lo, c0 : c0 + tw] += (clean * weight)[
                    a - r0 : b - r0
                ]
                bar.update(1)
        if strip.shape[0]:
            writer(strip_lo, strip.astype(dtype))
        bar.close()
        return _finish(out, result, comm)
    finally:
        close()


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _open_output(out, shape, dtype, comm, own_rows):
    if out is None:  # this rank's rows only; `_finish` gathers the cube
        lo, hi = own_rows
        result = np.zeros((hi - lo, *shape[1:]), dtype=dtype)

        def write(row, block):
            result[row - lo : row - lo + block.shape[0]] = block

        return write, result
    if out.suffix.lower() == ".npy":
        tmp = out.with_name(f".{out.name}.partial")
        if comm.rank == 0:
            np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape).flush()
        comm.barrier()
        memmap = np.lib.format.open_memmap(tmp, mode="r+")

        def write(row, block):
            memmap[row : row + block.shape[0]] = block

        return write, (memmap, tmp)
    import h5py

    tmp = out.with_name(f".{out.name}.partial")
    handle = h5py.File(tmp, "w")
    dataset = handle.create_dataset("cube", shape=shape, dtype=dtype)

    def write(row, block):
        dataset[row : row + block.shape[0]] = block

    return write, (handle, tmp)


def _finish(out, result, comm):
    if out is None:
        tensor = torch.from_numpy(result)
        if comm.size > 1:  # each rank holds its own rows, in rank order
            tensor = comm.allgatherv(tensor, dim=0)
        return tensor
    handle, tmp = result
    if isinstance(handle, np.memmap):
        handle.flush()
        del handle
        comm.barrier()
        if comm.rank == 0:
            os.replace(tmp, out)
        comm.barrier()
    else:
        handle.close()
        os.replace(tmp, out)
    return None
