"""The DNDarray container: one torch tensor per rank, the global shape, the split axis, the layout.

Only data and layout live here; the operations (arithmetic, indexing, resplit ...) are functions
in the modules above, attached as methods by ``heatlike._methods``.
"""

from __future__ import annotations

import torch

from . import types
from .communication import MPICommunication, chunk_counts, offsets_of
from .devices import Device

__all__ = ["DNDarray"]


class DNDarray:
    """A distributed N-d array.

    Every rank holds ``larray``, the contiguous block of rows ``offset .. offset + count`` along the
    ``split`` axis (``split=None``: every rank holds the whole array). ``counts`` (every rank's
    extent along ``split``) is known on every rank, so layout questions need no communication.
    """

    __slots__ = ("__weakref__", "_comm", "_counts", "_device", "_gshape", "_larray", "_split")

    def __init__(
        self,
        array: torch.Tensor,
        gshape,
        dtype=None,
        split=None,
        device: Device | None = None,
        comm: MPICommunication | None = None,
        balanced=None,
        *,
        counts=None,
    ):
        from .communication import sanitize_comm
        from .devices import sanitize_device

        if not isinstance(array, torch.Tensor):
            raise TypeError(f"array must be a torch.Tensor, got {type(array).__name__}")
        if dtype is not None and types.canonical_heat_type(dtype).torch_type() != array.dtype:
            array = array.to(types.canonical_heat_type(dtype).torch_type())
        self._larray = array
        self._gshape = tuple(int(s) for s in gshape)
        self._split = split
        self._device = sanitize_device(device)
        self._comm = sanitize_comm(comm)
        if split is not None and counts is None and balanced:
            counts = chunk_counts(self._gshape[split], self._comm.size)
        self._counts = None if counts is None else tuple(counts)

    @classmethod
    def _make(cls, larray, gshape, split, comm, device, counts=None) -> DNDarray:
        """Wrap a local tensor without checks (the layout is known to be right)."""
        obj = object.__new__(cls)
        obj._larray = larray
        obj._gshape = gshape
        obj._split = split
        obj._device = device
        obj._comm = comm
        if split is not None and counts is None:
            counts = chunk_counts(gshape[split], comm.size)
        obj._counts = counts
        return obj

    # ------------------------------------------------------------------ data
    @property
    def larray(self) -> torch.Tensor:
        """This rank's local tensor."""
        return self._larray

    @larray.setter
    def larray(self, array: torch.Tensor) -> None:
        if not isinstance(array, torch.Tensor):
            raise TypeError(f"larray must be a torch.Tensor, got {type(array).__name__}")
        if self._split is not None and array.dim() != len(self._gshape):
            raise ValueError(
                f"larray must have {len(self._gshape)} dimensions like the array, got {array.dim()}"
            )
        self._larray = array
        if self._split is not None:
            # Every rank forgets the layout, whether or not its own block changed: a rank cannot
            # know whether another rank's did, and ``counts`` learns it again with one collective
            # that all ranks must then enter (Heat's contract: setting larray is collective).
            self._counts = None
        elif tuple(array.shape) != self._gshape:
            self._gshape = tuple(array.shape)

    @property
    def dtype(self) -> type[types.datatype]:
        """The heatlike type of the elements (``ht.float32`` ...), read from the local tensor."""
        return types._FROM_TORCH[self._larray.dtype]

    @property
    def gshape(self) -> tuple:
        """The global shape (also ``shape``); collective the first time after ``larray`` was
        replaced by hand, free otherwise."""
        if self._counts is None and self._split is not None:
            self.counts  # noqa: B018  (learns the layout after larray was replaced; collective)
        return self._gshape

    shape = gshape

    @property
    def lshape(self) -> tuple:
        """The shape of this rank's local tensor."""
        return tuple(self._larray.shape)

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return len(self._gshape)

    @property
    def split(self) -> int | None:
        """The axis the array is split along, or None when every rank holds the whole array."""
        return self._split

    @property
    def device(self) -> Device:
        """The device of the local tensors."""
        return self._device

    @property
    def comm(self) -> MPICommunication:
        """The communicator of the ranks that hold the array."""
        return self._comm

    @property
    def size(self) -> int:
        """The number of elements of the global array (also ``gnumel``)."""
        n = 1
        for s in self.gshape:  # collective after larray was replaced by hand, like gshape
            n *= s
        return n

    gnumel = size

    @property
    def lnumel(self) -> int:
        """The number of elements of this rank's local tensor."""
        return self._larray.numel()

    @property
    def nbytes(self) -> int:
        """The bytes of the global array: ``size`` times the element size (also ``gnbytes``)."""
        return self.size * self._larray.element_size()

    gnbytes = nbytes

    @property
    def lnbytes(self) -> int:
        """The bytes of this rank's local tensor."""
        return self.lnumel * self._larray.element_size()

    # ---------------------------------------------------------------- layout
    @property
    def counts(self) -> tuple:
        """Every rank's extent along the split axis (collective the first time after the local
        tensor was replaced by hand; free otherwise)."""
        if self._split is None:
            return tuple([self._gshape[0] if self._gshape else 1] * self._comm.size)
        if self._counts is None:
            ext = torch.tensor([self._larray.shape[self._split]], dtype=torch.int64)
            self._counts = tuple(self._comm.handle.allgather(ext).tolist())
            shape = list(self._larray.shape)
            shape[self._split] = sum(self._counts)
            self._gshape = tuple(shape)
        return self._counts

    @property
    def offset(self) -> int:
        """Where this rank's block starts along the split axis."""
        if self._split is None:
            return 0
        return sum(self.counts[: self._comm.rank])

    def counts_displs(self) -> tuple:
        """Every rank's count and displacement along the split axis."""
        counts = self.counts
        return tuple(counts), tuple(offsets_of(counts))

    @property
    def lshape_map(self) -> torch.Tensor:
        """A (ranks, ndim) int64 tensor of every rank's local shape."""
        shape = self.gshape  # learns the layout again after larray was replaced by hand
        rows = torch.tensor([shape] * self._comm.size, dtype=torch.int64).reshape(
            self._comm.size, len(shape)
        )
        if self._split is not None:
            rows[:, self._split] = torch.tensor(self.counts, dtype=torch.int64)
        return rows

    def create_lshape_map(self, force_check: bool = False) -> torch.Tensor:
        """``lshape_map``, as Heat's method. With ``force_check`` every rank's extent along the
        split axis is learnt again (one allgather: every rank must call it)."""
        if force_check and self._split is not None:
            self._counts = None
        return self.lshape_map

    @property
    def balanced(self) -> bool:
        """Whether the layout is Heat's balanced one (known on every rank)."""
        return self.is_balanced()

    def is_balanced(self, force_check: bool = False) -> bool:
        """Whether every rank holds the rows of Heat's balanced layout (replicated arrays are).
        Needs no communication unless ``force_check`` makes every rank learn the extents again
        (one allgather: every rank must call it)."""
        if self._split is None:
            return True
        if force_check:
            self._counts = None
        return tuple(self.counts) == tuple(chunk_counts(self._gshape[self._split], self._comm.size))

    def is_distributed(self) -> bool:
        """True when the data is split over more than one rank."""
        return self._split is not None and self._comm.size > 1

    def __len__(self) -> int:
        if not self._gshape:
            raise TypeError("len() of a 0-d array")
        return self._gshape[0]
