"""Low-rank layers W = U·S·Vᵀ: frozen orthonormal bases U, Vᵀ (buffers) and a trainable rxr S."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LowRankConv",
    "LowRankLinear",
    "LowRankMultiheadAttention",
    "LowRankWeight",
    "is_eligible",
    "tall_shape",
]


def tall_shape(rows: int, cols: int) -> tuple[int, int, bool]:
    """(m, n, transposed): the tall-skinny orientation (m >= n) of a rows x cols matrix."""
    return (rows, cols, False) if rows >= cols else (cols, rows, True)


def is_eligible(rows: int, cols: int, ratio: float = 0.1) -> bool:
    """True unless the short side of the matrix is below ``ratio`` times the long side."""
    return min(rows, cols) >= ratio * max(rows, cols)


def _svd64(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reduced SVD in float64 (the factors are cast back by the caller)."""
    return torch.linalg.svd(matrix.detach().to(torch.float64), full_matrices=False)


class LowRankWeight(nn.Module):
    """A weight matrix W (rows x cols, conv kernels flattened) stored as U·S·Vᵀ.

    The factorisation is of the tall-skinny orientation: ``U @ S @ Vh`` equals W when
    rows >= cols, else Wᵀ (``transposed``). ``U`` (mxr) and ``Vh`` (rxn) are buffers, ``S``
    (rxr, dense) is the only trainable tensor. Shapes may change (rank pruning), but ``S`` stays
    the same name; when the rank changes, ``S`` becomes a new ``nn.Parameter`` (the OIALR
    controller moves the optimiser's reference and state to it).
    """

    def __init__(self, rows: int, cols: int, rank: int | None = None, *, dtype=None, device=None):
        super().__init__()
        m, n, transposed = tall_shape(rows, cols)
        rank = n if rank is None else int(rank)
        if not 1 <= rank <= n:
            raise ValueError(f"rank: expected 1 <= rank <= {n}, got {rank}")
        kw = {"dtype": dtype, "device": device}
        self.rows, self.cols, self.transposed = rows, cols, transposed
        self.register_buffer("U", torch.zeros(m, rank, **kw))
        self.register_buffer("Vh", torch.zeros(rank, n, **kw))
        self.S = nn.Parameter(torch.zeros(rank, rank, **kw))

    @property
    def rank(self) -> int:
        """The current rank r (S is r x r)."""
        return self.S.shape[0]

    @property
    def full_rank(self) -> int:
        """The largest possible rank, min(rows, cols)."""
        return min(self.rows, self.cols)

    def extra_repr(self) -> str:
        """Rows, columns and rank, shown by ``print(module)``."""
        return f"rows={self.rows}, cols={self.cols}, rank={self.rank}"

    def to_tall(self, weight_like: torch.Tensor) -> torch.Tensor:
        """A tensor shaped like the dense weight, as the tall-skinny m x n matrix U S Vh models."""
        matrix = weight_like.reshape(self.rows, self.cols)
        return matrix.T if self.transposed else matrix

    def tall_matrix(self) -> torch.Tensor:
        """U S Vᵀ in the tall-skinny orientation (m x n)."""
        return self.U @ self.S @ self.Vh

    def matrix(self) -> torch.Tensor:
        """W as rows x cols (differentiable in S)."""
        tall = self.tall_matrix()
        return tall.T if self.transposed else tall

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, B) with W = A @ B, A rows x r and B r x cols (differentiable in S)."""
        if self.transposed:  # W = (U S Vh)ᵀ = Vhᵀ Sᵀ Uᵀ
            return self.Vh.T @ self.S.T, self.U.T
        return self.U @ self.S, self.Vh

    def factorized_is_cheaper(self) -> bool:
        """True when x·Vᵀ·Sᵀ·Uᵀ costs fewer multiply-adds per row than x·Wᵀ: r(m+n)+r² < mn."""
        r = self.rank
        return r * (self.rows + self.cols) + r * r < self.rows * self.cols

    @torch.no_grad()
    def set_factors(self, U: torch.Tensor, S: torch.Tensor, Vh: torch.Tensor) -> None:
        """Replace the factors; ``S`` keeps its Parameter object unless the rank changes."""
        m, n = (self.cols, self.rows) if self.transposed else (self.rows, self.cols)
        r = S.shape[0]
        if U.shape != (m, r) or S.shape != (r, r) or Vh.shape != (r, n):
            raise ValueError(
                f"factors: expected U {(m, r)}, S {(r, r)}, Vh {(r, n)}; got "
                f"{tuple(U.shape)}, {tuple(S.shape)}, {tuple(Vh.shape)}"
            )
        like = self.S
        self.U = U.to(dtype=like.dtype, device=like.device).contiguous()
        self.Vh = Vh.to(dtype=like.dtype, device=like.device).contiguous()
        values = S.to(dtype=like.dtype, device=like.device).contiguous()
        if values.shape == like.shape:
            like.data = values
        else:
            # A new Parameter: autograd caches a leaf's shape, so resizing in place is unsafe.
            self.S = nn.Parameter(values, requires_grad=like.requires_grad)

    @torch.no_grad()
    def set_from_matrix(self, weight: torch.Tensor) -> None:
        """Factorise ``weight`` (rows x cols) by its full reduced SVD; S becomes diag(sigma)."""
        w = weight.reshape(self.rows, self.cols)
        u, sigma, vh = _svd64(w.T if self.transposed else w)
        self.set_factors(u, torch.diag(sigma), vh)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, *args, **kwargs):
        # A checkpoint taken after pruning has smaller factors: adopt its shapes before loading.
        shapes = {k: state_dict.get(prefix + k) for k in ("U", "S", "Vh")}
        if all(isinstance(t, torch.Tensor) for t in shapes.values()):
            r = shapes["S"].shape[0]
            if r != self.rank and shapes["U"].shape[1] == r and shapes["Vh"].shape[0] == r:
                kw = {"dtype": self.S.dtype, "device": self.S.device}
                self.set_factors(
                    torch.zeros(self.U.shape[0], r, **kw),
                    torch.zeros(r, r, **kw),
                    torch.zeros(r, self.Vh.shape[1], **kw),
                )
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, *args, **kwargs)


class LowRankLinear(LowRankWeight):
    """``nn.Linear`` with W = U S Vᵀ; ``factorized`` picks x·Vᵀ·Sᵀ·Uᵀ over x·Wᵀ ("auto": cheaper)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        rank: int | None = None,
        *,
        factorized: bool | str = "auto",
        dtype=None,
        device=None,
    ):
        super().__init__(out_features, in_features, rank, dtype=dtype, device=device)
        self.in_features, self.out_features = in_features, out_features
        self.factorized = factorized
        kw = {"dtype": dtype, "device": device}
        self.bias = nn.Parameter(torch.zeros(out_features, **kw)) if bias else None

    @classmethod
    def from_linear(cls, linear: nn.Linear, factorized: bool | str = "auto") -> LowRankLinear:
        """Full-rank factorisation of ``linear``; the bias Parameter object is reused."""
        w = linear.weight
        layer = cls(
            linear.in_features,
            linear.out_features,
            bias=False,
            factorized=factorized,
            dtype=w.dtype,
            device=w.device,
        )
        layer.set_from_matrix(w)
        layer.bias = linear.bias
        return layer

    @property
    def weight(self) -> torch.Tensor:
        """W = U S Vᵀ as a dense out_features x in_features tensor, rebuilt on every access
        (differentiable in S)."""
        return self.matrix()

    def _use_factors(self) -> bool:
        if self.factorized == "auto":
            return self.factorized_is_cheaper()
        return bool(self.factorized)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """y = x (U S Vᵀ)ᵀ + b, through the three thin factors or the dense W as ``factorized``
        picks."""
        if self._use_factors():
            # x Wᵀ as three thin products, never forming U S (m·r² multiply-adds per call)
            if self.transposed:  # W = Vhᵀ Sᵀ Uᵀ, so x Wᵀ = x U S Vh
                return F.linear(F.linear(F.linear(x, self.U.T), self.S.T), self.Vh.T, self.bias)
            return F.linear(F.linear(F.linear(x, self.Vh), self.S), self.U, self.bias)
        return F.linear(x, self.matrix(), self.bias)

    def to_dense(self) -> nn.Linear:
        """A plain ``nn.Linear`` with W = U S Vᵀ (new parameters)."""
        w = self.matrix().detach()
        dense = nn.Linear(
            self.in_features,
            self.out_features,
            self.bias is not None,
            dtype=w.dtype,
            device=w.device,
        )
        with torch.no_grad():
            dense.weight.copy_(w)
            if self.bias is not None:
                dense.bias.copy_(self.bias)
        return dense


_CONV_TYPES = {1: nn.Conv1d, 2: nn.Conv2d}
_CONV_FUNCS = {1: F.conv1d, 2: F.conv2d}


class LowRankConv(LowRankWeight):
    """``nn.Conv1d`` / ``nn.Conv2d`` whose kernel, viewed as out x in·k, is U S Vᵀ.

    The factorised path (``groups == 1``) runs a conv with r filters (B) then a 1x1 conv (A).
    """

    def __init__(self, conv: nn.Conv1d | nn.Conv2d, factorized: bool | str = "auto"):
        w = conv.weight
        out_ch = w.shape[0]
        cols = math.prod(w.shape[1:])
        super().__init__(out_ch, cols, None, dtype=w.dtype, device=w.device)
        self.dims = w.dim() - 2
        self.kernel_shape = tuple(w.shape)
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.stride = conv.kernel_size, conv.stride
        self.padding, self.dilation, self.groups = conv.padding, conv.dilation, conv.groups
        self.padding_mode = conv.padding_mode
        self._pad_twice = tuple(conv._reversed_padding_repeated_twice)
        self.factorized = factorized
        self.bias = conv.bias

    @classmethod
    def from_conv(cls, conv: nn.Conv1d | nn.Conv2d, factorized: bool | str = "auto") -> LowRankConv:
        """Full-rank factorisation of ``conv``; the bias Parameter object is reused."""
        layer = cls(conv, factorized)
        layer.set_from_matrix(conv.weight)
        return layer

    @property
    def weight(self) -> torch.Tensor:
        """The kernel U S Vᵀ in the original conv's weight shape, rebuilt on every access
        (differentiable in S)."""
        return self.matrix().reshape(self.kernel_shape)

    def extra_repr(self) -> str:
        """Rows, columns, rank, kernel shape and stride, shown by ``print(module)``."""
        return f"{super().extra_repr()}, kernel={self.kernel_shape}, stride={self.stride}"

    def _use_factors(self) -> bool:
        if self.groups != 1:
            return False
        if self.factorized == "auto":
            return self.factorized_is_cheaper()
        return bool(self.factorized)

    def _padded(self, x: torch.Tensor) -> tuple[torch.Tensor, object]:
        if self.padding_mode == "zeros":
            return x, self.padding
        return F.pad(x, self._pad_twice, mode=self.padding_mode), 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution of ``x`` with the kernel U S Vᵀ plus the bias: when factorised, r filters
        (B of W = A·B, see ``factors``) then a 1x1 convolution (A), else the dense kernel."""
        conv = _CONV_FUNCS[self.dims]
        x, padding = self._padded(x)
        if self._use_factors():
            a, b = self.factors()
            r = self.rank
            mid = conv(
                x, b.reshape(r, *self.kernel_shape[1:]), None, self.stride, padding, self.dilation
            )
            return conv(mid, a.reshape(self.out_channels, r, *([1] * self.dims)), self.bias)
        return conv(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)

    def to_dense(self) -> nn.Module:
        """A plain conv module with the kernel U S Vᵀ (new parameters)."""
        w = self.weight.detach()
        dense = _CONV_TYPES[self.dims](
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            bias=self.bias is not None,
            padding_mode=self.padding_mode,
            dtype=w.dtype,
            device=w.device,
        )
        with torch.no_grad():
            dense.weight.copy_(w)
            if self.bias is not None:
                dense.bias.copy_(self.bias)
        return dense


class LowRankMultiheadAttention(nn.Module):
    """``nn.MultiheadAttention`` whose projections are low rank.

    Packed q/k/v weights become ``in_proj`` (a `LowRankWeight`, 3E x E); separate ones
    become ``q_proj``, ``k_proj``, ``v_proj``. ``out_proj`` is a `LowRankLinear`. The
    biases (``in_proj_bias``, ``bias_k``, ``bias_v``, ``out_proj.bias``) are the original
    Parameter objects.

    torch's attention kernel takes dense projection matrices, so every forward rebuilds them
    from U S Vᵀ: the thin-factor forward (``factorized``) of `LowRankLinear` does not apply here.
    """

    def __init__(self, mha: nn.MultiheadAttention, decompose: bool = True):
        super().__init__()
        self.embed_dim, self.kdim, self.vdim = mha.embed_dim, mha.kdim, mha.vdim
        self.num_heads, self.head_dim = mha.num_heads, mha.head_dim
        self.dropout, self.batch_first = mha.dropout, mha.batch_first
        self.add_zero_attn = mha.add_zero_attn
        self._qkv_same_embed_dim = mha._qkv_same_embed_dim
        self.in_proj_bias = mha.in_proj_bias
        self.bias_k, self.bias_v = mha.bias_k, mha.bias_v
        if self._qkv_same_embed_dim:
            self.in_proj = self._factor(mha.in_proj_weight, decompose)
        else:
            self.q_proj = self._factor(mha.q_proj_weight, decompose)
            self.k_proj = self._factor(mha.k_proj_weight, decompose)
            self.v_proj = self._factor(mha.v_proj_weight, decompose)
        out = mha.out_proj
        w = out.weight
        self.out_proj = LowRankLinear(
            out.in_features,
            out.out_features,
            False,
            factorized=False,
            dtype=w.dtype,
            device=w.device,
        )
        if decompose:
            self.out_proj.set_from_matrix(w)
        self.out_proj.bias = out.bias

    @staticmethod
    def _factor(weight: torch.Tensor, decompose: bool) -> LowRankWeight:
        factor = LowRankWeight(*weight.shape, dtype=weight.dtype, device=weight.device)
        if decompose:
            factor.set_from_matrix(weight)
        return factor

    @staticmethod
    def projection_shapes(mha: nn.MultiheadAttention) -> list[tuple[int, int]]:
        """The matrix shapes this module would factorise for ``mha``."""
        if mha._qkv_same_embed_dim:
            shapes = [tuple(mha.in_proj_weight.shape)]
        else:
            shapes = [tuple(getattr(mha, f"{p}_proj_weight").shape) for p in "qkv"]
        return [*shapes, tuple(mha.out_proj.weight.shape)]

    # nn.TransformerEncoderLayer reads these for its inference fast path: dense views of W.
    merge_masks = nn.MultiheadAttention.merge_masks

    @property
    def in_proj_weight(self) -> torch.Tensor | None:
        """The packed 3E x E q/k/v weight as a dense matrix; None with separate projections."""
        return self.in_proj.matrix() if self._qkv_same_embed_dim else None

    @property
    def q_proj_weight(self) -> torch.Tensor | None:
        """The query projection as a dense matrix; None when q/k/v are packed in ``in_proj``."""
        return None if self._qkv_same_embed_dim else self.q_proj.matrix()

    @property
    def k_proj_weight(self) -> torch.Tensor | None:
        """The key projection as a dense matrix; None when q/k/v are packed in ``in_proj``."""
        return None if self._qkv_same_embed_dim else self.k_proj.matrix()

    @property
    def v_proj_weight(self) -> torch.Tensor | None:
        """The value projection as a dense matrix; None when q/k/v are packed in ``in_proj``."""
        return None if self._qkv_same_embed_dim else self.v_proj.matrix()

    def forward(
        self,
        query,
        key,
        value,
        key_padding_mask=None,
        need_weights: bool = True,
        attn_mask=None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ):
        """Attention as ``nn.MultiheadAttention.forward`` computes it (same arguments), with every
        projection rebuilt densely from U S Vᵀ. Returns (output, attention weights or None)."""
        if self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        separate = not self._qkv_same_embed_dim
        out, weights = F.multi_head_attention_forward(
            query,
            key,
            value,
            self.embed_dim,
            self.num_heads,
            None if separate else self.in_proj.matrix(),
            self.in_proj_bias,
            self.bias_k,
            self.bias_v,
            self.add_zero_attn,
            self.dropout,
            self.out_proj.matrix(),
            self.out_proj.bias,
            training=self.training,
            key_padding_mask=key_padding_mask,
            need_weights=need_weights,
            attn_mask=attn_mask,
            use_separate_proj_weight=separate,
            q_proj_weight=self.q_proj.matrix() if separate else None,
            k_proj_weight=self.k_proj.matrix() if separate else None,
            v_proj_weight=self.v_proj.matrix() if separate else None,
            average_attn_weights=average_attn_weights,
            is_causal=is_causal,
        )
        if self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def to_dense(self) -> nn.MultiheadAttention:
        """A plain ``nn.MultiheadAttention`` with the merged weights (new parameters)."""
        w = self.out_proj.S
        dense = nn.MultiheadAttention(
            self.embed_dim,
            self.num_heads,
            dropout=self.dropout,
            bias=self.in_proj_bias is not None,
            add_bias_kv=self.bias_k is not None,
            add_zero_attn=self.add_zero_attn,
            kdim=self.kdim,
            vdim=self.vdim,
            batch_first=self.batch_first,
            dtype=w.dtype,
            device=w.device,
        )
        with torch.no_grad():
            if self._qkv_same_embed_dim:
                dense.in_proj_weight.copy_(self.in_proj.matrix())
            else:
                for p in "qkv":
                    getattr(dense, f"{p}_proj_weight").copy_(getattr(self, f"{p}_proj").matrix())
            for name in ("in_proj_bias", "bias_k", "bias_v"):
                if getattr(self, name) is not None:
                    getattr(dense, name).copy_(getattr(self, name))
            dense.out_proj.weight.copy_(self.out_proj.matrix())
            if self.out_proj.bias is not None:
                dense.out_proj.bias.copy_(self.out_proj.bias)
        return dense
