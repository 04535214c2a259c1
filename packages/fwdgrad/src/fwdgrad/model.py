"""The model API: fill ``.grad`` of a module's parameters with a forward gradient, then step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.func import functional_call

from .aggregation import check_aggregation
from .estimator import _check_k, check_options, forward_gradient_result
from .linear_stack import LinearStack
from .tangents import TangentStream, check_sampler, mix_seed


class ForwardGradientModel:
    """Wraps a module so that any ``torch.optim`` optimiser can step on forward gradients.

    >>> fg = ForwardGradientModel(net, k=16, aggregation="projection", seed=0)
    >>> loss = fg.fill_grad(lambda model: F.cross_entropy(model(x), y))
    >>> optimiser.step()

    The closure receives a callable that runs ``module`` with the parameters forward-mode AD is
    differentiating; it must build the loss only through it. Each call draws fresh tangents from
    (seed, call number), so a run is reproducible for a seed, and data-parallel ranks (``comm``)
    that share the seed draw identical tangents and allreduce only the jvps. Only parameters with
    ``requires_grad`` are estimated; buffers are passed through unchanged.

    A ``nn.Sequential`` of ``nn.Linear`` layers and elementwise activations whose closure calls
    ``run`` on one input tensor takes a matmul path (``linear_path=True``, with ``vectorize``
    True or ``auto``, without ``per_layer``): the k jvps as batched matmuls layer by layer, the
    same tangents and the same estimate as the generic ``vmap`` path, without its overhead. It
    keeps its tangent buffers between steps (at most about the chunk memory, 512 MiB by default).
    Any other module or closure takes the generic path.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        k: int = 1,
        aggregation: str = "mean",
        tangents: str = "normal",
        seed: int = 0,
        *,
        per_layer: bool = False,
        scaling: str = "none",
        chunk_size: int | None = None,
        vectorize: bool | str = "auto",
        comm=None,
        linear_path: bool = True,
    ):
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        if not isinstance(tangents, str):
            raise TypeError("tangents must name a sampler for ForwardGradientModel")
        check_sampler(tangents)
        check_aggregation(aggregation, scaling)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        self.module = module
        self.options = dict(
            k=k,
            aggregation=aggregation,
            tangents=tangents,
            per_layer=per_layer,
            scaling=scaling,
            chunk_size=chunk_size,
            vectorize=vectorize,
            comm=comm,
        )
        self.seed = seed
        self.steps = 0
        # the last ForwardGradientResult; on the matmul path its grad holds the p.grad tensors
        self.last_result = None
        self.linear_path = bool(linear_path)
        self._buffers: dict = {}  # tangent buffers of the matmul path, kept between steps
        self.last_path = None  # "linear" or "generic": the path the last fill_grad took

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def fill_grad(
        self,
        closure: Callable[[Callable[..., Any]], torch.Tensor],
        local_weight: float | None = None,
    ) -> torch.Tensor:
        """Set ``p.grad`` of every trainable parameter to the estimate; returns the (local) loss.

        ``local_weight`` is this rank's share of the global batch (default 1/size with ``comm``).
        """
        named = [(n, p) for n, p in self.module.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("module has no parameters that require grad")
        buffers = dict(self.module.named_buffers())

        def loss_of(params: dict[str, torch.Tensor]) -> torch.Tensor:
            state = {**buffers, **params}

            def run(*args: Any, **kwargs: Any) -> Any:
                return functional_call(self.module, state, args, kwargs)

            return closure(run)

        params = {n: p.detach() for n, p in named}
        seed = mix_seed(self.seed, self.steps)
        result = self._linear_result(named, closure, seed, local_weight)
        self.last_path = "generic" if result is None else "linear"
        if result is None:
            result = forward_gradient_result(
                loss_of, params, generator=seed, local_weight=local_weight, **self.options
            )
        self.steps += 1
        for (_name, p), g in zip(named, result.grad.values()):
            if p.grad is None:
                p.grad = g.detach().clone()
            elif p.grad is not g:
                p.grad.copy_(g)
        self.last_result = result
        return result.loss

    def _linear_result(self, named, closure, seed, local_weight):
        """The estimate by the matmul path (grad as a dict by name), or None where it does not
        apply."""
        opts = self.options
        if not self.linear_path or opts["per_layer"] or opts["vectorize"] is False:
            return None
        primals = [p.detach() for _, p in named]
        k = _check_k(opts["k"], opts["tangents"], primals, None)
        weight = check_options(
            k,
            opts["aggregation"],
            opts["scaling"],
            opts["chunk_size"],
            opts["vectorize"],
            opts["comm"],
            local_weight,
        )
        stack = LinearStack.of(self.module, [p for _, p in named], self._buffers)
        if stack is None:
            return None
        stream = TangentStream(
            [p.shape for p in primals],
            seed,
            opts["tangents"],
            dtype=primals[0].dtype,
            device=primals[0].device,
        )
        result = stack.forward_gradient(
            closure,
            primals,
            stream,
            k,
            opts["aggregation"],
            opts["scaling"],
            opts["chunk_size"],
            opts["comm"],
            weight,
            into=[_reusable_grad(p) for _, p in named],
        )
        if result is None:
            return None
        return result.rebuilt(lambda blocks: {n: g for (n, _), g in zip(named, blocks)})


def _reusable_grad(p: torch.Tensor) -> torch.Tensor | None:
    """``p.grad`` if the estimate can be written straight into it, else None."""
    g = p.grad
    if g is None or g.requires_grad or not g.is_contiguous():
        return None
    if g.shape != p.shape or g.dtype != p.dtype or g.device != p.device:
        return None
    return g
