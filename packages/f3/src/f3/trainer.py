"""Block-local training of an F3Network with F³ and the BP, DFA, DRTP and LLO baselines."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch

from f3.data import ErrorBuffer, epoch_orders
from f3.heads import check_error_variant, error_signal, loss, metrics, target_matrix
from f3.network import Connector, F3Network

METHODS = ("f3", "bp", "dfa", "drtp", "llo")
UPDATES = ("immediate", "batch")
OptimizerFactory = Callable[[list], torch.optim.Optimizer]


def adam(lr: float) -> OptimizerFactory:
    """The default optimiser factory: Adam with learning rate ``lr``."""
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    return lambda params: torch.optim.Adam(params, lr=lr)


def check_method(method: str, error: str, update: str, head: str) -> None:
    """Raise ValueError unless ``method`` is in METHODS, ``update`` in UPDATES and ``error`` a
    variant that fits ``head``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if update not in UPDATES:
        raise ValueError(f"update must be one of {UPDATES}, got {update!r}")
    check_error_variant(error, head)


def step(optimizer: torch.optim.Optimizer | None) -> None:
    """Step ``optimizer`` and set its gradients to None; nothing for None (a block without
    parameters)."""
    if optimizer is not None:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def train_hidden_block(block, connector: Connector, x, error, optimizer, step_now: bool):
    """Forward one hidden block on a detached input, backward e·B inside it only; returns the
    detached output."""
    h = block(x.detach())
    if h.requires_grad:
        h.backward(connector.gradient(error).to(h.dtype))
        if step_now:
            step(optimizer)
    return h.detach()


def train_last_block(block, head: str, x, targets, optimizer, step_now: bool):
    """Forward the output block, backward its true local loss; returns (logits, loss)."""
    logits = block(x.detach())
    value = loss(head, logits, targets)
    if logits.requires_grad:
        value.backward()
        if step_now:
            step(optimizer)
    return logits.detach(), float(value.detach())


class Trainer:
    """Trains ``network`` with ``method`` (f3, bp, dfa, drtp, llo); one optimiser per block.

    Hidden blocks of f3/dfa/drtp receive −(e·B_i)/n as the gradient of their output, with e the
    stored delayed error (f3), the current error from an extra forward pass (dfa) or the target
    (drtp); the output block gets its true gradient. With ``update="immediate"`` a block steps
    right after its own forward and local backward (no update locking); ``"batch"`` steps all
    blocks after the whole forward pass. bp is ordinary backprop; llo trains the last block only.
    """

    def __init__(
        self,
        network: F3Network,
        method: str = "f3",
        error: str = "delayed_error",
        update: str = "immediate",
        lr: float = 1e-3,
        optimizer: OptimizerFactory | None = None,
    ):
        if not isinstance(network, F3Network):
            raise TypeError(f"network must be an F3Network, got {type(network).__name__}")
        check_method(method, error, update, network.head)
        self.network, self.method, self.error, self.update = network, method, error, update
        factory = optimizer or adam(lr)
        self.optimizers = [
            factory(list(b.parameters())) if any(True for _ in b.parameters()) else None
            for b in network.blocks
        ]
        self.buffer: ErrorBuffer | None = None

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the network's first parameter; inputs and targets are cast to it."""
        return next(self.network.parameters()).dtype

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        """Raw targets (class indices or values) → the n × C matrix in the network's dtype."""
        return target_matrix(self.network.head, y, self.network.num_outputs).to(self.dtype)

    def init_error_buffer(self, y_train: torch.Tensor) -> ErrorBuffer:
        """Start the stored errors at the targets, so the first epoch of F³ equals DRTP."""
        self.buffer = ErrorBuffer(self.targets(y_train))
        return self.buffer

    def hidden_error(self, x, targets, indices) -> torch.Tensor | None:
        """The e that hidden blocks see for this batch."""
        if self.method == "f3":
            if self.buffer is None:
                raise ValueError("call init_error_buffer(y_train) (or fit) before training f3")
            return self.buffer.read(indices)
        if self.method == "drtp":
            return targets
        if self.method == "dfa":
            with torch.no_grad():
                logits = self.network(x)
            return error_signal(self.error, self.network.head, logits, targets)
        return None

    def train_step(self, x, targets, indices, apply: bool = True) -> float:
        """One mini-batch; ``targets`` is the n × C matrix. With ``apply=False`` the gradients
        are left in ``.grad`` (every block sees the pre-step weights) and nothing is updated."""
        net = self.network
        net.train()
        device = next(net.parameters()).device
        x, targets = x.to(device, self.dtype), targets.to(device, self.dtype)
        if self.method == "bp":
            value = loss(net.head, net(x), targets)
            value.backward()
            if apply:
                for optimizer in self.optimizers:
                    step(optimizer)
            return float(value.detach())
        immediate = apply and self.update == "immediate"
        error = self.hidden_error(x, targets, indices)
        for i, block in enumerate(net.blocks[:-1]):
            if self.method == "llo":
                with torch.no_grad():
                    x = block(x)
                continue
            x = train_hidden_block(
                block, net.connectors[i], x, error, self.optimizers[i], immediate
            )
        logits, value = train_last_block(
            net.blocks[-1], net.head, x, targets, self.optimizers[-1], immediate
        )
        if apply and not immediate:
            for optimizer in self.optimizers:
                step(optimizer)
        if apply and self.method == "f3":
            self.buffer.write(indices, error_signal(self.error, net.head, logits, targets))
        return value

    def train_epoch(self, batches: Iterable, x_all, targets_all) -> float:
        """One pass over ``batches`` (index tensors into ``x_all``); returns the mean loss."""
        total, count = 0.0, 0
        for indices in batches:
            total += self.train_step(x_all[indices], targets_all[indices], indices) * len(indices)
            count += len(indices)
        return total / max(count, 1)

    def fit_loader(
        self,
        loader: Iterable,
        epochs: int,
        y_train: torch.Tensor | None = None,
        on_epoch: Callable[[dict], None] | None = None,
    ) -> list[dict]:
        """Train from a loader whose batches are ``(x, y, indices)``, e.g. a ``DataLoader`` over
        an `f3.data.IndexedDataset`; returns one record per epoch.

        F³ needs every sample's target to start its error buffer: pass ``y_train`` (all targets
        in index order) or let it be collected once from ``loader.dataset``.
        """
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}")
        if self.method == "f3" and self.buffer is None:
            if y_train is None:
                dataset = getattr(loader, "dataset", None)
                if dataset is None:
                    raise ValueError("pass y_train: the loader has no .dataset to read targets")
                y_train = torch.stack(
                    [torch.as_tensor(dataset[i][-2]) for i in range(len(dataset))]
                )
            self.init_error_buffer(y_train)
        history = []
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            total, count = 0.0, 0
            for batch in loader:
                if len(batch) < 3:
                    raise ValueError(
                        "loader batches must be (x, y, indices): wrap the dataset "
                        "in f3.data.IndexedDataset"
                    )
                x, y, indices = batch[0], batch[-2], batch[-1]
                indices = torch.as_tensor(indices, dtype=torch.long)
                total += self.train_step(x, self.targets(y), indices) * len(indices)
                count += len(indices)
            record = {"epoch": epoch, "train_loss": total / max(count, 1)}
            record["seconds"] = time.perf_counter() - start
            history.append(record)
            if on_epoch is not None:
                on_epoch(record)
        return history

    @torch.no_grad()
    def evaluate(self, x, y, batch_size: int = 1024) -> dict[str, float]:
        """Test metrics in eval mode: the plain forward, no connector or buffer work."""
        self.network.eval()
        device = next(self.network.parameters()).device
        logits = torch.cat(
            [self.network(chunk.to(device, self.dtype)) for chunk in x.split(batch_size)]
        )
        return metrics(self.network.head, logits, self.targets(y).to(device))

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
        """Train for ``epochs``; returns one record per epoch (train loss, test metrics, time)."""
        return fit_epochs(
            self, x_train, y_train, epochs, batch_size, seed, x_test, y_test, on_epoch
        )


def fit_epochs(
    trainer,
    x_train,
    y_train,
    epochs: int,
    batch_size: int,
    seed: int,
    x_test,
    y_test,
    on_epoch: Callable[[dict], None] | None,
    publish: Callable[[dict], dict] | None = None,
) -> list[dict]:
    """The epoch loop shared by `Trainer.fit` and `f3.pipeline.PipelineTrainer.fit`.

    ``trainer`` provides ``method``, ``buffer``, ``targets``, ``init_error_buffer``,
    ``train_epoch`` and ``evaluate``. Each epoch's record (epoch, train loss, test metrics when
    ``x_test`` is given) goes through ``publish`` (the pipeline sends the last rank's to every
    rank), then gets this process's training seconds and is handed to ``on_epoch``.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if len(x_train) != len(y_train):
        raise ValueError("x_train and y_train must have the same number of samples")
    targets = trainer.targets(y_train)
    if trainer.method == "f3" and trainer.buffer is None:
        trainer.init_error_buffer(y_train)
    orders = epoch_orders(len(x_train), batch_size, seed)
    history = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        record = {"epoch": epoch, "train_loss": trainer.train_epoch(next(orders), x_train, targets)}
        seconds = time.perf_counter() - start
        if x_test is not None:
            record.update({f"test_{k}": v for k, v in trainer.evaluate(x_test, y_test).items()})
        if publish is not None:
            record = publish(record)
        record["seconds"] = seconds
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
    return history
