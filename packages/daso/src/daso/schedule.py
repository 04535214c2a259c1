"""DASO's schedule without any communication: epoch phases, the plateau rule, per-batch plans."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# global_skip / local_skip / batches_to_wait when the cycling phase begins (after warm-up)
FIRST_CYCLE = (4, 1, 1)


class PlateauDetector:
    """Says "plateau" when the loss has not improved by more than ``threshold`` (relative to the
    best value so far) for more than ``patience`` consecutive epochs; the count then restarts."""

    def __init__(self, patience: int = 2, threshold: float = 0.05):
        self.patience = patience
        self.threshold = threshold
        self.best = math.inf
        self.bad_epochs = 0

    def improved(self, value: float) -> bool:
        """Whether ``value`` beats the best loss so far by more than ``threshold`` (relative);
        always True before the first value."""
        if self.best == math.inf:
            return True
        scale = 1.0 - self.threshold if self.best >= 0 else 1.0 + self.threshold
        return value < self.best * scale

    def update(self, value: float) -> bool:
        """Feed one epoch's loss; True when a plateau is detected."""
        if self.improved(value):
            self.best = value
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.bad_epochs = 0
            return True
        return False

    def state_dict(self) -> dict:
        """The best loss so far and the count of epochs without improvement."""
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned."""
        self.best = float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])


@dataclass
class SkipSchedule:
    """The epoch-level state of DASO: how often to sync globally, locally, and how long to wait.

    ``global_skip == 0`` means a blocking global average after every batch (warm-up, cool-down).
    ``epoch`` counts finished epochs; ``end_epoch(loss)`` sets the values for the next one.
    """

    total_epochs: int
    warmup_epochs: int = 4
    cooldown_epochs: int = 4
    max_global_skips: int = 8
    stability_level: float = 0.05
    skip_reduction_factor: int = 2
    local_skip_factor: int = 4
    epoch: int = 0
    global_skip: int = 0
    local_skip: int = 0
    batches_to_wait: int = 0
    detector: PlateauDetector = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.detector is None:
            self.detector = PlateauDetector(patience=2, threshold=self.stability_level)
        if self.warmup_epochs == 0 and self.epoch == 0 and not self.in_cooldown(0):
            self._start_cycling()

    @property
    def blocking(self) -> bool:
        """True when every batch ends with a blocking global sync (``global_skip == 0``)."""
        return self.global_skip == 0

    def in_cooldown(self, epoch: int) -> bool:
        """Whether the epoch with 0-based index ``epoch`` is one of the last ``cooldown_epochs``."""
        return epoch >= self.total_epochs - self.cooldown_epochs

    def _start_cycling(self) -> None:
        gs, ls, btw = FIRST_CYCLE
        self.global_skip = min(gs, self.max_global_skips)
        self.local_skip, self.batches_to_wait = ls, btw

    def end_epoch(self, loss: float) -> bool:
        """Count a finished epoch with its (globally averaged) loss; set the next epoch's skips.
        Returns whether the plateau rule fired."""
        self.epoch += 1
        e = self.epoch
        if e < self.warmup_epochs:
            self.global_skip = self.local_skip = self.batches_to_wait = 0
            return False
        if e == self.warmup_epochs:
            self._start_cycling()
        if self.in_cooldown(e):
            self.global_skip = self.local_skip = self.batches_to_wait = 0
            return False
        plateau = self.detector.update(float(loss))
        if plateau and self.global_skip > 1:
            self.global_skip //= self.skip_reduction_factor
            self.local_skip //= self.skip_reduction_factor
            self.batches_to_wait -= 1
            if self.global_skip > 0:
                self.batches_to_wait = max(self.batches_to_wait, 1)
                self.local_skip = max(self.local_skip, 1)
        elif plateau and self.global_skip == 1:
            self.global_skip = self.max_global_skips
            reset = max(self.max_global_skips // self.local_skip_factor, 1)
            self.local_skip = self.batches_to_wait = reset
        return plateau

    def state_dict(self) -> dict:
        """The epoch counter, the current skips and the plateau detector's state."""
        return {
            "epoch": self.epoch,
            "global_skip": self.global_skip,
            "local_skip": self.local_skip,
            "batches_to_wait": self.batches_to_wait,
            "detector": self.detector.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned."""
        for key in ("epoch", "global_skip", "local_skip", "batches_to_wait"):
            setattr(self, key, int(state[key]))
        self.detector.load_state_dict(state["detector"])


@dataclass(frozen=True)
class BatchPlan:
    """What DASO does after the local optimiser step of one batch.

    ``local_sync``: average gradients inside the node before the step. ``receive``: merge every
    pending global sync (in order of sending). ``send``: None, ``"blocking"`` (global average,
    waited for at once) or ``"async"`` (started now, merged at batch ``due``).
    """

    local_sync: bool
    receive: tuple[int, ...]
    send: str | None
    due: int | None = None


def plan_batch(
    batch: int,
    last_batch: int,
    global_skip: int,
    local_skip: int,
    batches_to_wait: int,
    pending_due: tuple[int, ...] = (),
) -> BatchPlan:
    """The plan for ``batch`` (0-based) of an epoch whose final batch is ``last_batch``.

    ``pending_due`` holds the due batch of every asynchronous sync in flight. A sync started at
    batch b waits min(batches_to_wait, last_batch - b) batches, so it is always received within the
    epoch; the last batch receives whatever is left and then syncs blocking.
    """
    is_last = batch == last_batch
    local_sync = local_skip <= 1 or batch % local_skip == 0 or is_last
    receive = tuple(i for i, due in enumerate(pending_due) if is_last or due <= batch)
    if global_skip == 0 or is_last:
        return BatchPlan(local_sync, receive, "blocking")
    if batch % global_skip != 0:
        return BatchPlan(local_sync, receive, None)
    wait = min(batches_to_wait, last_batch - batch)
    if wait == 0:
        return BatchPlan(local_sync, receive, "blocking")
    return BatchPlan(local_sync, receive, "async", batch + wait)
