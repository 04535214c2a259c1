"""Generated cubes and the file loaders (files written by the tests)."""

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from hyde.data import load_cube, load_envi, make_cube, save_cube


def test_make_cube_is_a_linear_mixture(small_cube):
    cube, abundances, spectra = small_cube
    assert cube.shape == (32, 32, 16)
    assert float(abundances.min()) >= 0
    torch.testing.assert_close(abundances.sum(-1), torch.ones(32, 32, dtype=torch.float64))
    torch.testing.assert_close(cube, abundances @ spectra)
    assert 0.0 <= float(cube.min()) and float(cube.max()) <= 1.0
    s = torch.linalg.svdvals(cube.reshape(-1, 16))
    assert float(s[3] / s[0]) > 1e-3 and float(s[4] / s[0]) < 1e-10  # rank 4
    # abundance maps carry spatial structure (neighbouring pixels correlate)
    a = abundances[..., 0].numpy()
    assert np.corrcoef(a[:, :-1].ravel(), a[:, 1:].ravel())[0, 1] > 0.5


def test_make_cube_reproducible_and_checked():
    a = make_cube(8, 9, 6, 3, seed=1)
    assert torch.equal(a, make_cube(8, 9, 6, 3, seed=1))
    assert a.dtype == torch.float32
    with pytest.raises(ValueError, match="endmembers"):
        make_cube(8, 8, 4, 5)
    with pytest.raises(TypeError, match="rows"):
        make_cube(8.0, 8, 4, 2)


@pytest.fixture
def array():
    return np.random.default_rng(0).random((5, 7, 4)).astype(np.float32)


@pytest.mark.parametrize("suffix", [".npy", ".mat", ".h5"])
def test_save_load_roundtrip(tmp_path, array, suffix):
    path = tmp_path / f"c{suffix}"
    save_cube(path, torch.from_numpy(array))
    np.testing.assert_array_equal(load_cube(path).numpy(), array)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left


def test_mat_v5_with_key(tmp_path, array):
    path = tmp_path / "two.mat"
    scipy.io.savemat(path, {"a": array, "b": array * 2, "meta": np.arange(3)})
    np.testing.assert_array_equal(load_cube(path, key="b").numpy(), array * 2)
    with pytest.raises(ValueError, match="key"):
        load_cube(path)


def test_mat_v73_hdf5_layout(tmp_path, array):
    # MATLAB v7.3 stores column-major: h5py sees (bands, cols, rows)
    path = tmp_path / "v73.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset("img", data=array.transpose(2, 1, 0))
    with open(path, "r+b") as f:  # the text header MATLAB writes into the user block
        f.write(
            b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5"
        )
    np.testing.assert_array_equal(load_cube(path).numpy(), array)


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
def test_envi(tmp_path, array, interleave):
    axes = {"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}[interleave]
    raw = np.ascontiguousarray(array.transpose(axes))
    (tmp_path / "c.img").write_bytes(raw.astype("<f4").tobytes())
    (tmp_path / "c.hdr").write_text(
        "ENVI\nsamples = 7\nlines = 5\nbands = 4\nheader offset = 0\n"
        f"data type = 4\ninterleave = {interleave}\nbyte order = 0\n"
        "wavelength = {400, 500,\n 600, 700}\n"
    )
    np.testing.assert_array_equal(load_cube(tmp_path / "c.hdr").numpy(), array)
    np.testing.assert_array_equal(load_envi(tmp_path / "c.hdr"), array)


def test_envi_big_endian_int16(tmp_path):
    data = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    (tmp_path / "x.raw").write_bytes(data.astype(">i2").tobytes())
    (tmp_path / "x.hdr").write_text(
        "ENVI\nsamples = 3\nlines = 2\nbands = 4\ndata type = 2\ninterleave = bip\nbyte order = 1\n"
    )
    np.testing.assert_array_equal(load_envi(tmp_path / "x.hdr"), data)


def test_loader_errors(tmp_path):
    with pytest.raises(ValueError, match="not a file"):
        load_cube(tmp_path / "missing.npy")
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(ValueError, match="must end in"):
        load_cube(tmp_path / "x.txt")
    np.save(tmp_path / "flat.npy", np.zeros((3, 3)))
    with pytest.raises(ValueError, match="rows x cols x bands"):
        load_cube(tmp_path / "flat.npy")
