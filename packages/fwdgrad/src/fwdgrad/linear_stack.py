"""Forward gradients of stacks of Linear layers and elementwise activations as batched matmuls.

For y = W x + b the jvp along the tangent (dW_i, db_i) is dy_i = dW_i x + W dx_i + db_i, so all k
tangents of a layer take one matmul with the layer input and one of W with the k input tangents.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import jvp as func_jvp

from .aggregation import uses_gram
from .estimator import (
    DEFAULT_CHUNK_BYTES,
    ForwardGradientResult,
    _GroupPass,
    chunk_bounds,
    combine,
    self_gram,
)
from .jvp import jvps_sequential, jvps_vectorised
from .tangents import TangentStream

# parameter-free modules that act entry by entry: their jvp is f'(h) * dh
ELEMENTWISE = (
    nn.CELU,
    nn.ELU,
    nn.GELU,
    nn.Hardsigmoid,
    nn.Hardswish,
    nn.Hardtanh,
    nn.Identity,
    nn.LeakyReLU,
    nn.LogSigmoid,
    nn.Mish,
    nn.ReLU,
    nn.ReLU6,
    nn.SELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Softplus,
    nn.Softsign,
    nn.Tanh,
    nn.Tanhshrink,
)


_INT8_FASTER: list[bool] = []


def int8_products_are_faster() -> bool:
    """Whether this CPU multiplies int8 matrices (``torch._int_mm``) faster than float32 ones.

    Timed once per process on a 16 x 2**16 sign matrix's V V^T, best of three each. It depends
    on the CPU: on one 2-core EPYC the int8 V^T V of 16 tangents of 4.2M parameters took 9 ms,
    on another one (AVX2, no VNNI) the int8 product took 14 times longer than the float one
    (173 vs 12.6 ms for 16 x 2**20).
    """
    if not _INT8_FASTER:
        faster = False
        if hasattr(torch, "_int_mm"):
            signs = torch.ones(16, 2**16, dtype=torch.int8)
            floats = signs.float()
            try:
                int_time = _best_of(3, lambda: torch._int_mm(signs, signs.T))
            except RuntimeError:  # no int8 kernel for this build
                int_time = math.inf
            faster = int_time < _best_of(3, lambda: floats @ floats.T)
        _INT8_FASTER.append(faster)
    return _INT8_FASTER[0]


def _best_of(repeats: int, fn: Callable[[], Any]) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _value_and_slope(act: nn.Module, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f(h) and f'(h) of an elementwise activation: from f(h) for tanh and sigmoid, from the
    sign of h for ReLU (about 40% less time than forward mode, which evaluates f twice), and
    by forward mode along a tangent of ones for the others."""
    kind = type(act)
    if kind is nn.Tanh:
        y = torch.tanh(h)
        return y, torch.mul(y, y).neg_().add_(1)
    if kind is nn.Sigmoid:
        y = torch.sigmoid(h)
        return y, torch.sub(1, y).mul_(y)
    if kind is nn.ReLU and not act.inplace:
        return torch.relu(h), (h > 0).to(h.dtype)
    return func_jvp(act, (h,), (torch.ones_like(h),))


class Unsupported(Exception):
    """The loss closure uses the model in a way the matmul path does not cover."""


def _has_hooks(module: nn.Module) -> bool:
    hooks = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks")
    return any(getattr(module, name, None) for name in hooks)


def _layers(module: nn.Module) -> list[nn.Module] | None:
    """The leaves of (nested) ``nn.Sequential`` containers in call order; None for other modules."""
    if type(module) is not nn.Sequential or _has_hooks(module):
        return None
    leaves = []
    for child in module:
        inner = _layers(child) if type(child) is nn.Sequential else [child]
        if inner is None:
            return None
        leaves += inner
    return leaves


class LinearStack:
    """The matmul path for a ``nn.Sequential`` of ``nn.Linear`` and elementwise activations.

    Build it with `LinearStack.of`, which returns None for any other module. The jvps and, for
    the projection, V^T V are computed layer by layer while the layer's tangents are drawn; the
    tangents live in buffers kept between calls, so no step pays for fresh pages again.
    """

    def __init__(self, steps: list[tuple], shapes: list[torch.Size], buffers: dict | None = None):
        self.steps = steps
        self.shapes = shapes
        self._buffers: dict[Any, torch.Tensor] = {} if buffers is None else buffers

    @classmethod
    def of(
        cls, module: nn.Module, trainable: Sequence[torch.Tensor], buffers: dict | None = None
    ) -> LinearStack | None:
        """The path for ``module`` whose trainable parameters are ``trainable`` (in block order),
        or None when the module is not a plain stack or a parameter is used twice. ``buffers``:
        a dict the tangent buffers are kept in (pass the same one every step to reuse them)."""
        layers = _layers(module)
        if not layers:
            return None
        block_of = {id(p): b for b, p in enumerate(trainable)}
        steps, used = [], []
        for layer in layers:
            if _has_hooks(layer):
                return None
            if type(layer) is nn.Linear:
                weight = block_of.get(id(layer.weight))
                bias = None if layer.bias is None else block_of.get(id(layer.bias))
                used += [b for b in (weight, bias) if b is not None]
                steps.append(("linear", layer, weight, bias))
            elif type(layer) in ELEMENTWISE and not any(True for _ in layer.parameters()):
                steps.append(("act", layer))
            else:
                return None
        if sorted(used) != list(range(len(trainable))):
            return None
        dtypes = {(p.dtype, p.device) for p in trainable}
        if len(dtypes) != 1:
            return None
        return cls(steps, [p.shape for p in trainable], buffers)

    def _buffer(self, key: Any, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        numel = math.prod(shape)
        buf = self._buffers.get(key)
        if (
            buf is None
            or buf.numel() < numel
            or buf.dtype != like.dtype
            or buf.device != like.device
        ):
            buf = torch.empty(numel, dtype=like.dtype, device=like.device)
            self._buffers[key] = buf
        return buf[:numel].view(shape)

    def primal(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The output for input ``x`` (rows of features), and per step the layer input (linear)
        or the activation's slope f'(h) (elementwise)."""
        h = x.reshape(-1, x.shape[-1])
        saved = []
        for step in self.steps:
            if step[0] == "linear":
                saved.append(h)
                h = step[1](h)
            else:
                h, slope = _value_and_slope(step[1], h)
                saved.append(slope)
        return h.reshape(*x.shape[:-1], h.shape[-1]), saved

    def output_tangents(
        self,
        stream: TangentStream,
        k: int,
        saved: list[torch.Tensor],
        keep: bool,
        gram,
        keep_signs: bool = False,
    ) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
        """The k tangents of the output (k, rows, features), the tangents of every block when
        ``keep`` (else Nones; their int8 signs when ``keep_signs``), and V^T V added into
        ``gram`` (when not None) layer by layer."""
        kept: list[torch.Tensor | None] = [None] * len(self.shapes)
        t = None
        for step, inp in zip(self.steps, saved):
            if step[0] == "act":
                if t is not None:
                    t.mul_(inp)
                continue
            _, layer, wblock, bblock = step
            drawn = {}
            for name, block in (("w", wblock), ("b", bblock)):
                if block is not None:
                    key = ("kept", block) if keep else ("layer", name)
                    out = self._buffer(key, (k, *self.shapes[block]), inp)
                    signs_key = ("kept-signs", block) if keep_signs else ("signs",)
                    drawn[name], signs = self._draw(stream, block, out, gram, signs_key)
                    if keep:
                        kept[block] = drawn[name]
                    elif keep_signs:
                        kept[block] = signs
            t = self._layer_tangent(layer, inp, t, drawn.get("w"), drawn.get("b"), k)
        return t, kept

    def _draw(self, stream, block, out, gram, signs_key=("signs",)):
        """The tangents of ``block`` into ``out``, adding their V^T V to ``gram`` (if not None);
        returns ``out`` and the int8 signs it was widened from (None for other tangents).

        Signs (Rademacher tangents) are drawn as int8, 1 byte per entry instead of 4, into the
        buffer ``signs_key`` and widened into ``out``: that moves less memory than drawing them
        as floats. Their V^T V is an integer matrix; it is multiplied as int8 (exact in int32)
        where this CPU does that faster than float matmuls (`int8_products_are_faster`), else in
        the float buffer (exact too while the layer has fewer than 2**24 entries, and within
        float rounding above that).
        """
        k = out.shape[0]
        if not _draws_signs(stream, out[0]):
            stream.chunk(0, k, [block], out=[out])
            if gram is not None:
                gram.add_(self_gram(out.reshape(k, -1)))
            return out, None
        signs = self._buffer(signs_key, tuple(out.shape), out.new_empty((), dtype=torch.int8))
        stream.chunk(0, k, [block], out=[signs])
        out.copy_(signs)
        if gram is None:
            return out, signs
        if k == 1:
            gram.add_(signs.numel())
        elif int8_products_are_faster():
            flat = signs.view(k, -1)
            gram.add_(torch._int_mm(flat, flat.T).double())
        else:
            gram.add_(self_gram(out.view(k, -1)))
        return out, signs

    @staticmethod
    def _layer_tangent(layer, inp, t, vw, vb, k):
        """dW_i x + W dx_i + db_i for all i at once; None while every tangent is still zero."""
        rows = inp.shape[0]
        new = None
        if vw is not None:
            new = torch.matmul(inp, vw.transpose(1, 2))  # (k, rows, out)
        if t is not None:
            weight = layer.weight.detach()
            flat = t.reshape(k * rows, -1)
            if new is None:
                new = (flat @ weight.T).view(k, rows, -1)
            else:
                new.view(k * rows, -1).addmm_(flat, weight.T)
        if vb is not None:
            bias = vb.unsqueeze(1)  # (k, 1, out)
            new = bias.expand(k, rows, -1).clone() if new is None else new.add_(bias)
        return new

    def forward_gradient(
        self,
        closure: Callable[[Callable[..., Any]], torch.Tensor],
        primals: list[torch.Tensor],
        stream: TangentStream,
        k: int,
        aggregation: str,
        scaling: str,
        chunk_size: int | None,
        comm,
        weight: float,
        into: list[torch.Tensor | None] | None = None,
    ) -> ForwardGradientResult | None:
        """The estimate, or None when ``closure`` does not call ``run`` once on one tensor (or
        with the same tensor each time), or the tangents of one layer exceed the memory bound.
        ``into``: tensors to write the estimate into (``out`` of `combine`)."""
        n = sum(p.numel() for p in primals)
        itemsize = primals[0].element_size()
        if uses_gram(aggregation, stream.kind):
            k = min(k, n)
        budget = chunk_size * n * itemsize if chunk_size else DEFAULT_CHUNK_BYTES
        widest = max(math.prod(s) for s in self.shapes) * k * itemsize
        if widest > budget:
            return None
        with torch.no_grad():
            traced = self._trace(closure)
            if traced is None:
                return None
            x, out, saved = traced
            keep = k * n * itemsize <= budget
            # Signs that do not fit as floats may fit as int8: widening the kept signs for the
            # estimate saves drawing them again (random bits, table lookup) and chunk buffers.
            keep_signs = not keep and k * n <= budget and _draws_signs(stream, primals[0])
            gram = (
                torch.zeros(k, k, dtype=torch.float64)
                if uses_gram(aggregation, stream.kind)
                else None
            )
            t, kept = self.output_tangents(stream, k, saved, keep, gram, keep_signs)
            try:
                loss, d = _loss_jvps(closure, x, out, t.view(k, *out.shape))
            except Unsupported:
                return None
        gpass = _GroupPass(k=k, n=n, bounds=[(0, k)], jvps=d, kept=None, gram=gram)
        gpass.gram_done = gram is not None
        if keep:
            gpass.kept = kept
        elif keep_signs:
            largest = max(math.prod(s) for s in self.shapes)
            stream = _KeptSigns(kept, self._buffer(("layer", "w"), (k, largest), primals[0]))
        else:
            rows = max(1, budget // (n * itemsize))
            gpass.bounds = chunk_bounds(k, rows)
            rows = max(stop - start for start, stop in gpass.bounds)
            gpass.buffers = [
                self._buffer(("regenerated", b), (rows, *shape), primals[b])
                for b, shape in enumerate(self.shapes)
            ]
        group = list(range(len(primals)))
        return combine(
            [gpass], [group], stream, primals, aggregation, scaling, comm, weight, loss, into
        )

    def _trace(self, closure):
        """Run ``closure`` once with the primal pass; (input, output, saved) or None."""
        seen: dict[str, Any] = {}

        def run(*args: Any, **kwargs: Any) -> torch.Tensor:
            if kwargs or len(args) != 1 or not isinstance(args[0], torch.Tensor):
                raise Unsupported("run must be called with one tensor")
            if "x" not in seen:
                seen["x"] = args[0]
                seen["out"], seen["saved"] = self.primal(args[0])
            elif not _same_input(args[0], seen["x"]):
                raise Unsupported("run called with different inputs")
            return seen["out"]

        try:
            closure(run)
        except Unsupported:
            return None
        if "x" not in seen:
            return None
        return seen["x"], seen["out"], seen["saved"]


def _draws_signs(stream, like: torch.Tensor) -> bool:
    """Whether `LinearStack._draw` draws the stream's tangents for ``like`` as int8 signs."""
    return stream.kind == "rademacher" and like.device.type == "cpu" and like.numel() < 2**31


class _KeptSigns:
    """The tangent stream after a pass that kept every block's Rademacher signs as int8.

    ``chunk`` widens the kept signs into one float buffer, block by block, instead of drawing
    them again (at k = 64 on 4.2M parameters that saves about 45 ms of random bits and table
    lookups per step, and the chunk buffers). It yields the blocks lazily, and each one is
    overwritten by the next: the caller must use a block before taking the next one, as the
    estimate's matrix-vector products do.
    """

    kind = "rademacher"

    def __init__(self, signs: list[torch.Tensor], buffer: torch.Tensor):
        self.signs = signs
        self.buffer = buffer.view(-1)

    def chunk(self, start: int, stop: int, blocks=None, out=None):
        blocks = range(len(self.signs)) if blocks is None else blocks
        for b in blocks:
            rows = self.signs[b][start:stop]
            yield self.buffer[: rows.numel()].view(rows.shape).copy_(rows)


def _same_input(a, b) -> bool:
    """Whether ``a`` is the input ``b`` (or an equal tensor, such as the same slice taken again)."""
    if a is b:
        return True
    if not isinstance(a, torch.Tensor) or a.shape != b.shape or a.dtype != b.dtype:
        return False
    return a.device == b.device and bool(torch.equal(a, b))


def _loss_jvps(closure, x, out, tangents):
    """(loss, d): the closure's loss as a function of the model output, differentiated along
    the k output tangents (vmapped; one dual-number pass each if the closure cannot be vmapped)."""

    def loss_of_output(outputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        def run(*args: Any, **kwargs: Any) -> torch.Tensor:
            if kwargs or len(args) != 1 or not _same_input(args[0], x):
                raise Unsupported("run called with different inputs")
            return outputs[0]

        return closure(run)

    try:
        return jvps_vectorised(loss_of_output, [out], [tangents])
    except (RuntimeError, NotImplementedError):
        return jvps_sequential(loss_of_output, [out], [tangents])
