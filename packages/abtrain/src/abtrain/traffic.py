"""Analytic traffic models: the bytes each rank hands to hpc-comm, predicted from shapes and ranks.

They count what ``hpc_comm.traffic()`` counts: the send buffer of every collective (an allreduce
of k float32 values counts 4k bytes; a broadcast counts only on its root), and nothing for a
communicator of one rank, where the trainers skip the call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .baselines import DataParallelTrainer, PowerSGDTrainer, powersgd_compressible
from .schedule import Schedule
from .trainer import ABTrainer

RANK_BYTES = 8  # the ranks are agreed as an int64 tensor


@dataclass(frozen=True)
class ABTrafficModel:
    """Bytes one rank sends under AB-training.

    ``layer_shapes`` are the (m, n) of the AB layers; ``always_numel`` the parameters synced
    every step (modules kept full rank); ``other_numel`` the remaining trainable parameters
    (biases, 1-D and unconverted ones); ``role`` a or b; ``group_size`` the size of this rank's
    group; ``broadcast_numel`` the parameters broadcast from rank 0 at the start.
    """

    world_size: int
    group_size: int
    role: str
    sync_mode: str
    train_comm: str
    schedule: Schedule
    layer_shapes: tuple[tuple[int, int], ...]
    always_numel: int
    other_numel: int
    broadcast_numel: int = 0
    itemsize: int = 4
    is_root: bool = True

    @classmethod
    def for_trainer(cls, trainer: ABTrainer) -> ABTrafficModel:
        """The model for the calling rank of ``trainer``: its communicator size, group, role,
        modes, schedule, layer shapes, parameter counts and dtype size."""
        layers = [layer for _, layer in trainer.layers]
        return cls(
            world_size=trainer.comm.size,
            group_size=trainer.group_size,
            role=trainer.role,
            sync_mode=trainer.sync_mode,
            train_comm=trainer.train_comm,
            schedule=trainer.schedule,
            layer_shapes=tuple(layer.matrix_shape for layer in layers),
            always_numel=sum(p.numel() for p in trainer.always_params if p.requires_grad),
            other_numel=sum(p.numel() for p in trainer.other_params),
            broadcast_numel=trainer.broadcast_numel,
            itemsize=layers[0].weight.element_size(),
            is_root=trainer.comm.rank == 0,
        )

    # bytes of one event ----------------------------------------------------
    def initial_bytes(self) -> int:
        """The broadcast of the model from rank 0 (sent by rank 0 only)."""
        if self.world_size == 1 or not self.is_root:
            return 0
        return self.itemsize * self.broadcast_numel

    def full_step_bytes(self) -> int:
        """A full-rank step: every trainable parameter's gradient over all ranks."""
        if self.world_size == 1:
            return 0
        dense = sum(m * n for m, n in self.layer_shapes)
        return self.itemsize * (self.always_numel + self.other_numel + dense)

    def ab_step_bytes(self, ranks: Sequence[int]) -> int:
        """An AB step: always-synced gradients over all ranks, the trained factor and the other
        gradients inside the group."""
        sent = self.itemsize * self.always_numel if self.world_size > 1 else 0
        if self.train_comm == "groups" and self.group_size > 1:
            factors = sum(
                m * r if self.role == "a" else r * n for (m, n), r in zip(self.layer_shapes, ranks)
            )
            sent += self.itemsize * (self.other_numel + factors)
        return sent

    def merge_bytes(self, ranks: Sequence[int]) -> int:
        """One merge: the other parameters plus the factor payload of ``sync_mode``."""
        if self.world_size == 1:
            return 0
        payload = 0
        for (m, n), r in zip(self.layer_shapes, ranks):
            if self.sync_mode == "full":
                payload += m * n
            elif self.sync_mode == "only-b":
                payload += r * n
            else:
                payload += r * (m + n)
        return self.itemsize * (self.other_numel + payload)

    def resplit_bytes(self) -> int:
        """The MAX-allreduce that agrees on the truncated ranks."""
        return RANK_BYTES * len(self.layer_shapes) if self.world_size > 1 else 0

    # a whole run -----------------------------------------------------------
    def predict(
        self, steps: int, rank_history: Sequence[Sequence[int]], finished: bool = False
    ) -> int:
        """Bytes sent over ``steps`` steps (plus the final merge if ``finished``), given the ranks
        chosen at each split (``ABTrainer.rank_history``)."""
        sent = self.initial_bytes()
        in_ab, split_index = False, -1

        def ranks_now() -> Sequence[int]:
            return rank_history[split_index]

        if self.schedule.warmup_steps == 0:
            in_ab, split_index = True, 0
        for step in range(1, steps + 1):
            sent += self.ab_step_bytes(ranks_now()) if in_ab else self.full_step_bytes()
            for action in self.schedule.actions_after(step):
                if action == "merge":
                    sent += self.merge_bytes(ranks_now())
                    in_ab = False
                else:
                    sent += self.resplit_bytes() if action == "resplit" else 0
                    in_ab, split_index = True, split_index + 1
        if finished and in_ab:
            sent += self.merge_bytes(ranks_now())
        return sent


def data_parallel_bytes(trainer: DataParallelTrainer, steps: int) -> int:
    """Bytes one rank sends in ``steps`` data-parallel steps (plus the initial broadcast)."""
    if trainer.comm.size == 1:
        return 0
    params = list(trainer.model.parameters())
    itemsize = params[0].element_size()
    per_step = itemsize * sum(p.numel() for p in params if p.requires_grad)
    initial = itemsize * sum(p.numel() for p in params) if trainer.comm.rank == 0 else 0
    return initial + steps * per_step


def powersgd_bytes(trainer: PowerSGDTrainer, steps: int) -> int:
    """Bytes one rank sends in ``steps`` PowerSGD steps (plus the initial broadcast)."""
    if trainer.comm.size == 1:
        return 0
    params = list(trainer.model.parameters())
    itemsize = params[0].element_size()
    trainable = [p for p in params if p.requires_grad]
    dense = sum(p.numel() for p in trainable)
    compressed = 0
    for p in trainable:
        if powersgd_compressible(p.shape, trainer.rank):
            m, n = p.shape[0], p.numel() // p.shape[0]
            compressed += min(trainer.rank, m, n) * (m + n)
        else:
            compressed += p.numel()
    warm = min(steps, trainer.warmup_steps)
    initial = itemsize * sum(p.numel() for p in params) if trainer.comm.rank == 0 else 0
    return initial + itemsize * (warm * dense + (steps - warm) * compressed)
