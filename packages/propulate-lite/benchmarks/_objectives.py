"""The benchmark's loss functions in plain NumPy, shared by every optimiser's worker script."""

import time

import numpy as np

LIMITS = {
    "sphere": (-5.12, 5.12),
    "rosenbrock": (-2.048, 2.048),
    "rastrigin": (-5.12, 5.12),
}


def value(name: str, x: np.ndarray) -> float:
    if name == "sphere":
        return float(np.sum(x**2))
    if name == "rosenbrock":
        return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))
    return float(10.0 * x.size + np.sum(x**2 - 10.0 * np.cos(2.0 * np.pi * x)))


class Objective:
    """Calls the named function (optionally sleeping first) and accumulates its own run time."""

    def __init__(self, name: str, sleep_ms: float):
        self.name, self.sleep, self.seconds = name, sleep_ms / 1000.0, 0.0

    def __call__(self, x) -> float:
        start = time.perf_counter()
        if self.sleep:
            time.sleep(self.sleep)
        out = value(self.name, np.asarray(x, dtype=np.float64))
        self.seconds += time.perf_counter() - start
        return out
