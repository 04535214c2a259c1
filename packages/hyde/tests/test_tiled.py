"""Tiled inference: equal to whole-image inference, no seams, bounded memory, same under MPI."""

import itertools
import tempfile
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import hpc_comm as hc
import hyde
from hyde import noise_models as nm
from hyde.metrics import psnr
from hyde.tiled import _axis_weights, sample_cube, tile_starts, tiled_denoise


@pytest.fixture(scope="module")
def scene():
    cube = hyde.make_cube(80, 72, 16, endmembers=4, seed=5, dtype=torch.float64)
    return cube, nm.add_gaussian(cube, 0.05, seed=6)


@pytest.mark.parametrize(("length", "tile", "overlap"), [(80, 32, 8), (72, 32, 8), (20, 32, 4)])
def test_weights_are_a_partition_of_unity(length, tile, overlap):
    t, starts, weights = _axis_weights(length, tile, overlap)
    total = np.zeros(length)
    for s, w in zip(starts, weights, strict=True):
        assert (w > 0).all()
        total[s : s + t] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-12)
    assert starts[0] == 0 and starts[-1] + t == length
    assert all(b - a <= t - overlap for a, b in itertools.pairwise(starts))


def test_pixelwise_method_tiled_equals_whole(scene):
    # a pixel-wise method with global statistics: blending weights sum to one, so exact
    _, noisy = scene
    method = hyde.SubspaceProjection()
    stats = method.tile_statistics(sample_cube(noisy, 32, 8))
    tiled = tiled_denoise(method, noisy, tile=32, overlap=8, stats=stats)
    torch.testing.assert_close(tiled, method(noisy, stats), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("method", "tolerance"),
    [(hyde.HyRes(), 0.5), (hyde.FastHyDe(search_radius=3), 0.5)],
    ids=["hyres", "fasthyde"],
)
def test_tiled_close_to_whole_without_seams(scene, method, tolerance):
    cube, noisy = scene
    whole = method(noisy)
    tiled = tiled_denoise(method, noisy, tile=32, overlap=8)
    # not worse than the whole image (HyRes is often better: its SURE thresholds adapt per tile)
    assert psnr(cube, tiled) > psnr(cube, whole) - tolerance
    assert psnr(cube, tiled) > psnr(cube, noisy) + 6
    # no seam: the error on the columns where tiles meet is not above the average error
    err = (tiled - cube).pow(2).mean((0, 2)).sqrt()
    borders = [s for s in tile_starts(72, 32, 8)[1:]] + [
        s + 32 for s in tile_starts(72, 32, 8)[:-1]
    ]
    assert float(err[borders].mean()) < 1.3 * float(err.mean())


def test_stream_from_hdf5_to_npy_with_bounded_memory(tmp_path, scene):
    _, noisy = scene
    big = torch.cat([noisy] * 6, dim=0)  # 480 x 72 x 16 float64, 4.4 MB
    with h5py.File(tmp_path / "in.h5", "w") as f:
        f.create_dataset("radiance", data=big.numpy(), chunks=(16, 16, 16))
    method = hyde.SubspaceProjection()
    stats = method.tile_statistics(sample_cube(big, 24, 4))
    tracemalloc.start()
    result = tiled_denoise(
        method, tmp_path / "in.h5", out=tmp_path / "out.npy", tile=24, overlap=4, stats=stats
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result is None
    out = np.load(tmp_path / "out.npy")
    np.testing.assert_allclose(out, method(big, stats).numpy(), atol=1e-12)
    strip = 24 * 72 * 16 * 8  # one strip of tile rows in float64
    assert peak < 4 * strip < 0.25 * big.numel() * 8  # a few strips, not the cube
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.h5", "out.npy"]


def test_hdf5_output_single_process(tmp_path, scene):
    _, noisy = scene
    method = hyde.SubspaceProjection()
    tiled_denoise(method, noisy, out=tmp_path / "o.h5", tile=40, overlap=8)
    expected = tiled_denoise(method, noisy, tile=40, overlap=8)
    np.testing.assert_allclose(hyde.load_cube(tmp_path / "o.h5", dtype=torch.float64), expected)


def test_bad_arguments(scene):
    _, noisy = scene
    method = hyde.HyRes()
    with pytest.raises(ValueError, match="overlap"):
        tiled_denoise(method, noisy, tile=16, overlap=16)
    with pytest.raises(ValueError, match="out"):
        tiled_denoise(method, noisy, out="x.txt")
    with pytest.raises(TypeError, match="source"):
        tiled_denoise(method, [1, 2, 3])


@pytest.mark.mpi
def test_mpi_tiled_equals_single_process(comm):
    cube = hyde.make_cube(56, 40, 12, endmembers=3, seed=9, dtype=torch.float64)
    noisy = nm.add_gaussian(cube, 0.05, seed=10)
    folder = comm.bcast_obj(tempfile.mkdtemp() if comm.rank == 0 else None)
    source = Path(folder) / "in.h5"
    if comm.rank == 0:
        with h5py.File(source, "w") as f:
            f.create_dataset("cube", data=noisy.numpy())
    comm.barrier()
    method = hyde.HyRes()
    tiled_denoise(method, source, out=Path(folder) / "out.npy", tile=16, overlap=4, comm=comm)
    with hc.traffic() as traffic:
        in_memory = tiled_denoise(method, source, tile=16, overlap=4, comm=comm)
    # each rank sends its own rows once and receives the cube once (no full-cube reduction)
    cube_bytes = in_memory.numel() * in_memory.element_size()
    if comm.size > 1:
        assert traffic.bytes_received.get("allreduce", 0) == 0
        assert traffic.bytes_received["allgatherv"] == cube_bytes
        assert traffic.total_bytes_sent < cube_bytes
    single = comm.split(comm.rank, 0)
    reference = tiled_denoise(method, noisy, tile=16, overlap=4, comm=single)
    result = np.load(Path(folder) / "out.npy")
    np.testing.assert_allclose(result, reference.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(in_memory.numpy(), reference.numpy(), rtol=0, atol=1e-12)
    assert psnr(cube, reference) > psnr(cube, noisy) + 6
    comm.barrier()
    if comm.rank == 0:
        for p in Path(folder).iterdir():
            p.unlink()
        Path(folder).rmdir()


@pytest.mark.mpi
def test_mpi_more_ranks_than_tile_rows(comm):
    # 20 rows with 16-row tiles: two tile rows, so at 3 ranks one rank owns no rows
    cube = hyde.make_cube(20, 24, 10, endmembers=3, seed=11, dtype=torch.float64)
    noisy = nm.add_noniid(cube, high=0.1, low=0.02, seed=12)
    method = hyde.FastHyDe(iid=False, search_radius=2)
    result = tiled_denoise(method, noisy, tile=16, overlap=4, comm=comm)
    reference = tiled_denoise(method, noisy, tile=16, overlap=4, comm=comm.split(comm.rank, 0))
    torch.testing.assert_close(result, reference, rtol=0, atol=1e-12)
    assert psnr(cube, result) > psnr(cube, noisy) + 3
