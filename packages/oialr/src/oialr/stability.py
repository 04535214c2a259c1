"""Basis-stability analysis: how much the orthogonal polar factor Q = U Vᵀ of each weight moves."""

from __future__ import annotations

import torch
from torch import nn

from .layers import LowRankWeight, tall_shape

__all__ = ["BasisTracker", "mean_column_cosine", "polar_factor", "weight_matrices"]


def polar_factor(matrix: torch.Tensor) -> torch.Tensor:
    """Q = U Vᵀ of the tall-skinny orientation of ``matrix`` (unique; no SVD sign ambiguity)."""
    m = matrix.detach().to(torch.float64)
    if tall_shape(*m.shape)[2]:
        m = m.T
    u, _, vh = torch.linalg.svd(m, full_matrices=False)
    return u @ vh


def mean_column_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over columns j of cos(a[:, j], b[:, j])."""
    a_n = a / a.norm(dim=0, keepdim=True).clamp_min(1e-300)
    b_n = b / b.norm(dim=0, keepdim=True).clamp_min(1e-300)
    return float((a_n * b_n).sum(dim=0).mean())


def weight_matrices(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every Linear / Conv / attention weight of ``model`` as a 2-D matrix, dense or low rank.

    Names match those of the factorised model (``attn.in_proj``, ``attn.out_proj``), so a
    tracker can follow a weight across the conversion.
    """
    out: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        if isinstance(module, LowRankWeight):
            out[name] = module.matrix().detach()
        elif isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            out[name] = module.weight.detach().reshape(module.weight.shape[0], -1)
        elif isinstance(module, nn.MultiheadAttention):
            prefix = f"{name}." if name else ""
            if module._qkv_same_embed_dim:
                out[prefix + "in_proj"] = module.in_proj_weight.detach()
            else:
                for p in "qkv":
                    out[f"{prefix}{p}_proj"] = getattr(module, f"{p}_proj_weight").detach()
    return {k: v for k, v in out.items() if min(v.shape) >= 2}


class BasisTracker:
    """Snapshots of each weight's polar factor Q and of W itself, compared between snapshots.

    ``snapshot(step)`` records; ``stability()`` gives, per weight, the mean column cosine
    between consecutive snapshots for Q (``"basis"``) and for the tall W (``"weight"``).
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.steps: list[int] = []
        self._q: list[dict[str, torch.Tensor]] = []
        self._w: list[dict[str, torch.Tensor]] = []

    def snapshot(self, step: int) -> None:
        """Record, labelled ``step``, the polar factor Q and the tall-skinny W (float64) of every
        weight ``weight_matrices`` finds now."""
        mats = weight_matrices(self.model)
        self.steps.append(int(step))
        self._q.append({k: polar_factor(v) for k, v in mats.items()})
        self._w.append(
            {k: (v.T if tall_shape(*v.shape)[2] else v).to(torch.float64) for k, v in mats.items()}
        )

    def stability(self) -> dict[str, dict[str, list[float]]]:
        """{name: {"step": [...], "basis": [...], "weight": [...]}} for consecutive snapshots."""
        result: dict[str, dict[str, list[float]]] = {}
        for i in range(1, len(self.steps)):
            for name, q in self._q[i].items():
                prev_q = self._q[i - 1].get(name)
                if prev_q is None or prev_q.shape != q.shape:
                    continue
                entry = result.setdefault(name, {"step": [], "basis": [], "weight": []})
                entry["step"].append(self.steps[i])
                entry["basis"].append(mean_column_cosine(prev_q, q))
                entry["weight"].append(mean_column_cosine(self._w[i - 1][name], self._w[i][name]))
        return result
