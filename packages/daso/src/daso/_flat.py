"""Which parameters a data-parallel wrapper synchronises (flat packing is hpc_comm.flat)."""

from __future__ import annotations

import torch


def trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]
