"""How well k tangents approximate a gradient: Monte-Carlo cosine and norm ratio vs closed forms."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from .aggregation import AGGREGATIONS, aggregate, check_aggregation, chi_mean
from .tangents import SAMPLERS, check_sampler

_BATCH_ELEMENTS = 2**22  # tangent entries generated at once (32 MiB in float64)


@dataclass
class ApproxRow:
    """One (n, k, aggregation) cell: observed mean/sd of cos(estimate, g) and ||estimate||/||g||,
    and the closed-form expectations where they are exact (None where they are not)."""

    n: int
    k: int
    aggregation: str
    tangents: str
    draws: int
    cos_mean: float
    cos_sd: float
    cos_expected: float | None
    norm_ratio_mean: float
    norm_ratio_expected: float | None

    def as_dict(self) -> dict:
        """All fields as a plain dict (one row of the results table)."""
        return asdict(self)


def sqrt_beta_mean(a: float, b: float) -> float:
    """E[sqrt(X)] for X ~ Beta(a, b), i.e. B(a + 1/2, b) / B(a, b)."""

    def log_beta(p: float, q: float) -> float:
        return math.lgamma(p) + math.lgamma(q) - math.lgamma(p + q)

    return math.exp(log_beta(a + 0.5, b) - log_beta(a, b))


def expected_cosine(aggregation: str, tangents: str, n: int, k: int) -> float | None:
    """E cos(estimate, g) in closed form, for isotropic tangents.

    Projection (and any aggregation of orthonormal tangents, which is the projection up to a
    factor): cos^2 ~ Beta(k/2, (n-k)/2), so E cos = E[chi_k] / E[chi_n]; 1 once k >= n.
    Mean or sum of Gaussian tangents: cos^2 ~ Beta(k/2, (n-1)/2). Rademacher: no closed form.
    """
    if aggregation in ("projection",) or tangents == "orthonormal":
        if tangents == "rademacher":
            return None
        return 1.0 if k >= n else chi_mean(k) / chi_mean(n)
    if tangents != "normal":
        return None
    return sqrt_beta_mean(k / 2, (n - 1) / 2)


def expected_norm_ratio(aggregation: str, tangents: str, n: int, k: int) -> float | None:
    """E ||estimate|| / ||g|| where it is known exactly (unscaled estimates).

    The projection's residual is orthogonal to it, so ||P g|| / ||g|| = cos. For the mean only
    the root mean square is closed-form (sqrt((n+k+1)/k)), so None is returned for it.
    """
    if aggregation == "projection" or tangents == "orthonormal":
        cos = expected_cosine("projection", tangents, n, k)
        if cos is None or aggregation == "projection":
            return cos
        return cos / min(k, n) if aggregation == "mean" else cos
    return None


def sample_tangents(
    draws: int, n: int, k: int, tangents: str, generator: torch.Generator
) -> torch.Tensor:
    """``draws`` independent n x k tangent matrices (float64); orthonormal ones by QR."""
    if tangents == "rademacher":
        v = torch.randint(0, 2, (draws, n, k), generator=generator).double().mul_(2).sub_(1)
        return v
    v = torch.randn(draws, n, k, generator=generator, dtype=torch.float64)
    if tangents == "orthonormal" and k <= n:
        v = torch.linalg.qr(v).Q
    return v


def approximation_table(
    ns: Sequence[int] = (64, 256, 1024),
    ks: Sequence[int] = (1, 4, 16, 64),
    aggregations: Sequence[str] = ("mean", "projection"),
    tangents: str = "normal",
    draws: int = 200,
    seed: int = 0,
) -> list[ApproxRow]:
    """Cosine similarity and norm ratio of each aggregation over ``draws`` random gradients g and
    tangent sets, for every n in ``ns`` and k in ``ks``. The same tangents serve every
    aggregation, so the columns compare like with like."""
    _check_sizes("ns", ns)
    _check_sizes("ks", ks)
    _check_sizes("draws", [draws])
    if not aggregations:
        raise ValueError(f"aggregations must name some of {', '.join(AGGREGATIONS)}")
    for aggregation in aggregations:
        check_aggregation(aggregation)
        if aggregation == "single" and any(k != 1 for k in ks):
            raise ValueError("aggregation 'single' needs ks = [1]; use 'mean' for k > 1")
    check_sampler(tangents)
    if not isinstance(tangents, str):
        raise TypeError(f"tangents must name one of {', '.join(SAMPLERS)}")
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for n in ns:
        for k in ks:
            cos = {a: [] for a in aggregations}
            ratio = {a: [] for a in aggregations}
            batch = max(1, _BATCH_ELEMENTS // (n * k))
            for start in range(0, draws, batch):
                count = min(batch, draws - start)
                g = torch.randn(count, n, generator=gen, dtype=torch.float64)
                v = sample_tangents(count, n, k, tangents, gen)
                d = (v.transpose(1, 2) @ g.unsqueeze(-1)).squeeze(-1)
                for a in aggregations:
                    est = aggregate(v, d, a, kind=tangents)
                    norm = est.norm(dim=1)
                    cos[a].append((est * g).sum(1) / (norm * g.norm(dim=1)))
                    ratio[a].append(norm / g.norm(dim=1))
            for a in aggregations:
                c, r = torch.cat(cos[a]), torch.cat(ratio[a])
                rows.append(
                    ApproxRow(
                        n=n,
                        k=k,
                        aggregation=a,
                        tangents=tangents,
                        draws=draws,
                        cos_mean=float(c.mean()),
                        cos_sd=float(c.std()) if draws > 1 else 0.0,
                        cos_expected=expected_cosine(a, tangents, n, k),
                        norm_ratio_mean=float(r.mean()),
                        norm_ratio_expected=expected_norm_ratio(a, tangents, n, k),
                    )
                )
    return rows


def _check_sizes(name: str, values: Sequence[int]) -> None:
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise ValueError(f"{name} must be positive ints, got {list(values)!r}")
