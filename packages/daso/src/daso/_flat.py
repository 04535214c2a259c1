"""Which parameters a data-parallel wrapper synchronises, and their storage in one flat buffer."""

from __future__ import annotations

import torch

from hpc_comm.flat import flatten, unflatten_into


def trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


class FlatParameters:
    """The values of ``params`` kept as views of one contiguous buffer, so that a sync hands the
    buffer itself to the collective instead of packing and unpacking the parameters every time.

    The parameter objects stay the same (the optimiser keeps working on them); only their
    ``.data`` becomes a view. When the parameters do not share one dtype and device, or when
    something replaced a parameter's ``.data`` (``model.to(...)``, a low-rank conversion), the
    buffer is rebuilt on the next ``values()``; with mixed dtypes ``values()`` packs a copy.
    """

    def __init__(self, params: list[torch.nn.Parameter]):
        self.params = params
        self.flat: torch.Tensor | None = None
        self._addresses: list[int] = []
        self._build()

    def _build(self) -> None:
        if len({(p.dtype, p.device) for p in self.params}) != 1:
            self.flat, self._addresses = None, []
            return
        with torch.no_grad():
            flat = torch.cat([p.detach().reshape(-1) for p in self.params])
            offset = 0
            for p in self.params:
                n = p.numel()
                p.data = flat[offset : offset + n].view_as(p)
                offset += n
        self.flat = flat
        self._addresses = [p.data_ptr() for p in self.params]

    def intact(self) -> bool:
        """Whether every parameter still lives in the buffer."""
        return self.flat is not None and all(
            p.data_ptr() == a for p, a in zip(self.params, self._addresses)
        )

    def values(self) -> torch.Tensor:
        """The parameters as one 1-D tensor: the buffer itself (writing to it writes the
        parameters), or a packed copy when they cannot share one buffer."""
        if not self.intact():
            self._build()
        return self.flat if self.flat is not None else flatten(self.params)

    def store(self, flat: torch.Tensor) -> None:
        """Make ``flat`` the parameters' values (nothing to copy when it is the buffer itself)."""
        if flat is not self.flat:
            unflatten_into(flat, self.params)
