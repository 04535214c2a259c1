"""Low-rank A·B layers: a Linear / Conv2d whose weight can be split into A = UΣ^½ and B = Σ^½Vᵀ."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Sequence

import torch
from torch import nn

MODES = ("full", "a", "b")
DEFAULT_FULL_RANK_PATTERNS = ("*embed*", "*cls_token*", "*pos_embed*")


def truncation_rank(sigma: torch.Tensor, cutoff: float | None) -> int:
    """How many singular values to keep: all of them without a cutoff, else #{s_i > cutoff·s_1}
    (at least one)."""
    if cutoff is None or sigma.numel() == 0:
        return int(sigma.numel())
    kept = int((sigma > cutoff * sigma[0]).sum())
    return max(kept, 1)


class ABLayer:
    """What ABLinear and ABConv2d share: the full weight W plus the factors ``a`` (mxr) and ``b``
    (rxn) of its 2-D view W.reshape(out, -1), and a mode saying which of them is in use.

    Mode ``full``: the forward uses W and only W (and the bias) is trainable. Modes ``a`` / ``b``:
    the forward uses A·B and only A / only B (and the bias) is trainable.
    """

    weight: nn.Parameter
    bias: nn.Parameter | None

    def _init_factors(self) -> None:
        opts = {"dtype": self.weight.dtype, "device": self.weight.device}
        self.a = nn.Parameter(torch.empty(0, **opts), requires_grad=False)
        self.b = nn.Parameter(torch.empty(0, **opts), requires_grad=False)
        self.ab_mode = "full"

    @property
    def matrix_shape(self) -> tuple[int, int]:
        """(m, n) of the 2-D view of the weight."""
        out = self.weight.shape[0]
        return out, self.weight.numel() // out

    @property
    def rank(self) -> int | None:
        """The inner dimension of A·B, None before the first split."""
        return None if self.a.numel() == 0 else int(self.a.shape[1])

    def weight_matrix(self) -> torch.Tensor:
        """The weight in use, as an (m, n) matrix (W in mode full, A·B otherwise), detached."""
        if self.ab_mode == "full":
            return self.weight.detach().reshape(self.matrix_shape)
        return (self.a.detach() @ self.b.detach()).reshape(self.matrix_shape)

    def effective_weight(self) -> torch.Tensor:
        """The weight the forward uses, shaped like ``weight`` (differentiable)."""
        if self.ab_mode == "full":
            return self.weight
        return (self.a @ self.b).view_as(self.weight)

    def svd(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reduced SVD of the 2-D view of W (computed in float64)."""
        w = self.weight.detach().reshape(self.matrix_shape).to(torch.float64)
        return torch.linalg.svd(w, full_matrices=False)

    def split(self, rank: int | None = None, cutoff: float | None = None, svd=None) -> int:
        """Set A = U_rΣ_r^½ and B = Σ_r^½V_rᵀ from the SVD of W; returns the rank used.

        ``rank`` wins over ``cutoff``; with neither, nothing is truncated (A·B = W). The mode is not
        changed (see ``set_mode``).
        """
        u, s, vh = self.svd() if svd is None else svd
        if rank is None:
            rank = truncation_rank(s, cutoff)
        if not isinstance(rank, int) or not 1 <= rank <= s.numel():
            raise ValueError(f"rank must be an int in [1, {s.numel()}], got {rank!r}")
        root = s[:rank].sqrt()
        self.set_factors(u[:, :rank] * root, root[:, None] * vh[:rank])
        return rank

    def set_factors(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """Replace A and B (shapes (m, r) and (r, n)); the parameters keep their identity, so an
        optimiser holding them keeps working."""
        m, n = self.matrix_shape
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != m or b.shape[1] != n:
            raise ValueError(
                f"a and b must have shapes ({m}, r) and (r, {n}), got {tuple(a.shape)} "
                f"and {tuple(b.shape)}"
            )
        if a.shape[1] != b.shape[0]:
            raise ValueError(f"a and b disagree on the rank: {a.shape[1]} vs {b.shape[0]}")
        self.a.data = a.detach().to(self.weight.dtype).contiguous().clone()
        self.b.data = b.detach().to(self.weight.dtype).contiguous().clone()

    def set_weight_matrix(self, w: torch.Tensor) -> None:
        """Overwrite W from an (m, n) matrix."""
        self.weight.data.copy_(w.reshape(self.weight.shape))

    def set_mode(self, mode: str) -> None:
        """Choose what the forward uses and what is trainable: ``full`` (W), ``a`` or ``b``."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode != "full" and self.rank is None:
            raise ValueError(f"mode {mode!r} needs A and B: call split() first")
        self.ab_mode = mode
        for name, param in (("full", self.weight), ("a", self.a), ("b", self.b)):
            param.requires_grad_(name == mode)
            if name != mode:
                param.grad = None

    def factor_numel(self) -> int:
        """Parameters of A and B (r·(m+n)); m·n before the first split."""
        m, n = self.matrix_shape
        return m * n if self.rank is None else self.rank * (m + n)

    def compression(self) -> float:
        """m·n / (r·(m+n)): how many times fewer numbers A and B hold than W."""
        m, n = self.matrix_shape
        return m * n / self.factor_numel()


class ABLinear(nn.Linear, ABLayer):
    """``nn.Linear`` whose weight can be trained as a low-rank product A·B."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, **kw):
        super().__init__(in_features, out_features, bias=bias, **kw)
        self._init_factors()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """y = x Wᵀ + b with the weight in use (W in mode ``full``, A·B otherwise)."""
        return nn.functional.linear(x, self.effective_weight(), self.bias)


class ABConv2d(nn.Conv2d, ABLayer):
    """``nn.Conv2d`` whose weight, viewed as (out, in·kh·kw), can be trained as A·B."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._init_factors()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution of ``x`` with the weight in use (W in mode ``full``, A·B reshaped to
        W's shape otherwise), plus the bias."""
        return self._conv_forward(x, self.effective_weight(), self.bias)


def _from_linear(layer: nn.Linear) -> ABLinear:
    new = ABLinear(
        layer.in_features,
        layer.out_features,
        bias=layer.bias is not None,
        device=layer.weight.device,
        dtype=layer.weight.dtype,
    )
    new.load_state_dict(layer.state_dict(), strict=False)
    return new


def _from_conv(layer: nn.Conv2d) -> ABConv2d:
    new = ABConv2d(
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        dilation=layer.dilation,
        groups=layer.groups,
        bias=layer.bias is not None,
        padding_mode=layer.padding_mode,
        device=layer.weight.device,
        dtype=layer.weight.dtype,
    )
    new.load_state_dict(layer.state_dict(), strict=False)
    return new


def default_full_rank_names(model: nn.Module) -> list[str]:
    """Modules kept full rank by default: the first Conv2d (the stem), the last Linear (the
    classifier) and anything named like an embedding."""
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    names = convs[:1] + linears[-1:]
    for name, _ in model.named_modules():
        if name and any(fnmatch.fnmatch(name, p) for p in DEFAULT_FULL_RANK_PATTERNS):
            names.append(name)
    return sorted(set(names))


def convert_model(model: nn.Module, keep_full_rank: Sequence[str] | None = None) -> nn.Module:
    """Replace every ``nn.Linear`` / ``nn.Conv2d`` of ``model`` (in place) by its AB twin, except
    the modules whose qualified name matches a pattern of ``keep_full_rank`` (fnmatch; default:
    ``default_full_rank_names(model)``). Kept modules are tagged; the trainer syncs them every
    step. Linear layers owned by an ``nn.MultiheadAttention`` (its ``out_proj``) are always kept:
    attention reads their weight directly instead of calling the layer, so an AB twin would never
    be used. Build the optimiser after converting. Returns ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if keep_full_rank is None:
        keep_full_rank = default_full_rank_names(model)
    if isinstance(keep_full_rank, str) or not all(isinstance(p, str) for p in keep_full_rank):
        raise TypeError("keep_full_rank must be a sequence of name patterns (str)")
    read_directly = {
        id(child)
        for module in model.modules()
        if isinstance(module, nn.MultiheadAttention)
        for child in module.children()
    }
    for name, module in list(model.named_modules()):
        if not name or isinstance(module, ABLayer):
            continue
        if not isinstance(module, (nn.Linear, nn.Conv2d)):
            continue
        if id(module) in read_directly or any(fnmatch.fnmatch(name, p) for p in keep_full_rank):
            module._abtrain_keep_full_rank = True
            continue
        replacement = _from_linear(module) if isinstance(module, nn.Linear) else _from_conv(module)
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, replacement)
    for name, module in model.named_modules():
        if name and any(fnmatch.fnmatch(name, p) for p in keep_full_rank):
            module._abtrain_keep_full_rank = True
    return model


def ab_layers(model: nn.Module) -> Iterator[tuple[str, ABLayer]]:
    """The AB layers of ``model`` with their qualified names, in module order."""
    for name, module in model.named_modules():
        if isinstance(module, ABLayer):
            yield name, module


def compression_report(model: nn.Module) -> dict[str, float]:
    """Numbers of parameters and ratios: the AB layers' W against their A·B, and the whole model
    (layers in full mode count as A·B once split)."""
    dense = factors = 0
    for _, layer in ab_layers(model):
        m, n = layer.matrix_shape
        dense += m * n
        factors += layer.factor_numel()
    total = sum(p.numel() for p in model.parameters())
    ab_storage = sum(
        layer.weight.numel() + layer.a.numel() + layer.b.numel() for _, layer in ab_layers(model)
    )
    rest = total - ab_storage
    return {
        "layer_dense_params": dense,
        "layer_factor_params": factors,
        "layer_compression": dense / factors if factors else 1.0,
        "model_dense_params": dense + rest,
        "model_factor_params": factors + rest,
        "model_compression": (dense + rest) / (factors + rest) if factors + rest else 1.0,
    }
