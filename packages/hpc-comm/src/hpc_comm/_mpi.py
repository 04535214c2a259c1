"""The ``mpi`` backend: mpi4py on torch tensors, zero-copy for contiguous CPU tensors.

Buffers are handed to MPI by address (``data_ptr``) with an explicit datatype, so every torch dtype
works, nothing is pickled and nothing is copied. float16 and bfloat16 travel as 16-bit words and
are reduced by a user-defined operation that does the arithmetic in torch (a plain integer SUM on
their bits would be wrong). Messages longer than ``MAX_COUNT`` elements are cut into several calls.
"""

from __future__ import annotations

import os
import pickle
import sys
import warnings

from mpi4py import MPI

from . import _traffic
from ._launcher import ranks_per_node as _ranks_per_node
from ._ops import ReduceOp, torch_apply
from .communicator import (
    ANY_SOURCE,
    ANY_TAG,
    Communicator,
    Request,
    Status,
    _reduction_for,
    movement_only_dtypes,
    offsets,
)

# Largest element count of one MPI call (MPI counts are C ints). Tests lower it to exercise the
# splitting of long messages on small ones.
MAX_COUNT = 2**31 - 1

_fromaddress = (MPI.buffer if hasattr(MPI, "buffer") else MPI.memory).fromaddress
_TYPES: dict = {}
_CUSTOM_OPS: dict = {}
_PREDEFINED = {
    ReduceOp.SUM: MPI.SUM,
    ReduceOp.PROD: MPI.PROD,
    ReduceOp.MIN: MPI.MIN,
    ReduceOp.MAX: MPI.MAX,
    ReduceOp.BAND: MPI.BAND,
    ReduceOp.BOR: MPI.BOR,
}
_BOOL_OPS = {ReduceOp.BAND: MPI.LAND, ReduceOp.BOR: MPI.LOR}
_FAST_TYPES: dict = {}  # dtype -> (MPI datatype, item size) for the fast paths
_FAST_OPS: dict = {}  # (op as passed, dtype) -> MPI op, filled by the first general-path call
_TENSOR: list = []  # torch.Tensor, once torch is loaded
_MOVABLE: dict = {}  # every dtype the backend carries -> (MPI datatype, item size), for moves


def _fill_fast_types() -> None:
    import torch

    _TENSOR.append(torch.Tensor)
    for dtype in (
        torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
        torch.float32, torch.float64, torch.complex64, torch.complex128,
    ):  # fmt: skip
        _FAST_TYPES[dtype] = (_mpi_type(dtype), dtype.itemsize)
    _mpi_type(torch.float32)  # fills _TYPES
    _MOVABLE.update({dtype: (t, dtype.itemsize) for dtype, t in _TYPES.items()})


def _mpi_type(dtype):
    if not _TYPES:
        import torch

        _TYPES.update(
            {
                torch.bool: MPI.C_BOOL,
                torch.uint8: MPI.UINT8_T,
                torch.int8: MPI.INT8_T,
                torch.int16: MPI.INT16_T,
                torch.int32: MPI.INT32_T,
                torch.int64: MPI.INT64_T,
                torch.uint16: MPI.UINT16_T,
                torch.uint32: MPI.UINT32_T,
                torch.uint64: MPI.UINT64_T,
                torch.float16: MPI.UINT16_T,
                torch.bfloat16: MPI.UINT16_T,
                torch.float32: MPI.FLOAT,
                torch.float64: MPI.DOUBLE,
                torch.complex64: MPI.C_FLOAT_COMPLEX,
                torch.complex128: MPI.C_DOUBLE_COMPLEX,
            }
        )
        for dt in movement_only_dtypes():  # carried as raw words of their size
            _TYPES[dt] = MPI.UINT32_T if dt.itemsize == 4 else MPI.UINT8_T
    try:
        return _TYPES[dtype]
    except KeyError:
        raise TypeError(f"dtype {dtype} is not supported by the mpi backend") from None


def _half_op(op: ReduceOp, dtype):
    """A user-defined MPI operation that reduces 16-bit floats with torch arithmetic."""
    key = (op, dtype)
    if key not in _CUSTOM_OPS:
        import torch

        def combine(inbuf, inoutbuf, datatype):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # inbuf is read-only; we only read
                a = torch.frombuffer(inbuf, dtype=dtype)
                b = torch.frombuffer(inoutbuf, dtype=dtype)
            torch_apply(op, a, b)

        _CUSTOM_OPS[key] = MPI.Op.Create(combine, commute=True)
    return _CUSTOM_OPS[key]


def _mpi_op(op: ReduceOp, dtype):
    import torch

    if dtype in (torch.float16, torch.bfloat16):
        return _half_op(op, dtype)
    if dtype is torch.bool:
        return _BOOL_OPS[op]
    return _PREDEFINED[op]


def _cuda_aware() -> bool:
    forced = os.environ.get("HPC_COMM_CUDA_AWARE")
    if forced is not None:
        return forced not in ("", "0")
    query = getattr(MPI, "Query_cuda_support", None)
    try:
        return bool(query()) if query else False
    except Exception:  # an MPI without the MPIX extension
        return False


def _mem(buf, start: int = 0, count: int | None = None):
    """The bytes of elements [start, start + count) of flat contiguous ``buf``, by address."""
    n = buf.numel() - start if count is None else count
    size = buf.element_size()
    return _fromaddress(buf.data_ptr() + start * size, n * size)


def _pieces(n: int):
    """(start, count) ranges of at most MAX_COUNT elements that cover ``n`` elements."""
    if n <= MAX_COUNT:
        return [(0, n)]
    return [(s, min(MAX_COUNT, n - s)) for s in range(0, n, MAX_COUNT)]


def _wild(source: int, tag: int) -> tuple[int, int]:
    """hpc-comm's wildcards (-1) as the MPI library spells them."""
    return (
        MPI.ANY_SOURCE if source == ANY_SOURCE else source,
        MPI.ANY_TAG if tag == ANY_TAG else tag,
    )


def _status(st, nbytes: int | None = None) -> Status:
    return Status(
        st.Get_source(), st.Get_tag(), st.Get_count(MPI.BYTE) if nbytes is None else nbytes
    )


def _mpi_request(reqs: list) -> Request:
    if len(reqs) == 1:
        (r,) = reqs
        return Request(r.Test, r.Wait)
    return Request(lambda: MPI.Request.Testall(reqs), lambda: MPI.Request.Waitall(reqs))


def _on_host(method):
    """Run ``method`` on pinned host copies of CUDA tensors when MPI is not CUDA-aware."""

    def wrapper(self, *args):
        if not any(getattr(a, "is_cuda", False) for a in args) or self._cuda_aware:
            return method(self, *args)
        staged, host_args = [], []
        for a in args:
            if getattr(a, "is_cuda", False):
                host = a.to("cpu", copy=True).pin_memory()
                _traffic.record_copy(method.__name__.lstrip("_"))
                staged.append((a, host))
                a = host
            host_args.append(a)
        result = method(self, *host_args)
        if isinstance(result, Request):

            def copy_back():
                for dev, host in staged:
                    dev.copy_(host)

            return Request(result.test, result.wait, finish=copy_back, keep=(staged,))
        for dev, host in staged:
            dev.copy_(host)
        return result

    wrapper.__name__ = method.__name__
    return wrapper


class MPICommunicator(Communicator):
    """A communicator over an mpi4py ``MPI.Comm``."""

    backend = "mpi"

    def __init__(self, comm, node_id: int):
        super().__init__(comm.Get_rank(), comm.Get_size(), node_id)
        self._comm = comm
        self._aux = None  # a duplicate for internal point-to-point traffic, made on first need
        self._cuda_aware = _cuda_aware()

    @classmethod
    def world(cls) -> tuple[MPICommunicator, int]:
        """The world communicator (a duplicate of COMM_WORLD) and the ranks on this node."""
        comm = MPI.COMM_WORLD.Dup()
        shared = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
        node_id = shared.allreduce(comm.Get_rank(), op=MPI.MIN)
        local_ranks = shared.Get_size()
        shared.Free()
        emulated = _ranks_per_node()
        if emulated is not None:
            node_id = comm.Get_rank() // emulated * emulated
        return cls(comm, node_id), local_ranks

    @property
    def handle(self):
        return self._comm

    @property
    def library_version(self) -> str:
        return MPI.Get_library_version().strip().splitlines()[0]

    def _internal(self):
        # Collective on first use; only reached from collectives, which all ranks enter.
        if self._aux is None:
            self._aux = self._comm.Dup()
        return self._aux

    # -- fast paths of the three most frequent collectives
    # A CPU, contiguous, non-empty tensor of a dtype MPI reduces natively, with ``check`` and
    # traffic accounting off, goes straight to MPI: the general path's Python preamble costs
    # about 2 µs per call, and on MiB messages its effect on the two ranks' pipelining was 5-15%
    # of the call. Everything else (and every error) takes the general path.
    def _fast_spec(self, tensor):
        """(element count, MPI datatype, bytes) when ``tensor`` may take a fast path, else None."""
        if self.check or self._freed or _traffic._active:
            return None
        try:
            spec = _FAST_TYPES[tensor.dtype]
        except (KeyError, AttributeError, TypeError):
            if _FAST_TYPES or "torch" not in sys.modules:
                return None
            _fill_fast_types()
            return self._fast_spec(tensor)
        if not isinstance(tensor, _TENSOR[0]) or not tensor.is_cpu or not tensor.is_contiguous():
            return None
        n = tensor.numel()
        if n == 0 or n > MAX_COUNT:
            return None
        return n, spec[0], n * spec[1]

    def bcast(self, tensor, root: int = 0):
        # _fast_spec inlined: at 1 MiB every microsecond of Python here showed as 3-4% of the
        # call (the two ranks' copies pipeline; a delay on either side stalls both). A broadcast
        # only moves memory, so every dtype the backend carries goes this way (16-bit floats as
        # 16-bit words). [buffer, count, datatype] is what mpi4py parses fastest (a bare buffer
        # or MPI.BYTE counts cost 0.1-0.5 us more per call).
        if (
            _TENSOR
            and tensor.__class__ is _TENSOR[0]
            and root.__class__ is int
            and 0 <= root < self._size
            and not (self.check or self._freed or _traffic._active)
            and tensor.is_cpu
            and tensor.is_contiguous()
        ):
            spec = _MOVABLE.get(tensor.dtype)
            n = tensor.numel()
            if spec is not None and 0 < n <= MAX_COUNT:
                self._comm.Bcast([_fromaddress(tensor.data_ptr(), n * spec[1]), n, spec[0]], root)
                return tensor
        spec = self._fast_spec(tensor)  # fills the tables on first use
        if spec is None or root.__class__ is not int or not 0 <= root < self._size:
            return super().bcast(tensor, root)
        n, t, nbytes = spec
        self._comm.Bcast([_fromaddress(tensor.data_ptr(), nbytes), n, t], root)
        return tensor

    bcast.__doc__ = Communicator.bcast.__doc__

    def allreduce(self, tensor, op=ReduceOp.SUM):
        spec = self._fast_spec(tensor)
        try:
            mop = _FAST_OPS[op, tensor.dtype] if spec is not None else None
        except (KeyError, TypeError):  # first use of this pair, or an unhashable op
            mop = None
        if mop is None:
            result = super().allreduce(tensor, op)
            if spec is not None:  # the general path accepted the pair: remember its MPI op
                _FAST_OPS[op, tensor.dtype] = _mpi_op(_reduction_for(op, tensor), tensor.dtype)
            return result
        n, t, nbytes = spec
        self._comm.Allreduce(MPI.IN_PLACE, [_fromaddress(tensor.data_ptr(), nbytes), n, t], mop)
        return tensor

    allreduce.__doc__ = Communicator.allreduce.__doc__

    def allgather(self, tensor, dim: int = 0, out=None):
        # the common case inlined, as in bcast: plain contiguous CPU tensors of any dtype the
        # backend carries, into ``out`` along dim 0
        if (
            out is not None
            and _TENSOR
            and tensor.__class__ is _TENSOR[0]
            and out.__class__ is _TENSOR[0]
            and dim.__class__ is int
            and dim == 0
            and not (self.check or self._freed or _traffic._active)
            and out.dtype is tensor.dtype
            and tensor.is_cpu
            and out.is_cpu
            and tensor.is_contiguous()
            and out.is_contiguous()
        ):
            spec = _MOVABLE.get(tensor.dtype)
            n, size = tensor.numel(), self._size
            shape, out_shape = tensor.shape, out.shape
            if (
                spec is not None
                and 0 < n
                and n * size <= MAX_COUNT
                and out.numel() == n * size
                and len(shape) == len(out_shape) > 0
                and (
                    len(shape) == 1
                    or (out_shape[0] == shape[0] * size and out_shape[1:] == shape[1:])
                )
            ):
                t, nbytes = spec[0], n * spec[1]
                self._comm.Allgather(
                    [_fromaddress(tensor.data_ptr(), nbytes), n, t],
                    [_fromaddress(out.data_ptr(), nbytes * size), n, t],  # n from each rank
                )
                return out
        spec = self._fast_spec(tensor)
        if spec is None or out is None or dim.__class__ is not int or dim != 0:
            return super().allgather(tensor, dim, out)
        n, t, nbytes = spec
        size = self._size
        if (
            n * size > MAX_COUNT
            or not isinstance(out, _TENSOR[0])
            or out.dtype is not tensor.dtype
            or not out.is_cpu
            or not out.is_contiguous()
            or out.numel() != n * size
            or out.dim() != tensor.dim()
            or (
                tensor.dim() > 1
                and (out.shape[0] != tensor.shape[0] * size or out.shape[1:] != tensor.shape[1:])
            )
        ):
            return super().allgather(tensor, dim, out)
        self._comm.Allgather(
            [_fromaddress(tensor.data_ptr(), nbytes), n, t],
            [_fromaddress(out.data_ptr(), nbytes * size), n, t],  # n from each rank
        )
        return out

    allgather.__doc__ = Communicator.allgather.__doc__

    # -- collectives
    def _barrier(self) -> None:
        self._comm.Barrier()

    @_on_host
    def _bcast(self, buf, root):
        t = _mpi_type(buf.dtype)
        for start, n in _pieces(buf.numel()):
            self._comm.Bcast([_mem(buf, start, n), n, t], root)

    @_on_host
    def _ibcast(self, buf, root):
        t = _mpi_type(buf.dtype)
        return _mpi_request(
            [self._comm.Ibcast([_mem(buf, s, n), n, t], root) for s, n in _pieces(buf.numel())]
        )

    @_on_host
    def _allreduce(self, buf, op):
        t, mop = _mpi_type(buf.dtype), _mpi_op(op, buf.dtype)
        for start, n in _pieces(buf.numel()):
            self._comm.Allreduce(MPI.IN_PLACE, [_mem(buf, start, n), n, t], mop)

    @_on_host
    def _iallreduce(self, buf, op):
        t, mop = _mpi_type(buf.dtype), _mpi_op(op, buf.dtype)
        return _mpi_request(
            [
                self._comm.Iallreduce(MPI.IN_PLACE, [_mem(buf, s, n), n, t], mop)
                for s, n in _pieces(buf.numel())
            ]
        )

    @_on_host
    def _reduce(self, buf, op, root):
        t, mop = _mpi_type(buf.dtype), _mpi_op(op, buf.dtype)
        for start, n in _pieces(buf.numel()):
            msg = [_mem(buf, start, n), n, t]
            if self._rank == root:
                self._comm.Reduce(MPI.IN_PLACE, msg, mop, root)
            else:
                self._comm.Reduce(msg, None, mop, root)

    @_on_host
    def _ireduce(self, buf, op, root):
        t, mop = _mpi_type(buf.dtype), _mpi_op(op, buf.dtype)
        reqs = []
        for start, n in _pieces(buf.numel()):
            msg = [_mem(buf, start, n), n, t]
            if self._rank == root:
                reqs.append(self._comm.Ireduce(MPI.IN_PLACE, msg, mop, root))
            else:
                reqs.append(self._comm.Ireduce(msg, None, mop, root))
        return _mpi_request(reqs)

    @staticmethod
    def _fits(counts) -> bool:
        return sum(counts) <= MAX_COUNT

    @_on_host
    def _allgather(self, send, recv):
        n = send.numel()
        if n * self._size > MAX_COUNT:
            return self._allgatherv(send, recv, [n] * self._size)
        t = _mpi_type(send.dtype)
        self._comm.Allgather([_mem(send), n, t], [_mem(recv), n, t])

    @_on_host
    def _allgatherv(self, send, recv, counts):
        if not self._fits(counts):
            return self._exchange({r: send for r in range(self._size)}, _split_views(recv, counts))
        t = _mpi_type(send.dtype)
        self._comm.Allgatherv(
            [_mem(send), send.numel(), t], [_mem(recv), (counts, offsets(counts)), t]
        )

    @_on_host
    def _gatherv(self, send, recv, counts, root):
        if not self._fits(counts):
            recvs = _split_views(recv, counts) if self._rank == root else {}
            return self._exchange({root: send}, recvs)
        t = _mpi_type(send.dtype)
        target = [_mem(recv), (counts, offsets(counts)), t] if self._rank == root else None
        self._comm.Gatherv([_mem(send), send.numel(), t], target, root)

    @_on_host
    def _scatterv(self, send, recv, counts, root):
        if not self._fits(counts):
            sends = _split_views(send, counts) if self._rank == root else {}
            return self._exchange(sends, {root: recv})
        t = _mpi_type(recv.dtype)
        source = [_mem(send), (counts, offsets(counts)), t] if self._rank == root else None
        self._comm.Scatterv(source, [_mem(recv), recv.numel(), t], root)

    @_on_host
    def _alltoallv(self, send, send_counts, recv, recv_counts):
        if not (self._fits(send_counts) and self._fits(recv_counts)):
            return self._exchange(_split_views(send, send_counts), _split_views(recv, recv_counts))
        t = _mpi_type(send.dtype)
        self._comm.Alltoallv(
            [_mem(send), (send_counts, offsets(send_counts)), t],
            [_mem(recv), (recv_counts, offsets(recv_counts)), t],
        )

    @_on_host
    def _reduce_scatter(self, send, recv, counts, op):
        if not self._fits(counts):
            self._allreduce(send, op)
            start = offsets(counts)[self._rank]
            recv.copy_(send[start : start + counts[self._rank]])
            return
        t, mop = _mpi_type(send.dtype), _mpi_op(op, send.dtype)
        self._comm.Reduce_scatter(
            [_mem(send), send.numel(), t], [_mem(recv), recv.numel(), t], counts, mop
        )

    def _exchange(self, sends: dict, recvs: dict) -> None:
        """Point-to-point fallback for v-collectives whose counts overflow a C int."""
        comm, reqs = self._internal(), []
        for peer, view in recvs.items():
            if peer != self._rank:
                t = _mpi_type(view.dtype)
                reqs += [
                    comm.Irecv([_mem(view, s, n), n, t], peer, 0) for s, n in _pieces(view.numel())
                ]
        for peer, view in sends.items():
            if peer != self._rank:
                t = _mpi_type(view.dtype)
                reqs += [
                    comm.Isend([_mem(view, s, n), n, t], peer, 0) for s, n in _pieces(view.numel())
                ]
        if self._rank in recvs and self._rank in sends:
            recvs[self._rank].copy_(sends[self._rank])
        MPI.Request.Waitall(reqs)

    # -- point to point
    @_on_host
    def _send(self, buf, dest, tag):
        t = _mpi_type(buf.dtype)
        for start, n in _pieces(buf.numel()):
            self._comm.Send([_mem(buf, start, n), n, t], dest, tag)

    @_on_host
    def _isend(self, buf, dest, tag):
        t = _mpi_type(buf.dtype)
        return _mpi_request(
            [self._comm.Isend([_mem(buf, s, n), n, t], dest, tag) for s, n in _pieces(buf.numel())]
        )

    @_on_host
    def _recv(self, buf, source, tag):
        source, tag = _wild(source, tag)
        t, st, total = _mpi_type(buf.dtype), MPI.Status(), 0
        for start, n in _pieces(buf.numel()):
            self._comm.Recv([_mem(buf, start, n), n, t], source, tag, st)
            total += st.Get_count(MPI.BYTE)
            source, tag = st.Get_source(), st.Get_tag()  # later pieces come from the same sender
        return _status(st, total)

    @_on_host
    def _irecv(self, buf, source, tag):
        source, tag = _wild(source, tag)
        pieces = _pieces(buf.numel())
        if len(pieces) > 1 and (source == MPI.ANY_SOURCE or tag == MPI.ANY_TAG):
            raise ValueError(
                "irecv of a message longer than MAX_COUNT elements needs an explicit source and tag"
            )
        t = _mpi_type(buf.dtype)
        return _mpi_request(
            [self._comm.Irecv([_mem(buf, s, n), n, t], source, tag) for s, n in pieces]
        )

    def _probe(self, source, tag):
        source, tag = _wild(source, tag)
        st = MPI.Status()
        self._comm.Probe(source, tag, st)
        return _status(st)

    # -- objects
    def _bcast_obj(self, obj, root):
        return self._comm.bcast(obj, root)

    def _allgather_obj(self, obj):
        return self._comm.allgather(obj)

    def _gather_obj(self, obj, root):
        return self._comm.gather(obj, root)

    def _isend_obj(self, obj, dest, tag):
        payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        req = self._comm.Isend([payload, len(payload), MPI.BYTE], dest, tag)
        return Request(req.Test, req.Wait, keep=(payload,))

    def _iprobe(self, source, tag):
        source, tag = _wild(source, tag)
        st = MPI.Status()
        if self._comm.Iprobe(source, tag, st):
            return _status(st)
        return None

    def _recv_obj(self, source, tag):
        source, tag = _wild(source, tag)
        st = MPI.Status()
        message = self._comm.Mprobe(source, tag, st)  # matched probe: no other receive steals it
        buf = bytearray(st.Get_count(MPI.BYTE))
        message.Recv([buf, len(buf), MPI.BYTE])
        return pickle.loads(buf), _status(st)

    # -- sub-communicators
    def _split(self, color, key):
        sub = self._comm.Split(MPI.UNDEFINED if color is None else color, key)
        if sub == MPI.COMM_NULL:
            return None
        return MPICommunicator(sub, self._node_id)

    def _free(self):
        if self._aux is not None:
            self._aux.Free()
            self._aux = None
        if self._comm not in (MPI.COMM_WORLD, MPI.COMM_SELF, MPI.COMM_NULL):
            self._comm.Free()


def _split_views(flat, counts) -> dict:
    return {r: flat[o : o + c] for r, (o, c) in enumerate(zip(offsets(counts), counts))}
