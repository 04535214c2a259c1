"""F³ as a forward-only pipeline over ranks: activations flow forward, errors come back late."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

import hpc_comm as hc
from f3.data import ErrorBuffer
from f3.heads import check_error_variant, error_signal, metrics, target_matrix
from f3.network import F3Network
from f3.trainer import (
    OptimizerFactory,
    adam,
    fit_epochs,
    train_hidden_block,
    train_last_block,
)

PIPELINE_METHODS = ("f3", "drtp", "llo")
_ACTIVATION_TAG, _ERROR_TAG, _EVAL_TAG = 31, 32, 33
log = hc.get_logger(__name__)


def check_partition(partition: Sequence[int] | None, num_blocks: int, size: int) -> list[int]:
    """Blocks per rank: the given list, or a balanced split; every rank holds at least one."""
    if num_blocks < size:
        raise ValueError(f"a pipeline over {size} ranks needs >= {size} blocks, got {num_blocks}")
    counts = list(partition) if partition is not None else hc.chunk_counts(num_blocks, size)
    if len(counts) != size or sum(counts) != num_blocks or min(counts) < 1:
        raise ValueError(
            f"partition must list {size} counts >= 1 summing to {num_blocks}, got {counts}"
        )
    return counts


class PipelineTrainer:
    """Every rank trains its own consecutive blocks of ``network`` (built alike on all ranks).

    Rank r receives a batch's activation from r−1, runs and immediately updates its blocks, and
    sends the detached output to r+1; no rank ever waits for a backward pass. The last rank
    computes the loss and, for F³, sends the batch's new errors (n × C) to the earlier ranks,
    which store them for the next epoch. With the same seed and data order the result equals
    the single-process ``Trainer(update="immediate")``.
    """

    def __init__(
        self,
        network: F3Network,
        comm,
        method: str = "f3",
        error: str = "delayed_error",
        lr: float = 1e-3,
        optimizer: OptimizerFactory | None = None,
        partition: Sequence[int] | None = None,
    ):
        if not isinstance(network, F3Network):
            raise TypeError(f"network must be an F3Network, got {type(network).__name__}")
        if method not in PIPELINE_METHODS:
            raise ValueError(
                f"method must be one of {PIPELINE_METHODS} in a pipeline (bp and dfa need the "
                f"output before a hidden update), got {method!r}"
            )
        check_error_variant(error, network.head)
        self.network, self.comm, self.method, self.error = network, comm, method, error
        counts = check_partition(partition, network.num_blocks, comm.size)
        self.start = sum(counts[: comm.rank])
        self.stop = self.start + counts[comm.rank]
        self.is_last = comm.rank == comm.size - 1
        factory = optimizer or adam(lr)
        self.optimizers = {
            i: factory(list(network.blocks[i].parameters()))
            for i in range(self.start, self.stop)
            if any(True for _ in network.blocks[i].parameters())
        }
        self.dtype = next(network.parameters()).dtype
        self.buffer: ErrorBuffer | None = None
        self._pending_errors: list = []  # (indices, tensor, request) awaiting the last rank
        self._pending_sends: list = []

    def targets(self, y):
        """Raw targets (class indices or values) → the n × C matrix in the network's dtype."""
        return target_matrix(self.network.head, y, self.network.num_outputs).to(self.dtype)

    def init_error_buffer(self, y_train) -> ErrorBuffer:
        """Start the stored errors at the targets, so the first epoch of F³ equals DRTP."""
        self.buffer = ErrorBuffer(self.targets(y_train))
        return self.buffer

    # ------------------------------------------------------------------ messages
    def _receive(self, x_all, indices, tag):
        if self.comm.rank == 0:
            return x_all[indices].to(self.dtype)
        x = torch.empty((len(indices), *self.network.shapes[self.start]), dtype=self.dtype)
        self.comm.recv(x, source=self.comm.rank - 1, tag=tag)
        return x

    def _send_forward(self, h):
        self._drain_sends(keep=1)
        self._pending_sends.append(
            self.comm.isend(h.contiguous(), self.comm.rank + 1, _ACTIVATION_TAG)
        )

    def _drain_sends(self, keep: int = 0):
        while len(self._pending_sends) > keep:
            self._pending_sends.pop(0).wait()

    def _apply_errors(self, wait: bool):
        """Store the errors that arrived (all of them with ``wait``) in the buffer."""
        while self._pending_errors:
            indices, values, request = self._pending_errors[0]
            if not (wait or request.test()):
                break
            request.wait()
            self.buffer.write(indices, values)
            self._pending_errors.pop(0)

    # ------------------------------------------------------------------ training
    def train_step(self, x_all, targets_all, indices) -> float | None:
        """One batch through this rank's blocks; the loss on the last rank, else None."""
        net = self.network
        net.train()
        x = self._receive(x_all, indices, _ACTIVATION_TAG)
        targets = targets_all[indices]
        error = self.buffer.read(indices) if self.method == "f3" else targets
        for i in range(self.start, min(self.stop, net.num_blocks - 1)):
            if self.method == "llo":
                with torch.no_grad():
                    x = net.blocks[i](x)
            else:
                opt = self.optimizers.get(i)
                x = train_hidden_block(net.blocks[i], net.connectors[i], x, error, opt, True)
        if not self.is_last:
            self._send_forward(x)
            if self.method == "f3":
                values = torch.empty((len(indices), net.num_outputs), dtype=self.dtype)
                request = self.comm.irecv(values, source=self.comm.size - 1, tag=_ERROR_TAG)
                self._pending_errors.append((indices, values, request))
                self._apply_errors(wait=False)
            return None
        last = net.num_blocks - 1
        logits, value = train_last_block(
            net.blocks[last], net.head, x, targets, self.optimizers.get(last), True
        )
        if self.method == "f3":
            new_errors = error_signal(self.error, net.head, logits, targets).contiguous()
            self.buffer.write(indices, new_errors)
            self._pending_sends = [r for r in self._pending_sends if not r.test()]
            for rank in range(self.comm.size - 1):
                self._pending_sends.append(self.comm.isend(new_errors, rank, _ERROR_TAG))
        return value

    def train_epoch(self, batches, x_all, targets_all) -> float | None:
        """One pass over ``batches`` (index tensors into ``x_all`` and the target matrix
        ``targets_all``). For F³ it first stores every error of the previous epoch still in
        flight. Returns the mean loss per sample on the last rank, None on the others."""
        if self.method == "f3":
            self._apply_errors(wait=True)  # last epoch's errors, before any row is read again
        total, count = 0.0, 0
        for indices in batches:
            value = self.train_step(x_all, targets_all, indices)
            if value is not None:
                total, count = total + value * len(indices), count + len(indices)
        return total / count if count else None

    def finish(self) -> None:
        """Complete every outstanding message (call before reading the buffer or the weights)."""
        self._drain_sends()
        if self.method == "f3":
            self._apply_errors(wait=True)

    @torch.no_grad()
    def evaluate(self, x, y, batch_size: int = 1024) -> dict[str, float]:
        """Forward the test set through the pipeline in eval mode; every rank gets the metrics."""
        net = self.network
        net.eval()
        outputs = []
        for indices in torch.arange(len(x)).split(batch_size):
            h = self._receive(x, indices, _EVAL_TAG)
            for i in range(self.start, self.stop):
                h = net.blocks[i](h)
            if self.is_last:
                outputs.append(h)
            else:
                self.comm.send(h.contiguous(), self.comm.rank + 1, _EVAL_TAG)
        result = metrics(net.head, torch.cat(outputs), self.targets(y)) if self.is_last else None
        return self.comm.bcast_obj(result, root=self.comm.size - 1)

    def fit(
        self,
        x_train,
        y_train,
        epochs: int,
        batch_size: int = 50,
        seed: int = 0,
        x_test=None,
        y_test=None,
        on_epoch: Callable[[dict], None] | None = None,
    ) -> list[dict]:
        """Train for ``epochs``; every rank returns the same per-epoch records (the last
        rank's loss and metrics, each rank's own training seconds)."""
        history = fit_epochs(
            self, x_train, y_train, epochs, batch_size, seed, x_test, y_test, on_epoch,
            publish=lambda record: self.comm.bcast_obj(record, root=self.comm.size - 1),
        )  # fmt: skip
        self.finish()
        return history
