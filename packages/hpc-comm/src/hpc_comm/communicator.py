"""The Communicator: collectives on torch tensors with one API for every backend.

The public methods here validate their arguments, bring tensors into the layout the backend wants
(contiguous, the gathered axis first) and count traffic; each backend implements a few primitives
on flat contiguous buffers (the methods whose names start with ``_`` and raise
NotImplementedError below).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _traffic
from ._ops import ReduceOp, as_op, effective_op

if TYPE_CHECKING:  # torch is imported lazily so object messaging works without it
    import torch

ANY_SOURCE = -1
ANY_TAG = -1
_MAX_DIMS = 16
_HEADER_LEN = 2 + _MAX_DIMS


@dataclass(frozen=True)
class Status:
    """Where a message came from, its tag and its payload size in bytes."""

    source: int
    tag: int
    nbytes: int


class Request:
    """A non-blocking operation in flight. ``wait()`` returns its result; ``test()`` polls.

    ``finish`` runs once, on completion, on the rank that owns the request (copying a staged buffer
    back, trimming padding); buffers in ``keep`` stay alive until then.
    """

    __slots__ = ("_done", "_finish", "_keep", "_result", "_test", "_wait")

    def __init__(
        self,
        test: Callable[[], bool],
        wait: Callable[[], Any],
        result: Any = None,
        finish: Callable[[], Any] | None = None,
        keep: tuple = (),
    ):
        self._test, self._wait = test, wait
        self._result, self._finish, self._keep = result, finish, keep
        self._done = False

    @classmethod
    def completed(cls, result: Any = None) -> Request:
        """A request that is already done (used where the backend had nothing to wait for)."""
        req = cls(lambda: True, lambda: None, result)
        req._done = True
        return req

    @classmethod
    def all_of(
        cls,
        requests: Sequence[Request],
        result: Any = None,
        finish: Callable[[], Any] | None = None,
    ) -> Request:
        """One request that completes when every request in ``requests`` has."""
        return cls(
            lambda: all([r.test() for r in requests]),
            lambda: [r.wait() for r in requests],
            result,
            finish,
        )

    @property
    def done(self) -> bool:
        """True once ``test()`` or ``wait()`` has seen the operation complete (it does not poll)."""
        return self._done

    def _complete(self, value: Any) -> None:
        self._done = True
        if self._finish is not None:
            finished = self._finish()
            if finished is not None:
                self._result = finished
        elif self._result is None:
            self._result = value
        self._keep = ()

    def test(self) -> bool:
        """True once the operation has completed (then its result is ready)."""
        if not self._done and self._test():
            self._complete(None)
        return self._done

    def wait(self) -> Any:
        """Block until the operation has completed and return its result."""
        if not self._done:
            self._complete(self._wait())
        return self._result


def chunk_counts(n: int, parts: int) -> list[int]:
    """Balanced split of ``n`` items over ``parts``: the first ``n % parts`` get one more."""
    if n < 0 or parts < 1:
        raise ValueError(f"chunk_counts needs n >= 0 and parts >= 1, got n={n}, parts={parts}")
    base, extra = divmod(n, parts)
    return [base + 1 if i < extra else base for i in range(parts)]


def offsets(counts: Sequence[int]) -> list[int]:
    """Exclusive prefix sums of ``counts`` (the displacements of each part)."""
    out, acc = [], 0
    for c in counts:
        out.append(acc)
        acc += c
    return out


_DTYPES: list = []
_DTYPE_CODES: dict = {}
_MOVEMENT_ONLY: list = []


def _dtype_table() -> list:
    """Every supported dtype, in the order that defines its code (built once)."""
    if not _DTYPES:
        import torch

        _MOVEMENT_ONLY.extend(
            getattr(torch, n)
            for n in [
                "complex32",
                "float8_e4m3fn",
                "float8_e5m2",
                "float8_e4m3fnuz",
                "float8_e5m2fnuz",
                "float8_e8m0fnu",
            ]
            if hasattr(torch, n)
        )
        _DTYPES.extend(
            [
                torch.bool,
                torch.uint8,
                torch.int8,
                torch.int16,
                torch.int32,
                torch.int64,
                torch.float16,
                torch.bfloat16,
                torch.float32,
                torch.float64,
                torch.complex64,
                torch.complex128,
                torch.uint16,
                torch.uint32,
                torch.uint64,
                *_MOVEMENT_ONLY,
            ]
        )
        _DTYPE_CODES.update((d, i) for i, d in enumerate(_DTYPES))
    return _DTYPES


def movement_only_dtypes() -> list:
    """Dtypes hpc-comm moves but cannot reduce (torch has no arithmetic on them)."""
    _dtype_table()
    return list(_MOVEMENT_ONLY)


def dtype_code(dtype) -> int:
    """A small integer for ``dtype`` that all ranks agree on (for header exchange)."""
    code = _DTYPE_CODES.get(dtype)
    if code is None:
        _dtype_table()
        code = _DTYPE_CODES.get(dtype)
        if code is None:
            raise TypeError(f"dtype {dtype} is not supported by hpc-comm")
    return code


def _require_tensor(tensor, name: str = "tensor"):
    import torch

    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    dtype_code(tensor.dtype)
    return tensor


_REDUCTIONS: dict = {}


def _reduction_for(op, tensor):
    """The operator to apply for ``op`` on ``tensor``'s dtype (checked once per pair, cached)."""
    import torch

    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    try:
        return _REDUCTIONS[op, tensor.dtype]
    except (KeyError, TypeError):  # TypeError: op is not hashable, rejected just below
        pass
    dtype_code(tensor.dtype)
    effective = effective_op(as_op(op), tensor.dtype)
    _REDUCTIONS[op, tensor.dtype] = effective
    return effective


def _normalize_dim(dim: int, ndim: int, name: str = "dim") -> int:
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"{name} must be an int, got {type(dim).__name__}")
    if not -ndim <= dim < ndim:
        raise ValueError(f"{name}={dim} is out of range for a tensor with {ndim} dimensions")
    return dim % ndim


def _as_1d_or_more(tensor):
    return tensor.reshape(1) if tensor.dim() == 0 else tensor


def _check_counts(counts, size: int, total: int | None, name: str = "counts") -> list[int]:
    try:
        counts = [int(c) for c in counts]
    except TypeError:
        raise TypeError(f"{name} must be a sequence of {size} integers") from None
    if len(counts) != size:
        raise ValueError(f"{name} must have one entry per rank ({size}), got {len(counts)}")
    if any(c < 0 for c in counts):
        raise ValueError(f"{name} must be non-negative, got {counts}")
    if total is not None and sum(counts) != total:
        raise ValueError(f"{name} must add up to the tensor's extent {total}, got {sum(counts)}")
    return counts


def _default_check() -> bool:
    return os.environ.get("HPC_COMM_CHECK", "") not in ("", "0")


class Communicator:
    """A group of ranks that exchange torch tensors and Python objects.

    Tensor operations work in place where MPI does (``allreduce``, ``bcast``, ``reduce``) and return
    new tensors where the result has another shape (``allgather``, ``alltoallv``, ...). Contiguous
    CPU tensors go to the backend without a copy; a non-contiguous tensor is staged through exactly
    one contiguous buffer.

    Validation: every rank checks its own arguments (types, ``root``, ``dim``, ``counts``) before any
    communication. Whether ranks agree with each other (same dtype, shape, root) is checked by an
    extra small allgather only when ``check`` is on (``HPC_COMM_CHECK=1`` or ``comm.check = True``),
    so that the fast path stays one call; then every rank raises the same ValueError.
    ``allgatherv``, ``gatherv``, ``scatterv`` and ``alltoallv`` exchange shapes anyway and always
    check them.
    """

    backend = "abstract"

    def __init__(self, rank: int, size: int, node_id: int = 0):
        self._rank = rank
        self._size = size
        self._node_id = node_id
        self.check = _default_check()
        self._children: list[Communicator] = []
        self._node: Communicator | None = None
        self._leaders: Communicator | None = None
        self._leaders_done = False
        self._freed = False
        self._parent: Communicator | None = None

    # ----------------------------------------------------------------- identity
    @property
    def rank(self) -> int:
        """This process's rank in the communicator (0 … size − 1)."""
        return self._rank

    @property
    def size(self) -> int:
        """Number of ranks in the communicator."""
        return self._size

    @property
    def node_id(self) -> int:
        """Identifier of this rank's node (emulated with ``HPC_COMM_RANKS_PER_NODE``)."""
        return self._node_id

    @property
    def handle(self) -> Any:
        """The backend's own object (an mpi4py communicator, a torch process group, or None)."""
        return None

    @property
    def freed(self) -> bool:
        """True after ``free()``; communicating on a freed communicator raises RuntimeError."""
        return self._freed

    def __repr__(self) -> str:
        return f"<{type(self).__name__} backend={self.backend} rank={self.rank} size={self.size}>"

    def _live(self) -> None:
        if self._freed:
            raise RuntimeError("this communicator has been freed")

    # ------------------------------------------------------------- validation
    def _check_root(self, root: int, name: str = "root") -> int:
        if not isinstance(root, int) or isinstance(root, bool):
            raise TypeError(f"{name} must be an int, got {type(root).__name__}")
        if not 0 <= root < self._size:
            raise ValueError(
                f"{name}={root} is not a rank of this communicator (size {self._size})"
            )
        return root

    def _check_peer(self, peer: int, name: str, allow_any: bool) -> int:
        if allow_any and peer == ANY_SOURCE:
            return peer
        return self._check_root(peer, name)

    @staticmethod
    def _check_tag(tag: int, allow_any: bool) -> int:
        if not isinstance(tag, int) or isinstance(tag, bool):
            raise TypeError(f"tag must be an int, got {type(tag).__name__}")
        if tag < 0 and not (allow_any and tag == ANY_TAG):
            raise ValueError(f"tag must be >= 0, got {tag}")
        return tag

    def _header(self, tensor, extra: Sequence[int] = ()) -> list[int]:
        shape = list(tensor.shape)
        if len(shape) > _MAX_DIMS:
            raise ValueError(f"tensors with more than {_MAX_DIMS} dimensions are not supported")
        return [
            dtype_code(tensor.dtype),
            tensor.dim(),
            *shape,
            *[0] * (_MAX_DIMS - len(shape)),
            *extra,
        ]

    def _exchange_headers(self, header: list[int]) -> list[list[int]]:
        import torch

        mine = torch.tensor(header, dtype=torch.int64)
        everyone = torch.empty(self._size * mine.numel(), dtype=torch.int64)
        self._allgatherv(mine, everyone, [mine.numel()] * self._size)
        return everyone.view(self._size, -1).tolist()

    def _agree(self, opname: str, tensor, extra: Sequence[int] = (), what: str = "") -> None:
        """With ``check`` on, make sure every rank passed the same dtype, shape and ``extra``."""
        if not self.check or self._size == 1:
            return
        rows = self._exchange_headers(self._header(tensor, extra))
        bad = [r for r, row in enumerate(rows) if row != rows[0]]
        if bad:
            raise ValueError(
                f"{opname}: ranks disagree on dtype, shape{what}: rank 0 has "
                f"{self._describe(rows[0], extra)}, rank {bad[0]} has "
                f"{self._describe(rows[bad[0]], extra)}"
            )

    @staticmethod
    def _describe(row: list[int], extra: Sequence[int]) -> str:
        dtype = _dtype_table()[row[0]]
        shape = tuple(row[2 : 2 + row[1]])
        tail = row[2 + _MAX_DIMS :]
        return f"dtype={dtype}, shape={shape}" + (f", {tail}" if extra else "")

    @staticmethod
    def _contiguous(tensor, opname: str):
        if tensor.is_contiguous():
            return tensor
        _traffic.record_copy(opname)
        return tensor.contiguous()

    # ------------------------------------------------------------ collectives
    def barrier(self) -> None:
        """Block until every rank has called ``barrier``."""
        self._live()
        _traffic.record("barrier")
        self._barrier()

    def _inplace(self, opname: str, tensor, op=None, root: int | None = None):
        """The preamble of the in-place operations (bcast, reduce, allreduce and their
        non-blocking forms): checks, the operator for this dtype, agreement across ranks with
        ``check`` on, a contiguous buffer and traffic accounting. Returns (buffer, flat, op)."""
        self._live()
        if op is None:
            _require_tensor(tensor)
        else:
            op = _reduction_for(op, tensor)
        if root is not None:
            self._check_root(root)
        if self.check:
            extra, what = ([], "") if root is None else ([root], ", root")
            self._agree(opname, tensor, extra, what)
        buf = tensor if tensor.is_contiguous() else self._contiguous(tensor, opname)
        if _traffic._active:
            nbytes = buf.numel() * buf.element_size()
            is_root = self._rank == root
            if root is None:
                _traffic.record(opname, sent=nbytes, received=nbytes)
            elif opname.endswith("bcast"):
                _traffic.record(opname, sent=nbytes * is_root, received=nbytes * (not is_root))
            else:
                _traffic.record(opname, sent=nbytes, received=nbytes * is_root)
        return buf, (buf if buf.dim() == 1 else buf.view(-1)), op

    def bcast(self, tensor: torch.Tensor, root: int = 0) -> torch.Tensor:
        """Broadcast ``tensor`` from ``root`` into ``tensor`` on every rank (in place)."""
        buf, flat, _ = self._inplace("bcast", tensor, root=root)
        self._bcast(flat, root)
        if buf is not tensor:
            tensor.copy_(buf)
        return tensor

    def ibcast(self, tensor: torch.Tensor, root: int = 0) -> Request:
        """Non-blocking ``bcast``; ``wait()`` returns ``tensor``."""
        buf, flat, _ = self._inplace("ibcast", tensor, root=root)
        return self._wrap_inplace(self._ibcast(flat, root), tensor, buf)

    def allreduce(self, tensor: torch.Tensor, op: ReduceOp | str = ReduceOp.SUM) -> torch.Tensor:
        """Reduce ``tensor`` element-wise over all ranks with ``op``; every rank gets the result
        in ``tensor`` (in place), which is also returned."""
        buf, flat, op = self._inplace("allreduce", tensor, op)
        self._allreduce(flat, op)
        if buf is not tensor:
            tensor.copy_(buf)
        return tensor

    def iallreduce(self, tensor: torch.Tensor, op: ReduceOp | str = ReduceOp.SUM) -> Request:
        """Non-blocking ``allreduce``; ``wait()`` returns ``tensor`` holding the result."""
        buf, flat, op = self._inplace("iallreduce", tensor, op)
        return self._wrap_inplace(self._iallreduce(flat, op), tensor, buf)

    def reduce(
        self, tensor: torch.Tensor, op: ReduceOp | str = ReduceOp.SUM, root: int = 0
    ) -> torch.Tensor:
        """Reduce ``tensor`` over all ranks into ``tensor`` on ``root`` (in place). On the other
        ranks ``tensor`` is left as it was."""
        buf, flat, op = self._inplace("reduce", tensor, op, root)
        self._reduce(flat, op, root)
        if buf is not tensor and self._rank == root:
            tensor.copy_(buf)
        return tensor

    def ireduce(
        self, tensor: torch.Tensor, op: ReduceOp | str = ReduceOp.SUM, root: int = 0
    ) -> Request:
        """Non-blocking ``reduce``; ``wait()`` returns ``tensor``."""
        buf, flat, op = self._inplace("ireduce", tensor, op, root)
        req = self._ireduce(flat, op, root)
        if self._rank != root:
            return Request.all_of([req], result=tensor)
        return self._wrap_inplace(req, tensor, buf)

    @staticmethod
    def _wrap_inplace(req: Request, tensor, buf) -> Request:
        if buf is tensor:
            return Request.all_of([req], result=tensor)

        def copy_back():
            tensor.copy_(buf)
            return tensor

        return Request(req.test, req.wait, finish=copy_back, keep=(buf,))

    def allgather(
        self, tensor: torch.Tensor, dim: int = 0, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Concatenate every rank's ``tensor`` along ``dim``; all ranks pass the same shape.

        A 0-d tensor is treated as shape ``(1,)``, so gathering scalars gives a vector. Pass a
        preallocated ``out`` (``dim`` 0 only) to reuse its memory across calls: allocating a
        large result anew on every call costs more than the communication.
        """
        import torch

        self._live()
        _require_tensor(tensor)
        tensor = _as_1d_or_more(tensor)
        dim = _normalize_dim(dim, tensor.dim())
        if self.check:
            self._agree("allgather", tensor)
        send = tensor if tensor.is_contiguous() else self._contiguous(tensor, "allgather")
        n = send.numel()
        if _traffic._active:
            size = n * send.element_size()
            _traffic.record("allgather", sent=size, received=size * self._size)
        flat_send = send if send.dim() == 1 else send.view(-1)
        if dim == 0:
            shape = (tensor.shape[0] * self._size, *tensor.shape[1:])
            if out is None:
                out = torch.empty(shape, dtype=tensor.dtype, device=tensor.device)
            elif tuple(out.shape) != shape or out.dtype != tensor.dtype or not out.is_contiguous():
                raise ValueError(
                    f"out must be a contiguous {tensor.dtype} tensor of shape {shape}, got "
                    f"{'contiguous ' if out.is_contiguous() else 'non-contiguous '}{out.dtype} "
                    f"{tuple(out.shape)}"
                )
            self._allgather(flat_send, out.view(-1))
            return out
        if out is not None:
            raise ValueError("out is only supported with dim=0")
        stacked = torch.empty((self._size, *tensor.shape), dtype=tensor.dtype, device=tensor.device)
        self._allgather(flat_send, stacked.view(-1))
        return torch.cat(stacked.unbind(0), dim=dim)

    def allgatherv(self, tensor: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """Concatenate every rank's ``tensor`` along ``dim``; extents along ``dim`` may differ
        (including zero), all other dimensions and the dtype must agree (always checked)."""
        self._live()
        _require_tensor(tensor)
        tensor = _as_1d_or_more(tensor)
        dim = _normalize_dim(dim, tensor.dim())
        shapes = self._ragged_shapes("allgatherv", tensor, dim)
        send = self._contiguous(tensor, "allgatherv")
        counts = [_numel(s) for s in shapes]
        itemsize = send.element_size()
        _traffic.record("allgatherv", sent=send.numel() * itemsize, received=sum(counts) * itemsize)
        flat = _empty_like_flat(tensor, sum(counts))
        self._allgatherv(send.view(-1), flat, counts)
        return _assemble(flat, shapes, dim)

    def _ragged_shapes(self, opname: str, tensor, dim: int) -> list[list[int]]:
        """Every rank's shape; raise the same ValueError everywhere if they disagree off ``dim``."""
        rows = self._exchange_headers(self._header(tensor))
        shapes = [row[2 : 2 + row[1]] for row in rows]
        mine = list(tensor.shape)
        for r, row in enumerate(rows):
            other = shapes[r]
            if (
                row[0] != rows[0][0]
                or len(other) != len(mine)
                or any(a != b for i, (a, b) in enumerate(zip(other, shapes[0])) if i != dim)
            ):
                raise ValueError(
                    f"{opname}: all ranks must agree on dtype and on every dimension but dim={dim}: "
                    f"rank 0 has {self._describe(rows[0], ())}, rank {r} has "
                    f"{self._describe(row, ())}"
                )
        return shapes

    def gatherv(self, tensor: torch.Tensor, dim: int = 0, root: int = 0) -> torch.Tensor | None:
        """Concatenate every rank's ``tensor`` along ``dim`` on ``root`` (extents may differ);
        returns the result on ``root`` and None elsewhere."""
        self._live()
        _require_tensor(tensor)
        tensor = _as_1d_or_more(tensor)
        dim = _normalize_dim(dim, tensor.dim())
        self._check_root(root)
        shapes = self._ragged_shapes("gatherv", tensor, dim)
        send = self._contiguous(tensor, "gatherv")
        counts = [_numel(s) for s in shapes]
        itemsize = send.element_size()
        is_root = self._rank == root
        _traffic.record(
            "gatherv",
            sent=send.numel() * itemsize,
            received=sum(counts) * itemsize if is_root else 0,
        )
        flat = _empty_like_flat(tensor, sum(counts)) if is_root else None
        self._gatherv(send.view(-1), flat, counts, root)
        return _assemble(flat, shapes, dim) if is_root else None

    def scatterv(
        self,
        tensor: torch.Tensor | None,
        counts: Sequence[int] | None = None,
        dim: int = 0,
        root: int = 0,
    ) -> torch.Tensor:
        """Cut ``tensor`` (given on ``root``; others may pass None) along ``dim`` into pieces of
        ``counts[i]`` slices (default: the balanced ``chunk_counts``) and give piece i to rank i."""
        import torch

        self._live()
        self._check_root(root)
        is_root = self._rank == root
        header = None
        if is_root:
            _require_tensor(tensor)
            tensor = _as_1d_or_more(tensor)
            dim = _normalize_dim(dim, tensor.dim())
            extent = tensor.shape[dim]
            counts = (
                chunk_counts(extent, self._size)
                if counts is None
                else _check_counts(counts, self._size, extent)
            )
            header = torch.tensor([*self._header(tensor), dim, *counts], dtype=torch.int64)
        else:
            header = torch.empty(_HEADER_LEN + 1 + self._size, dtype=torch.int64)
        self._bcast(header, root)
        row = header.tolist()
        dtype = _dtype_table()[row[0]]
        shape = row[2 : 2 + row[1]]
        dim = row[_HEADER_LEN]
        counts = row[_HEADER_LEN + 1 :]
        piece_shapes = [[*shape[:dim], c, *shape[dim + 1 :]] for c in counts]
        device = tensor.device if is_root else None
        out = torch.empty(piece_shapes[self._rank], dtype=dtype, device=device)
        send = None
        if is_root:
            if tensor.device != out.device:
                out = out.to(tensor.device)
            send = _pack(tensor, counts, dim, "scatterv").view(-1)
        itemsize = out.element_size()
        _traffic.record(
            "scatterv",
            sent=send.numel() * itemsize if is_root else 0,
            received=out.numel() * itemsize,
        )
        self._scatterv(send, out.view(-1), [_numel(s) for s in piece_shapes], root)
        return out

    def alltoallv(self, tensor: torch.Tensor, counts: Sequence[int], dim: int = 0) -> torch.Tensor:
        """Send ``counts[i]`` consecutive slices of ``tensor`` along ``dim`` to rank i; return the
        pieces received from ranks 0..size-1 concatenated along ``dim``. All other dimensions must
        agree across ranks (checked with ``check`` on)."""
        import torch

        self._live()
        _require_tensor(tensor)
        tensor = _as_1d_or_more(tensor)
        dim = _normalize_dim(dim, tensor.dim())
        counts = _check_counts(counts, self._size, tensor.shape[dim])
        if self.check and self._size > 1:
            probe = tensor.narrow(dim, 0, 0)
            self._agree("alltoallv", probe, [], "")
        slice_numel = _numel([s for i, s in enumerate(tensor.shape) if i != dim])
        send_counts = torch.tensor(counts, dtype=torch.int64)
        recv_counts = torch.empty(self._size, dtype=torch.int64)
        self._alltoallv(send_counts, [1] * self._size, recv_counts, [1] * self._size)
        rcounts = recv_counts.tolist()
        send = _pack(tensor, counts, dim, "alltoallv")
        out_shape = list(tensor.shape)
        out_shape[dim] = sum(rcounts)
        itemsize = tensor.element_size()
        _traffic.record(
            "alltoallv",
            sent=send.numel() * itemsize,
            received=sum(rcounts) * slice_numel * itemsize,
        )
        flat = _empty_like_flat(tensor, sum(rcounts) * slice_numel)
        self._alltoallv(
            send.view(-1),
            [c * slice_numel for c in counts],
            flat,
            [c * slice_numel for c in rcounts],
        )
        shapes = [[*out_shape[:dim], c, *out_shape[dim + 1 :]] for c in rcounts]
        return _assemble(flat, shapes, dim)

    def reduce_scatter(
        self,
        tensor: torch.Tensor,
        op: ReduceOp | str = ReduceOp.SUM,
        counts: Sequence[int] | None = None,
        dim: int = 0,
    ) -> torch.Tensor:
        """Reduce ``tensor`` element-wise over all ranks with ``op`` and give rank i the i-th piece
        along ``dim`` (``counts[i]`` slices; default the balanced ``chunk_counts``)."""
        import torch

        self._live()
        _require_tensor(tensor)
        tensor = _as_1d_or_more(tensor)
        op = effective_op(as_op(op), tensor.dtype)
        dim = _normalize_dim(dim, tensor.dim())
        extent = tensor.shape[dim]
        counts = (
            chunk_counts(extent, self._size)
            if counts is None
            else _check_counts(counts, self._size, extent)
        )
        self._agree("reduce_scatter", tensor, counts, ", counts")
        shapes = [[*tensor.shape[:dim], c, *tensor.shape[dim + 1 :]] for c in counts]
        send = _pack(tensor, counts, dim, "reduce_scatter")
        out = torch.empty(shapes[self._rank], dtype=tensor.dtype, device=tensor.device)
        itemsize = tensor.element_size()
        _traffic.record(
            "reduce_scatter", sent=send.numel() * itemsize, received=out.numel() * itemsize
        )
        self._reduce_scatter(send.view(-1), out.view(-1), [_numel(s) for s in shapes], op)
        return out

    # ---------------------------------------------------------- point to point
    def send(self, tensor: torch.Tensor, dest: int, tag: int = 0) -> None:
        """Send ``tensor`` to rank ``dest`` (blocking until the buffer may be reused)."""
        self._live()
        _require_tensor(tensor)
        self._check_peer(dest, "dest", allow_any=False)
        self._check_tag(tag, allow_any=False)
        buf = self._contiguous(tensor, "send")
        _traffic.record("send", sent=buf.numel() * buf.element_size())
        self._send(buf.view(-1), dest, tag)

    def isend(self, tensor: torch.Tensor, dest: int, tag: int = 0) -> Request:
        """Non-blocking ``send``; do not modify ``tensor`` before ``wait()``."""
        self._live()
        _require_tensor(tensor)
        self._check_peer(dest, "dest", allow_any=False)
        self._check_tag(tag, allow_any=False)
        buf = self._contiguous(tensor, "isend")
        _traffic.record("isend", sent=buf.numel() * buf.element_size())
        req = self._isend(buf.view(-1), dest, tag)
        return Request(req.test, req.wait, keep=(buf,))

    def recv(self, tensor: torch.Tensor, source: int = ANY_SOURCE, tag: int = ANY_TAG) -> Status:
        """Receive into ``tensor`` (in place) from ``source`` (any by default); return the Status.
        A message larger than ``tensor`` is an error raised on the receiving rank."""
        self._live()
        _require_tensor(tensor)
        self._check_peer(source, "source", allow_any=True)
        self._check_tag(tag, allow_any=True)
        buf = self._contiguous(tensor, "recv")
        _traffic.record("recv", received=buf.numel() * buf.element_size())
        status = self._recv(buf.view(-1), source, tag)
        if buf is not tensor:
            tensor.copy_(buf)
        return status

    def irecv(self, tensor: torch.Tensor, source: int = ANY_SOURCE, tag: int = ANY_TAG) -> Request:
        """Non-blocking ``recv``; ``wait()`` returns ``tensor`` filled with the message."""
        self._live()
        _require_tensor(tensor)
        self._check_peer(source, "source", allow_any=True)
        self._check_tag(tag, allow_any=True)
        buf = self._contiguous(tensor, "irecv")
        _traffic.record("irecv", received=buf.numel() * buf.element_size())
        return self._wrap_inplace(self._irecv(buf.view(-1), source, tag), tensor, buf)

    def probe(self, source: int = ANY_SOURCE, tag: int = ANY_TAG) -> Status:
        """Block until a tensor message matching ``source``/``tag`` is pending; return its Status
        (``nbytes`` tells the receive buffer's size). Not for messages sent with ``isend_obj``."""
        self._live()
        self._check_peer(source, "source", allow_any=True)
        self._check_tag(tag, allow_any=True)
        return self._probe(source, tag)

    # --------------------------------------------------------- Python objects
    def bcast_obj(self, obj: Any = None, root: int = 0) -> Any:
        """Broadcast a picklable object from ``root``; every rank returns it."""
        self._live()
        self._check_root(root)
        _traffic.record("bcast_obj")
        return self._bcast_obj(obj, root)

    def allgather_obj(self, obj: Any) -> list:
        """Every rank's object, in rank order, on every rank."""
        self._live()
        _traffic.record("allgather_obj")
        return self._allgather_obj(obj)

    def gather_obj(self, obj: Any, root: int = 0) -> list | None:
        """Every rank's object, in rank order, on ``root``; None elsewhere."""
        self._live()
        self._check_root(root)
        _traffic.record("gather_obj")
        return self._gather_obj(obj, root)

    def send_obj(self, obj: Any, dest: int, tag: int = 0) -> None:
        """Send a picklable object to ``dest`` (blocking)."""
        self.isend_obj(obj, dest, tag).wait()

    def isend_obj(self, obj: Any, dest: int, tag: int = 0) -> Request:
        """Send a picklable object to ``dest`` without blocking; keep the Request until done."""
        self._live()
        self._check_peer(dest, "dest", allow_any=False)
        self._check_tag(tag, allow_any=False)
        _traffic.record("isend_obj")
        return self._isend_obj(obj, dest, tag)

    def iprobe(self, source: int = ANY_SOURCE, tag: int = ANY_TAG) -> Status | None:
        """The Status of a pending object message (sent with ``isend_obj``/``send_obj``) that
        matches ``source`` and ``tag``, or None when there is none yet. Never blocks."""
        self._live()
        self._check_peer(source, "source", allow_any=True)
        self._check_tag(tag, allow_any=True)
        return self._iprobe(source, tag)

    def recv_obj(
        self, source: int = ANY_SOURCE, tag: int = ANY_TAG, status: list | None = None
    ) -> Any:
        """Receive an object sent with ``isend_obj``/``send_obj``. If ``status`` is a list, the
        message's Status is appended to it."""
        self._live()
        self._check_peer(source, "source", allow_any=True)
        self._check_tag(tag, allow_any=True)
        _traffic.record("recv_obj")
        obj, st = self._recv_obj(source, tag)
        if status is not None:
            status.append(st)
        return obj

    # ------------------------------------------------------ sub-communicators
    def split(self, color: int | None, key: int | None = None) -> Communicator | None:
        """Partition the ranks by ``color``; ranks of one color form a new communicator ordered by
        ``key`` (default: the current rank). Ranks passing ``color=None`` get None. Free the result
        with ``free()`` or use it as a context manager."""
        self._live()
        if color is not None and (
            not isinstance(color, int) or isinstance(color, bool) or color < 0
        ):
            raise ValueError(f"color must be a non-negative int or None, got {color!r}")
        if key is None:
            key = self._rank
        if not isinstance(key, int) or isinstance(key, bool):
            raise TypeError(f"key must be an int, got {type(key).__name__}")
        _traffic.record("split")
        child = self._split(color, key)
        if child is not None:
            child._parent = self
            self._children.append(child)
        return child

    def node(self) -> Communicator:
        """The ranks of this communicator on this rank's node (cached; freed with this one)."""
        self._live()
        if self._node is None:
            self._node = self.split(self._node_id, self._rank)
        return self._node

    def leaders(self) -> Communicator | None:
        """One rank per node (each node's first rank); None on the other ranks. Cached."""
        self._live()
        if not self._leaders_done:
            self._leaders = self.split(0 if self.node().rank == 0 else None, self._rank)
            self._leaders_done = True
        return self._leaders

    def free(self) -> None:
        """Release this communicator and every communicator split from it. Idempotent."""
        if self._freed:
            return
        for child in list(self._children):
            child.free()
        self._node = self._leaders = None
        self._free()
        self._freed = True
        if self._parent is not None:
            self._parent._children.remove(self)
            self._parent = None

    def __enter__(self) -> Communicator:
        return self

    def __exit__(self, *exc) -> None:
        self.free()

    # ------------------------------------------------ primitives per backend
    def _barrier(self) -> None:
        raise NotImplementedError

    def _bcast(self, buf, root: int) -> None:
        raise NotImplementedError

    def _ibcast(self, buf, root: int) -> Request:
        raise NotImplementedError

    def _allreduce(self, buf, op: ReduceOp) -> None:
        raise NotImplementedError

    def _iallreduce(self, buf, op: ReduceOp) -> Request:
        raise NotImplementedError

    def _reduce(self, buf, op: ReduceOp, root: int) -> None:
        raise NotImplementedError

    def _ireduce(self, buf, op: ReduceOp, root: int) -> Request:
        raise NotImplementedError

    def _allgatherv(self, send, recv, counts: list[int]) -> None:
        raise NotImplementedError

    def _allgather(self, send, recv) -> None:
        """Every rank sends the same number of elements (a backend may do this faster)."""
        self._allgatherv(send, recv, [send.numel()] * self._size)

    def _gatherv(self, send, recv, counts: list[int], root: int) -> None:
        raise NotImplementedError

    def _scatterv(self, send, recv, counts: list[int], root: int) -> None:
        raise NotImplementedError

    def _alltoallv(self, send, send_counts: list[int], recv, recv_counts: list[int]) -> None:
        raise NotImplementedError

    def _reduce_scatter(self, send, recv, counts: list[int], op: ReduceOp) -> None:
        raise NotImplementedError

    def _send(self, buf, dest: int, tag: int) -> None:
        raise NotImplementedError

    def _isend(self, buf, dest: int, tag: int) -> Request:
        raise NotImplementedError

    def _recv(self, buf, source: int, tag: int) -> Status:
        raise NotImplementedError

    def _irecv(self, buf, source: int, tag: int) -> Request:
        raise NotImplementedError

    def _probe(self, source: int, tag: int) -> Status:
        raise NotImplementedError

    def _bcast_obj(self, obj: Any, root: int) -> Any:
        raise NotImplementedError

    def _allgather_obj(self, obj: Any) -> list:
        raise NotImplementedError

    def _gather_obj(self, obj: Any, root: int) -> list | None:
        raise NotImplementedError

    def _isend_obj(self, obj: Any, dest: int, tag: int) -> Request:
        raise NotImplementedError

    def _iprobe(self, source: int, tag: int) -> Status | None:
        raise NotImplementedError

    def _recv_obj(self, source: int, tag: int) -> tuple[Any, Status]:
        raise NotImplementedError

    def _split(self, color: int | None, key: int) -> Communicator | None:
        raise NotImplementedError

    def _free(self) -> None:
        raise NotImplementedError


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _empty_like_flat(tensor, numel: int):
    import torch

    return torch.empty(numel, dtype=tensor.dtype, device=tensor.device)


def _assemble(flat, shapes: list[list[int]], dim: int):
    """Turn the concatenation of every rank's contiguous piece into one tensor joined on ``dim``."""
    import torch

    if dim == 0:
        return flat.view(sum(s[0] for s in shapes), *shapes[0][1:])
    pieces = torch.split(flat, [_numel(s) for s in shapes])
    return torch.cat([p.view(s) for p, s in zip(pieces, shapes)], dim=dim)


def _pack(tensor, counts: list[int], dim: int, opname: str):
    """``tensor`` laid out as the consecutive pieces ``counts`` cut along ``dim`` (a view when
    ``dim`` is 0 and the tensor is contiguous, else one copy)."""
    import torch

    if dim == 0:
        return Communicator._contiguous(tensor, opname)
    _traffic.record_copy(opname)
    pieces = torch.split(tensor, counts, dim=dim)
    return torch.cat([p.reshape(-1) for p in pieces])
