"""F3Network: ordinary nn.Module blocks joined by connectors that hold fixed feedback matrices."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

from f3.feedback import make_feedback
from f3.heads import check_head


class _SubstituteGradient(torch.autograd.Function):
    """Identity forward; backward drops the upstream gradient and returns the substitute."""

    @staticmethod
    def forward(ctx, activation, substitute):
        ctx.save_for_backward(substitute)
        return activation.view_as(activation)

    @staticmethod
    def backward(ctx, _upstream):
        (substitute,) = ctx.saved_tensors
        return substitute, None


class Connector(nn.Module):
    """Sits after a hidden block: holds the fixed feedback matrix B (C × d, a buffer, never
    trained) and turns an error e (n × C) into the gradient of the block's output."""

    def __init__(self, num_outputs: int, feature_shape: Sequence[int], init: str, seed: int):
        super().__init__()
        self.feature_shape = tuple(int(s) for s in feature_shape)
        width = math.prod(self.feature_shape)
        self.register_buffer("feedback", make_feedback(num_outputs, width, init, seed))

    def gradient(self, error: torch.Tensor) -> torch.Tensor:
        """−(e · B) / n reshaped like the block's output: the descent direction's gradient.

        With B = W_out and e = y* − ŷ this is exactly backprop's ∂loss/∂h for the batch mean.
        """
        n = error.shape[0]
        flat = error.to(self.feedback) @ self.feedback  # the feedback's device and dtype
        return (flat / -n).view(n, *self.feature_shape)

    def forward(self, activation: torch.Tensor, error: torch.Tensor | None = None):
        """``activation`` unchanged; in training mode with ``error``, its backward hands the
        block ``gradient(error)`` instead of the upstream gradient."""
        if not self.training or error is None:
            return activation
        return _SubstituteGradient.apply(activation, self.gradient(error).to(activation.dtype))


class F3Network(nn.Module):
    """Blocks f1..fL with a connector after every hidden block.

    ``forward(x)`` is the plain composition (connectors are the identity, also in eval mode).
    ``forward(x, error)`` in training mode makes one ``loss.backward()`` give every hidden block
    the gradient e·B_i of its output instead of backprop's; the trainers go further and run a
    separate local backward per block (no backward through the whole network).
    """

    def __init__(
        self,
        blocks: Sequence[nn.Module],
        num_outputs: int,
        input_shape: Sequence[int],
        head: str = "bce",
        feedback: str = "kaiming_uniform",
        seed: int = 0,
    ):
        super().__init__()
        if len(blocks) < 1:
            raise ValueError("blocks must hold at least one nn.Module")
        if not all(isinstance(b, nn.Module) for b in blocks):
            raise TypeError("blocks must be nn.Module instances")
        if int(num_outputs) < 1:
            raise ValueError(f"num_outputs must be >= 1, got {num_outputs}")
        self.head = check_head(head)
        self.num_outputs = int(num_outputs)
        self.blocks = nn.ModuleList(blocks)
        self.shapes = self._trace_shapes(tuple(input_shape))
        if self.shapes[-1] != (self.num_outputs,):
            raise ValueError(
                f"the last block must output {self.num_outputs} features, got {self.shapes[-1]}"
            )
        self.connectors = nn.ModuleList(
            Connector(self.num_outputs, shape, feedback, seed * 7919 + i)
            for i, shape in enumerate(self.shapes[1:-1])
        )

    def _trace_shapes(self, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        """Per-sample shapes: the input, then every block's output (one dry run in eval mode)."""
        modes = [m.training for m in self.blocks.modules()]
        self.blocks.eval()
        dtype = next((p.dtype for p in self.blocks.parameters()), torch.float32)
        shapes = [input_shape]
        with torch.no_grad():
            x = torch.zeros((2, *input_shape), dtype=dtype)
            for block in self.blocks:
                x = block(x)
                shapes.append(tuple(x.shape[1:]))
        for module, mode in zip(self.blocks.modules(), modes):
            module.training = mode
        return shapes

    @property
    def num_blocks(self) -> int:
        """L, the number of blocks (the hidden blocks and the output block)."""
        return len(self.blocks)

    def forward(self, x: torch.Tensor, error: torch.Tensor | None = None) -> torch.Tensor:
        """The last block's output z = f_L(… f_1(x)); with ``error`` in training mode, each
        hidden block's output gradient in backward is −(e·B_i)/n."""
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i < len(self.connectors) and error is not None and self.training:
                x = self.connectors[i](x, error)
        return x


# ----------------------------------------------------------------------------- block builders
def mlp_blocks(
    in_features: int, hidden: Sequence[int], out_features: int, seed: int = 0
) -> list[nn.Module]:
    """Linear+tanh hidden blocks and a Linear output block (the head applies sigmoid/softmax)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        widths = [in_features, *hidden]
        blocks: list[nn.Module] = [
            nn.Sequential(nn.Linear(a, b), nn.Tanh()) for a, b in itertools.pairwise(widths)
        ]
        blocks.append(nn.Linear(widths[-1], out_features))
    return blocks


def conv_blocks(
    in_channels: int, channels: Sequence[int], image_size: int, out_features: int, seed: int = 0
) -> list[nn.Module]:
    """Conv3×3 + tanh + 2×2 max-pool blocks, then Flatten + Linear."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        blocks: list[nn.Module] = []
        size, previous = image_size, in_channels
        for c in channels:
            blocks.append(
                nn.Sequential(nn.Conv2d(previous, c, 3, padding=1), nn.Tanh(), nn.MaxPool2d(2))
            )
            size, previous = size // 2, c
        blocks.append(nn.Sequential(nn.Flatten(), nn.Linear(previous * size * size, out_features)))
    return blocks


class PatchEmbedding(nn.Module):
    """Image (n, c, h, w) → tokens (n, patches, dim) with a learned position embedding."""

    def __init__(self, in_channels: int, image_size: int, patch: int, dim: int):
        super().__init__()
        self.project = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.position = nn.Parameter(torch.zeros(1, (image_size // patch) ** 2, dim))

    def forward(self, x):
        """Tokens (n, patches, dim): the strided patch convolution, flattened, plus the
        position embedding."""
        return self.project(x).flatten(2).transpose(1, 2) + self.position


class TokenClassifier(nn.Module):
    """Mean over tokens, LayerNorm, Linear."""

    def __init__(self, dim: int, out_features: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.linear = nn.Linear(dim, out_features)

    def forward(self, x):
        """Outputs (n, out_features) from tokens (n, tokens, dim)."""
        return self.linear(self.norm(x.mean(1)))


def transformer_blocks(
    in_channels: int,
    image_size: int,
    patch: int,
    dim: int,
    depth: int,
    heads: int,
    out_features: int,
    seed: int = 0,
) -> list[nn.Module]:
    """A small vision transformer: patch embedding, ``depth`` encoder blocks, a classifier."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        blocks: list[nn.Module] = [PatchEmbedding(in_channels, image_size, patch, dim)]
        for _ in range(depth):
            blocks.append(
                nn.TransformerEncoderLayer(
                    dim, heads, dim_feedforward=2 * dim, dropout=0.0, batch_first=True
                )
            )
        blocks.append(TokenClassifier(dim, out_features))
    return blocks
