"""Test cubes from linear mixing of smooth spectra, and loaders for .mat, .npy, .h5 and ENVI files."""

from __future__ import annotations

import functools
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import torch

from ._checks import positive

SAMPLE_IMAGES = (
    "camera",
    "moon",
    "coins",
    "text",
    "page",
    "brick",
    "grass",
    "gravel",
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "horse",
)


def smooth_spectra(count: int, bands: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` smooth spectra (count x bands): a slope plus three Gaussian bumps, in [0.05, 0.95]."""
    grid = np.linspace(0.0, 1.0, bands)
    spectra = np.empty((count, bands))
    for i in range(count):
        curve = rng.uniform(-0.5, 0.5) * grid
        for _ in range(3):
            center, width, height = rng.uniform(0, 1), rng.uniform(0.05, 0.25), rng.uniform(-1, 1)
            curve = curve + height * np.exp(-0.5 * ((grid - center) / width) ** 2)
        curve = (curve - curve.min()) / max(curve.max() - curve.min(), 1e-12)
        spectra[i] = 0.05 + 0.9 * curve
    return spectra


@functools.lru_cache(maxsize=len(SAMPLE_IMAGES))
def _gray_sample(name: str) -> np.ndarray:
    """One of scikit-image's bundled photographs as a read-only float64 grey image (cached)."""
    from skimage import color, data

    image = getattr(data, name)()
    if image.ndim == 3:
        image = color.rgb2gray(image[..., :3])
    image = image.astype(np.float64)
    image.flags.writeable = False
    return image


def abundance_maps(
    rows: int, cols: int, count: int, rng: np.random.Generator, sharpness: float = 4.0
) -> np.ndarray:
    """Non-negative, sum-to-one maps (rows x cols x count) made from scikit-image's bundled images."""
    from skimage import filters, transform

    names = rng.choice(SAMPLE_IMAGES, size=count, replace=count > len(SAMPLE_IMAGES))
    logits = np.empty((rows, cols, count))
    for i, name in enumerate(names):
        image = _gray_sample(str(name))
        h, w = image.shape
        crop = int(min(h, w) * rng.uniform(0.5, 1.0))
        top, left = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
        patch = transform.resize(
            image[top : top + crop, left : left + crop], (rows, cols), anti_aliasing=True
        )
        patch = filters.gaussian(patch, sigma=1.0)
        patch = (patch - patch.mean()) / (patch.std() + 1e-12)
        logits[..., i] = sharpness * patch * rng.choice([-1.0, 1.0])
    logits -= logits.max(-1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(-1, keepdims=True)


def make_cube(
    rows: int = 64,
    cols: int = 64,
    bands: int = 32,
    endmembers: int = 5,
    seed: int = 0,
    dtype=torch.float32,
    return_parts: bool = False,
):
    """A clean hyperspectral cube (rows x cols x bands) in [0, 1] of rank ``endmembers``.

    Each pixel mixes ``endmembers`` smooth spectra with abundances built from scikit-image's
    bundled photographs, so the abundance maps have real edges and texture. With
    ``return_parts`` also returns (abundances, spectra).
    """
    for name, value in (
        ("rows", rows),
        ("cols", cols),
        ("bands", bands),
        ("endmembers", endmembers),
    ):
        positive(value, name, integer=True)
    if endmembers > bands:
        raise ValueError(f"endmembers must be <= bands ({bands}), got {endmembers}")
    rng = np.random.default_rng(seed)
    spectra = smooth_spectra(endmembers, bands, rng)
    abundances = abundance_maps(rows, cols, endmembers, rng)
    cube = torch.from_numpy(abundances @ spectra).to(dtype)
    if return_parts:
        return cube, torch.from_numpy(abundances), torch.from_numpy(spectra)
    return cube


# ---- loaders ---------------------------------------------------------------------------------


def _only_array(mapping: dict, key: str | None, path) -> np.ndarray:
    arrays = {k: v for k, v in mapping.items() if not k.startswith("__")}
    if key is not None:
        if key not in arrays:
            raise ValueError(f"key {key!r} not in {path}; it holds {sorted(arrays)}")
        return np.asarray(arrays[key])
    cubes = {k: v for k, v in arrays.items() if np.ndim(v) == 3}
    if len(cubes) != 1:
        raise ValueError(
            f"{path} holds {sorted(cubes) or 'no'} 3-D arrays; pass key= to choose one"
        )
    return np.asarray(next(iter(cubes.values())))


def _h5_datasets(handle) -> dict:
    found = {}
    handle.visititems(
        lambda name, obj: found.setdefault(name, obj) if hasattr(obj, "shape") else None
    )
    return found


def _load_h5(path, key, matlab: bool) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as handle:
        datasets = {k: v for k, v in _h5_datasets(handle).items() if not k.startswith("#")}
        if key is None:
            cubes = [k for k, v in datasets.items() if len(v.shape) == 3]
            if len(cubes) != 1:
                raise ValueError(
                    f"{path} holds {cubes or 'no'} 3-D datasets; pass key= to choose one"
                )
            key = cubes[0]
        if key not in datasets:
            raise ValueError(f"key {key!r} not in {path}; it holds {sorted(datasets)}")
        array = datasets[key][()]
    # MATLAB v7.3 stores column-major arrays, so h5py sees the axes reversed.
    return array.transpose(2, 1, 0) if matlab else array


_ENVI_TYPES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8", 15: "u8"}


def read_envi_header(path) -> dict:
    """Parse an ENVI ``.hdr`` file into a dict of lower-case keys (braced values kept as strings)."""
    text = Path(path).read_text()
    if not text.lstrip().upper().startswith("ENVI"):
        raise ValueError(f"{path} is not an ENVI header (it must start with 'ENVI')")
    header = {}
    for match in re.finditer(r"^\s*([^=\n]+?)\s*=\s*(\{[^}]*\}|[^\n]*)", text, flags=re.M):
        header[match.group(1).strip().lower()] = match.group(2).strip().strip("{}").strip()
    return header


def load_envi(header_path, data_path=None) -> np.ndarray:
    """Read an ENVI cube (header + raw binary, BSQ/BIL/BIP) as rows x cols x bands."""
    header = read_envi_header(header_path)
    rows, cols, bands = (int(header[k]) for k in ("lines", "samples", "bands"))
    code = int(header.get("data type", 4))
    if code not in _ENVI_TYPES:
        raise ValueError(f"unsupported ENVI data type {code}")
    order = ">" if int(header.get("byte order", 0)) == 1 else "<"
    if data_path is None:
        stem = Path(header_path).with_suffix("")
        candidates = [stem] + [
            stem.with_suffix(s) for s in (".img", ".raw", ".dat", ".bsq", ".bil", ".bip")
        ]
        data_path = next((c for c in candidates if c.is_file()), None)
        if data_path is None:
            raise ValueError(f"no ENVI data file next to {header_path}")
    raw = np.fromfile(
        data_path, dtype=order + _ENVI_TYPES[code], offset=int(header.get("header offset", 0))
    )
    interleave = header.get("interleave", "bsq").lower()
    shapes = {
        "bsq": ((bands, rows, cols), (1, 2, 0)),
        "bil": ((rows, bands, cols), (0, 2, 1)),
        "bip": ((rows, cols, bands), (0, 1, 2)),
    }
    if interleave not in shapes:
        raise ValueError(f"unsupported ENVI interleave {interleave!r}")
    shape, axes = shapes[interleave]
    return raw[: rows * cols * bands].reshape(shape).transpose(axes)


def load_cube(path, key: str | None = None, dtype=torch.float32) -> torch.Tensor:
    """Load a cube (rows x cols x bands) from .npy, .mat (v5 or v7.3), .h5/.hdf5 or ENVI .hdr."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} is not a file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        array = np.load(path)
    elif suffix == ".mat":
        import h5py
        import scipy.io

        if h5py.is_hdf5(path):  # MATLAB v7.3 files are HDF5 (after a 512-byte user block)
            array = _load_h5(path, key, matlab=True)
        else:
            array = _only_array(scipy.io.loadmat(path), key, path)
    elif suffix in (".h5", ".hdf5", ".he5"):
        array = _load_h5(path, key, matlab=False)
    elif suffix == ".hdr":
        array = load_envi(path)
    else:
        raise ValueError(f"path must end in .npy, .mat, .h5, .hdf5 or .hdr, got {path.name!r}")
    if array.ndim != 3:
        raise ValueError(
            f"{path} holds an array of shape {array.shape}; expected rows x cols x bands"
        )
    return torch.from_numpy(np.ascontiguousarray(array)).to(dtype)


def save_cube(path, cube: torch.Tensor, key: str = "cube") -> None:
    """Write ``cube`` atomically to .npy, .mat (v5) or .h5 (dataset ``key``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".mat", ".h5", ".hdf5"):
        raise ValueError(f"path must end in .npy, .mat, .h5 or .hdf5, got {path.name!r}")
    array = cube.detach().cpu().numpy()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        if suffix == ".npy":
            with open(tmp, "wb") as handle:
                np.save(handle, array)
        elif suffix == ".mat":
            import scipy.io

            scipy.io.savemat(tmp, {key: array})
        else:
            import h5py

            with h5py.File(tmp, "w") as handle:
                handle.create_dataset(key, data=array)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
