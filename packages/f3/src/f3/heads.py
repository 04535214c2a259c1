"""Output heads (sigmoid + BCE, softmax + CE, linear + MSE) and the error signals F³ stores."""

from __future__ import annotations

import torch
import torch.nn.functional as F

HEADS = ("bce", "ce", "mse")
ERROR_VARIANTS = (
    "delayed_error",
    "delayed_loss",
    "delayed_error_one_hot",
    "delayed_loss_one_hot",
    "delayed_error_softmax",
    "delayed_loss_softmax",
)
_EPS = 1e-7


def check_head(head: str) -> str:
    """Return ``head`` if it is one of HEADS (bce, ce, mse); raise ValueError otherwise."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    return head


def check_error_variant(variant: str, head: str) -> str:
    """Return ``variant`` if it is one of ERROR_VARIANTS and fits ``head``; raise ValueError
    otherwise (the ``mse`` head takes only ``delayed_error`` and ``delayed_loss``)."""
    if variant not in ERROR_VARIANTS:
        raise ValueError(f"error must be one of {ERROR_VARIANTS}, got {variant!r}")
    if head == "mse" and not variant.endswith(("error", "loss")):
        raise ValueError(f"error {variant!r} needs a classification head, not 'mse'")
    return variant


def predict(head: str, logits: torch.Tensor) -> torch.Tensor:
    """The network's prediction ŷ from the last block's output z."""
    if head == "bce":
        return torch.sigmoid(logits)
    if head == "ce":
        return torch.softmax(logits, dim=1)
    return logits


def loss(head: str, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample loss summed over the outputs, averaged over the batch.

    With this scaling y* − ŷ is exactly −∂loss_j/∂z_j for every head (MSE carries the ½).
    """
    n = logits.shape[0]
    if head == "bce":
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / n
    if head == "ce":
        return -(targets * torch.log_softmax(logits, dim=1)).sum() / n
    return 0.5 * ((logits - targets) ** 2).sum() / n


def _negative_loss_gradient(head: str, prediction: torch.Tensor, targets: torch.Tensor):
    """−∂loss_j/∂ŷ_j for one sample's loss (summed over outputs)."""
    if head == "bce":
        p = prediction.clamp(_EPS, 1 - _EPS)
        return (targets - p) / (p * (1 - p))
    if head == "ce":
        return targets / prediction.clamp_min(_EPS)
    return targets - prediction


def error_signal(
    variant: str, head: str, logits: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """The error e (n × C) of ``variant`` for this pass; larger entries point towards y*.

    ``*_error``: y* − ŷ. ``*_loss``: −∂loss_j/∂ŷ_j. ``*_one_hot``: y* ⊙ e (only the true class,
    a per-sample scale of the DRTP target). ``*_softmax``: softmax over the classes of the error.
    """
    prediction = predict(head, logits.detach())
    if variant.startswith("delayed_loss"):
        error = _negative_loss_gradient(head, prediction, targets)
    else:
        error = targets - prediction
    if variant.endswith("one_hot"):
        error = targets * error
    elif variant.endswith("softmax"):
        error = torch.softmax(error, dim=1)
    return error


def target_matrix(head: str, targets: torch.Tensor, num_outputs: int) -> torch.Tensor:
    """Class indices → one-hot rows (classification); values → n × C rows (regression)."""
    if head == "mse":
        if not torch.is_floating_point(targets):
            raise TypeError(f"regression targets must be floating point, got {targets.dtype}")
        matrix = targets.reshape(targets.shape[0], -1)
        if matrix.shape[1] != num_outputs:
            raise ValueError(f"targets must have {num_outputs} columns, got {matrix.shape[1]}")
        return matrix
    if torch.is_floating_point(targets) or targets.ndim != 1:
        raise TypeError("classification targets must be a 1-D integer tensor of class indices")
    if targets.numel() and (targets.min() < 0 or targets.max() >= num_outputs):
        bad = targets.min() if targets.min() < 0 else targets.max()
        raise ValueError(f"class indices must lie in [0, {num_outputs}), got {int(bad)}")
    return F.one_hot(targets.long(), num_outputs).float()


def metrics(head: str, logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """Loss and accuracy (classification) or mean squared error (regression)."""
    result = {"loss": float(loss(head, logits, targets))}
    if head == "mse":
        result["mse"] = float(((logits - targets) ** 2).mean())
    else:
        result["accuracy"] = float((logits.argmax(1) == targets.argmax(1)).double().mean())
    return result
