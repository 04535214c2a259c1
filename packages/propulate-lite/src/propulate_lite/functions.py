"""The 14 benchmark functions with their limits, default dimensions and known global minima."""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BenchmarkFunction:
    """A test function: ``loss(params)``, its ``limits`` dict, the minimum and one minimiser."""

    name: str
    loss: Callable[[Mapping[str, float]], float]
    limits: dict[str, tuple[float, float]]
    optimum: float
    argmin: tuple[float, ...]


def _x(params: Mapping[str, float]) -> np.ndarray:
    return np.fromiter(params.values(), dtype=np.float64)


def sphere(p):
    """Sphere: Σ xᵢ² over the values x of ``p`` (minimum 0 at the origin)."""
    return float(np.sum(_x(p) ** 2))


def rosenbrock(p):
    """Rosenbrock: Σ 100 (xᵢ₊₁ − xᵢ²)² + (1 − xᵢ)² over the values x of ``p`` (minimum 0 at
    (1, …, 1))."""
    x = _x(p)
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def step(p):
    """Step: Σ trunc(xᵢ) over the values x of ``p`` (minimum −5 per dimension within the
    default limits, wherever every xᵢ ≤ −5)."""
    return float(np.sum(np.trunc(_x(p))))


def quartic(p):
    """Σ i·xᵢ⁴ plus Gaussian noise, made reproducible by seeding the noise with the point."""
    x = _x(p)
    noise = np.random.default_rng(zlib.crc32(x.tobytes())).standard_normal(x.size)
    return float(abs(np.sum(np.arange(1, x.size + 1) * x**4 + noise)))


def rastrigin(p):
    """Rastrigin: 10 d + Σ (xᵢ² − 10 cos 2πxᵢ) over the d values x of ``p`` (minimum 0 at the
    origin)."""
    x = _x(p)
    return float(10.0 * x.size + np.sum(x**2 - 10.0 * np.cos(2.0 * np.pi * x)))


def griewank(p):
    """Griewank: 1 + Σ xᵢ²/4000 − Π cos(xᵢ/√i), i = 1 … d, over the values x of ``p`` (minimum
    0 at the origin)."""
    x = _x(p)
    i = np.arange(1, x.size + 1)
    return float(1.0 + np.sum(x**2) / 4000.0 - np.prod(np.cos(x / np.sqrt(i))))


def schwefel(p):
    """Schwefel: 418.9829 d − Σ xᵢ sin √|xᵢ| over the d values x of ``p`` (minimum ≈ 0 at
    xᵢ ≈ 420.9687)."""
    x = _x(p)
    return float(418.9828872724339 * x.size - np.sum(x * np.sin(np.sqrt(np.abs(x)))))


def _lunacek(x: np.ndarray) -> float:
    mu1, d = 2.5, 1.0
    s = 1.0 - 1.0 / (2.0 * math.sqrt(x.size + 20.0) - 8.2)
    mu2 = -math.sqrt((mu1**2 - d) / s)
    return float(min(np.sum((x - mu1) ** 2), d * x.size + s * np.sum((x - mu2) ** 2)))


def bisphere(p):
    """Lunacek's bi-sphere over the d values x of ``p``: min(Σ (xᵢ − 2.5)², d + s Σ (xᵢ − μ)²)
    with s = 1 − 1/(2√(d + 20) − 8.2) and μ = −√((2.5² − 1)/s) (minimum 0 at xᵢ = 2.5)."""
    return _lunacek(_x(p))


def birastrigin(p):
    """Lunacek's bi-Rastrigin: ``bisphere`` plus 10 Σ (1 − cos 2π(xᵢ − 2.5)) (minimum 0 at
    xᵢ = 2.5)."""
    x = _x(p)
    return _lunacek(x) + float(10.0 * np.sum(1.0 - np.cos(2.0 * np.pi * (x - 2.5))))


def bukin_n6(p):
    """Bukin N.6 of the two values (x₀, x₁) of ``p``: 100 √|x₁ − 0.01 x₀²| + 0.01 |x₀ + 10|
    (minimum 0 at (−10, 1))."""
    x0, x1 = _x(p)
    return float(100.0 * math.sqrt(abs(x1 - 0.01 * x0**2)) + 0.01 * abs(x0 + 10.0))


def egg_crate(p):
    """Egg crate of the two values (x₀, x₁) of ``p``: x₀² + x₁² + 25 (sin² x₀ + sin² x₁)
    (minimum 0 at the origin)."""
    x0, x1 = _x(p)
    return float(x0**2 + x1**2 + 25.0 * (math.sin(x0) ** 2 + math.sin(x1) ** 2))


def himmelblau(p):
    """Himmelblau of the two values (x₀, x₁) of ``p``: (x₀² + x₁ − 11)² + (x₀ + x₁² − 7)²
    (minimum 0 at four points, one of them (3, 2))."""
    x0, x1 = _x(p)
    return float((x0**2 + x1 - 11.0) ** 2 + (x0 + x1**2 - 7.0) ** 2)


def keane(p):
    """Keane of the two values (x₀, x₁) of ``p``: −sin²(x₀ − x₁) sin²(x₀ + x₁) / √(x₀² + x₁²),
    and 0 at the origin (minimum ≈ −0.6737 at (1.3932, 0) and (0, 1.3932))."""
    x0, x1 = _x(p)
    norm = math.hypot(x0, x1)
    if norm == 0.0:
        return 0.0
    return float(-(math.sin(x0 - x1) ** 2) * math.sin(x0 + x1) ** 2 / norm)


def leon(p):
    """Leon of the two values (x₀, x₁) of ``p``: 100 (x₁ − x₀³)² + (1 − x₀)² (minimum 0 at
    (1, 1))."""
    x0, x1 = _x(p)
    return float(100.0 * (x1 - x0**3) ** 2 + (1.0 - x0) ** 2)


# name: (function, per-dimension limits or one pair per dimension, default dim, optimum, argmin)
_TABLE = {
    "sphere": (sphere, (-5.12, 5.12), 2, 0.0, 0.0),
    "rosenbrock": (rosenbrock, (-2.048, 2.048), 2, 0.0, 1.0),
    "step": (step, (-5.12, 5.12), 5, None, -5.06),
    "quartic": (quartic, (-1.28, 1.28), 30, 0.0, 0.0),
    "rastrigin": (rastrigin, (-5.12, 5.12), 20, 0.0, 0.0),
    "griewank": (griewank, (-600.0, 600.0), 10, 0.0, 0.0),
    "schwefel": (schwefel, (-500.0, 500.0), 10, 0.0, 420.9687463),
    "bisphere": (bisphere, (-5.12, 5.12), 30, 0.0, 2.5),
    "birastrigin": (birastrigin, (-5.12, 5.12), 30, 0.0, 2.5),
    "bukin_n6": (bukin_n6, [(-15.0, -5.0), (-3.0, 3.0)], 2, 0.0, (-10.0, 1.0)),
    "egg_crate": (egg_crate, (-5.0, 5.0), 2, 0.0, 0.0),
    "himmelblau": (himmelblau, (-6.0, 6.0), 2, 0.0, (3.0, 2.0)),
    "keane": (keane, (0.0, 10.0), 2, -0.6736675211468548, (1.3932490753, 0.0)),
    "leon": (leon, (0.0, 10.0), 2, 0.0, 1.0),
}
FUNCTIONS = tuple(_TABLE)
_FIXED_DIM = {"bukin_n6", "egg_crate", "himmelblau", "keane", "leon"}


def get_function(name: str, dim: int | None = None) -> BenchmarkFunction:
    """The benchmark ``name`` (one of FUNCTIONS) in ``dim`` dimensions (default: the usual one).

    The quartic's optimum is the noise-free one (0); its value at 0 is |Σ noise|.
    """
    if name not in _TABLE:
        raise ValueError(f"name must be one of {', '.join(FUNCTIONS)}; got {name!r}")
    fn, bounds, default_dim, optimum, argmin = _TABLE[name]
    dim = default_dim if dim is None else dim
    least = 2 if name == "rosenbrock" else 1
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < least:
        raise ValueError(f"dim must be an int >= {least} for {name}, got {dim!r}")
    if name in _FIXED_DIM and dim != 2:
        raise ValueError(f"{name} is two-dimensional; got dim={dim}")
    per_dim = bounds if isinstance(bounds, list) else [bounds] * dim
    limits = {f"x{i}": (float(lo), float(hi)) for i, (lo, hi) in enumerate(per_dim)}
    point = argmin if isinstance(argmin, tuple) else (float(argmin),) * dim
    if optimum is None:  # step: -5 per dimension
        optimum = -5.0 * dim
    return BenchmarkFunction(name, fn, limits, float(optimum), tuple(point))
