"""Tangent samplers: counter-based seeds, so any tangent can be regenerated from (seed, index)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

SAMPLERS = ("normal", "rademacher", "orthonormal")
_MASK64 = (1 << 64) - 1


def mix_seed(*words: int) -> int:
    """A 63-bit seed from integers (splitmix64 rounds): distinct inputs give unrelated streams."""
    state = 0x9E3779B97F4A7C15
    for word in words:
        state = (state ^ (int(word) & _MASK64)) & _MASK64
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        state = z ^ (z >> 31)
    return state >> 1


def check_sampler(tangents) -> None:
    """Raise unless ``tangents`` names a sampler (user-supplied tensors are checked elsewhere)."""
    if isinstance(tangents, str) and tangents not in SAMPLERS:
        raise ValueError(
            f"tangents must be one of {', '.join(SAMPLERS)} or tensors, got {tangents!r}"
        )


_SIGN_TABLES: dict = {}


def _sign_table(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Row b holds the eight bits of the byte b as signs: +1 for a set bit, -1 otherwise."""
    key = (dtype, device)
    if key not in _SIGN_TABLES:
        bits = (torch.arange(256).unsqueeze(1) >> torch.arange(8)) & 1
        _SIGN_TABLES[key] = (2 * bits - 1).to(dtype=dtype, device=device)
    return _SIGN_TABLES[key]


def rademacher_(out: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Fill the contiguous tensor ``out`` with independent signs, +1 or -1 with probability 1/2.

    One generator call gives 64 random bits, and each byte of them eight signs through a 256 x 8
    lookup table: about 0.7 ns per entry on one CPU core, against about 3.3 ns for one integer
    draw per entry (and 2.6 ns for a normal draw), which made tangent generation the largest cost
    of a forward-gradient step.
    """
    flat = out.view(-1)
    n = flat.numel()
    words = torch.empty((n + 63) // 64, dtype=torch.int64, device=out.device)
    words.random_(-(2**63), None, generator=generator)  # all 64 bits uniform
    codes = words.view(torch.uint8)[: (n + 7) // 8].long()
    table = _sign_table(out.dtype, out.device)
    whole = n // 8
    if whole and out.dtype == torch.int8 and flat.data_ptr() % 8 == 0:
        # eight int8 signs are one int64 word: a gather of words, not of 8-byte rows
        words_out = flat[: whole * 8].view(torch.int64)
        torch.index_select(table.view(torch.int64).view(-1), 0, codes[:whole], out=words_out)
    elif whole:
        torch.index_select(table, 0, codes[:whole], out=flat[: whole * 8].view(whole, 8))
    if n > whole * 8:
        flat[whole * 8 :] = table[codes[whole], : n - whole * 8]
    return out


class TangentStream:
    """The tangents of one estimate: tangent ``i`` of block ``b`` comes from seed (seed, b, i).

    A block is one parameter tensor. ``chunk(start, stop, blocks)`` returns, for each block in
    ``blocks``, a tensor of shape ``(stop - start, *shape)``; calling it again returns the same
    numbers, so callers can drop tangents and regenerate them instead of holding k x n values.
    ``orthonormal`` draws normal tangents here; the estimator orthonormalises through the Gram
    matrix (Q = V R^-1), which never needs all of V at once.
    """

    def __init__(
        self,
        shapes: Sequence[torch.Size],
        seed: int,
        kind: str = "normal",
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ):
        check_sampler(kind)
        self.shapes = [torch.Size(s) for s in shapes]
        self.seed = int(seed)
        self.kind = kind
        self.dtype = dtype
        self.device = torch.device(device)
        self._generator = torch.Generator(device=self.device)

    def _fill(self, out: torch.Tensor, block: int, index: int) -> None:
        gen = self._generator
        gen.manual_seed(mix_seed(self.seed, block, index))
        if self.kind == "rademacher":
            rademacher_(out, gen)
        else:
            out.normal_(generator=gen)

    def chunk(
        self,
        start: int,
        stop: int,
        blocks: Sequence[int] | None = None,
        out: Sequence[torch.Tensor] | None = None,
    ) -> list[torch.Tensor]:
        """Tangents ``start`` … ``stop - 1`` of each block, regenerated from their seeds.

        Parameters
        ----------
        start
            Index of the first tangent.
        stop
            One past the index of the last tangent.
        blocks
            Indices of the parameter tensors to draw for; all of them when None.
        out
            Optional buffers, one per block in ``blocks``, each contiguous with at least
            ``stop - start`` rows of the block's shape; the tangents are written into their first
            rows. Reusing buffers across steps saves the kernel's zeroing of fresh pages, which
            costs about as much as drawing Rademacher signs.

        Returns
        -------
        list[torch.Tensor]
            One tensor of shape ``(stop - start, *shape)`` per block in ``blocks``, in the
            stream's dtype and on its device (views of ``out`` when given).
        """
        blocks = range(len(self.shapes)) if blocks is None else blocks
        tensors = []
        for j, b in enumerate(blocks):
            if out is None:
                shape = (stop - start, *self.shapes[b])
                t = torch.empty(shape, dtype=self.dtype, device=self.device)
            else:
                t = out[j][: stop - start]
            for row, i in enumerate(range(start, stop)):
                self._fill(t[row], b, i)
            tensors.append(t)
        return tensors


class SuppliedTangents:
    """User tangents with the same ``chunk`` interface: one tensor per block, shape (k, *shape)."""

    def __init__(self, tangents: Sequence[torch.Tensor]):
        self.tensors = list(tangents)
        self.kind = "supplied"

    def chunk(
        self, start: int, stop: int, blocks: Sequence[int] | None = None
    ) -> list[torch.Tensor]:
        """Rows ``start:stop`` of the supplied tensor of each block in ``blocks`` (all blocks
        when None), as views."""
        blocks = range(len(self.tensors)) if blocks is None else blocks
        return [self.tensors[b][start:stop] for b in blocks]
