"""hyde: hyperspectral image denoising with classical low-rank, wavelet and subspace methods.

A denoiser is configured in ``__init__`` and called on a cube (rows x cols x bands torch tensor)::

    import hyde
    clean = hyde.HyRes()(noisy)
    clean = hyde.denoise(noisy, method="fasthyde", iid=False)
"""

from importlib import import_module as _import_module
from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("hyde")
except _metadata.PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0.0.0+unknown"

# Submodules and names are loaded on first use, so that `import hyde` (and `hyde --help`) does
# not pay for importing torch, scipy and scikit-image.
_SUBMODULES = {
    "data",
    "estimation",
    "methods",
    "metrics",
    "noise_models",
    "spatial",
    "thresholding",
    "tiled",
    "wavelets",
}
_NAMES = {
    "load_cube": "data",
    "make_cube": "data",
    "save_cube": "data",
    "Subspace": "estimation",
    "estimate_noise": "estimation",
    "hysime": "estimation",
    "METHODS": "methods",
    "Denoiser": "methods",
    "FastHyDe": "methods",
    "HyMiNoR": "methods",
    "HyRes": "methods",
    "L1HyMixDe": "methods",
    "SubspaceProjection": "methods",
    "OTVCA": "methods",
    "LRMR": "methods",
    "NAILRMA": "methods",
    "FORPDN": "methods",
    "WSRRR": "methods",
    "ergas": "metrics",
    "evaluate": "metrics",
    "psnr": "metrics",
    "sam": "metrics",
    "ssim": "metrics",
    "NOISE_MODELS": "noise_models",
    "add_noise": "noise_models",
    "tiled_denoise": "tiled",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return _import_module(f"{__name__}.{name}")
    if name in _NAMES:
        return getattr(_import_module(f"{__name__}.{_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _SUBMODULES | set(_NAMES))


def list_methods() -> list[str]:
    """Names accepted by `denoise` (and ``hyde denoise --method``)."""
    return sorted(_import_module(f"{__name__}.methods").METHODS)


def denoise(cube, method: str = "hyres", **params):
    """Denoise ``cube`` (rows x cols x bands) with the method named ``method`` and its ``params``."""
    return _import_module(f"{__name__}.methods").get(method, **params)(cube)


__all__ = [
    "FORPDN",
    "LRMR",
    "METHODS",
    "NAILRMA",
    "NOISE_MODELS",
    "OTVCA",
    "WSRRR",
    "Denoiser",
    "FastHyDe",
    "HyMiNoR",
    "HyRes",
    "L1HyMixDe",
    "Subspace",
    "SubspaceProjection",
    "__version__",
    "add_noise",
    "data",
    "denoise",
    "ergas",
    "estimate_noise",
    "estimation",
    "evaluate",
    "hysime",
    "list_methods",
    "load_cube",
    "make_cube",
    "methods",
    "metrics",
    "noise_models",
    "psnr",
    "sam",
    "save_cube",
    "spatial",
    "ssim",
    "thresholding",
    "tiled",
    "tiled_denoise",
    "wavelets",
]
