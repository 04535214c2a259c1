"""The ``torch`` backend: torch.distributed (gloo on CPU, NCCL for CUDA tensors) on torch tensors.

Start-up. Under torchrun (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set) the default process group
is made with ``env://``. Under an MPI launcher, rank 0 opens a TCPStore on a port the OS picks
(free by construction, no race) and sends ``(address, port)`` to the others over
``MPI.COMM_WORLD``; mpi4py is imported only then. With no launcher the process is a world of one.
A default group the user made already is reused as it is. ``HPC_COMM_TORCH_BACKEND=gloo|nccl``
picks the library; NCCL is also chosen when CUDA is available and ``LOCAL_RANK`` is set. NCCL
groups are made as ``cpu:gloo,cuda:nccl``, so CPU tensors (headers, pickled objects) still travel
over gloo.

Data types. Everything that only moves data (bcast, the gathers and scatters, all-to-all,
messages) travels as the raw bytes of the buffer (a ``uint8`` view, no copy), so every dtype
works, including those gloo rejects (int16, uint16/32/64, float8, complex32). Reductions use the
library's own operators where it has them and otherwise change the representation on the way:

* bool: bytes reduced with MIN (logical and) and MAX (logical or), in place.
* int16 and uint16: widened to int32 (one copy each way). SUM and PROD wrap exactly as int16
  arithmetic does (the low 16 bits of a product or sum do not depend on the higher ones), MIN and
  MAX are exact (uint16 is zero-extended).
* uint32 and uint64: SUM, PROD, BAND and BOR on the signed view of the same width, in place (same
  bits modulo 2**32 or 2**64). MIN and MAX: uint32 zero-extended to int64; uint64 with its top
  bit flipped, which maps unsigned order onto signed order (one copy each way).
* complex SUM: the real view (pairs of floats), in place. Complex PROD, and any operator the
  library lacks for a dtype: the tensors of all ranks are gathered and reduced locally in rank
  order (``size`` times the tensor's memory on the receiving ranks; used only where nothing
  better exists).
* float16 and bfloat16 use gloo's own 16-bit arithmetic (each addition rounded to the format, as
  torch does on CPU).

``reduce`` works on a copy on the non-root ranks, because gloo's reduce uses its input as scratch
space there. ``reduce_scatter`` is an all-to-all of the pieces followed by a local reduction in
rank order: every rank sends and receives (size-1)/size of the tensor, the least any
reduce-scatter moves, at the price of ``size`` pieces of scratch memory.

Messages. torch.distributed has no probe, no any-tag receive and no way to learn a message's size
before receiving it, so every message is a small header ``[nbytes, tag]`` on a reserved tag,
received from any source, followed by its bytes on a second reserved tag. A receive takes headers
as they come: a message that matches a posted receive goes straight into that buffer, any other is
received into a private buffer and kept for a later ``recv``/``probe``/``recv_obj`` (one copy).
Tensor and object messages use separate tags. Sends to oneself are delivered locally. A blocking
``send`` of at most ``EAGER_LIMIT`` bytes (and every ``isend_obj`` of a pickle that small) copies
the data and returns at once, as MPI's eager protocol does; larger sends complete only when the
receiver has taken them.

Sub-communicators are registered torch process groups named after their parent and the split
(``hc0.3.1``): all members agree on that name, and it is never reused. (``dist.new_group`` with
``use_local_synchronization=True`` names groups after the number of groups alive in each process,
which differs between ranks once some of them took part in a split the others did not, and
repeats after a group is destroyed; both hang the rendezvous.)

Limits of this backend: a receive posted with ``irecv`` and never completed keeps matching
messages, as in MPI; gloo's timeout (30 minutes by default) bounds every wait; a rank's hostname
must resolve to an address the other nodes can reach (or set MASTER_ADDR), and gloo picks its
network interface the same way (``GLOO_SOCKET_IFNAME`` overrides it).
"""

from __future__ import annotations

import atexit
import os
import pickle
import queue
import socket
import threading

import torch
import torch.distributed as dist

from . import _launcher
from ._ops import ReduceOp, torch_apply
from .communicator import ANY_SOURCE, ANY_TAG, Communicator, Request, Status, offsets

# Blocking sends up to this many bytes are buffered (copied) and return at once.
EAGER_LIMIT = 64 * 1024

# Reserved torch tags of the message protocol ("HC" in the high bytes).
_TAG_BASE = 0x48430000
_TENSOR_HEADER, _TENSOR_DATA = _TAG_BASE, _TAG_BASE + 1
_OBJECT_HEADER, _OBJECT_DATA = _TAG_BASE + 2, _TAG_BASE + 3

_INT64_MIN = -(2**63)
_U8 = torch.uint8

_TORCH_OPS = {
    ReduceOp.SUM: dist.ReduceOp.SUM,
    ReduceOp.PROD: dist.ReduceOp.PRODUCT,
    ReduceOp.MIN: dist.ReduceOp.MIN,
    ReduceOp.MAX: dist.ReduceOp.MAX,
    ReduceOp.BAND: dist.ReduceOp.BAND,
    ReduceOp.BOR: dist.ReduceOp.BOR,
}

_roots = 0  # world communicators made in this process (they name the groups split from them)


# ------------------------------------------------------------------------------ start-up
def torch_backend(environ=os.environ) -> str:
    """``gloo`` or ``nccl``: ``HPC_COMM_TORCH_BACKEND`` if set, else nccl when CUDA is available
    and the launcher set ``LOCAL_RANK``, else gloo."""
    forced = environ.get("HPC_COMM_TORCH_BACKEND", "").strip().lower()
    if forced:
        if forced not in ("gloo", "nccl"):
            raise ValueError(f"HPC_COMM_TORCH_BACKEND must be gloo or nccl, got {forced!r}")
        return forced
    if "LOCAL_RANK" in environ and torch.cuda.is_available():
        return "nccl"
    return "gloo"


def _host_address() -> str:
    """The address other nodes reach this one at: MASTER_ADDR if set, else the hostname's."""
    if os.environ.get("MASTER_ADDR"):
        return os.environ["MASTER_ADDR"]
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def _init_default_group(backend: str) -> None:
    spec = "cpu:gloo,cuda:nccl" if backend == "nccl" else "gloo"
    if _launcher.under_torch_launcher():
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(spec, init_method="env://")
    elif _launcher.under_mpi_launcher():
        try:
            from mpi4py import MPI
        except ImportError as exc:
            raise ImportError(
                "the torch backend under an MPI launcher needs mpi4py to exchange the rendezvous "
                "address (pip install 'hpc-comm[mpich]'), or start the job with torchrun"
            ) from exc
        mpi = MPI.COMM_WORLD
        rank, size = mpi.Get_rank(), mpi.Get_size()
        store = None
        if rank == 0:
            addr = _host_address()
            # Port 0: the OS picks a free port while the store binds it, so nobody can take it
            # between choosing and binding.
            store = dist.TCPStore(addr, 0, size, is_master=True, wait_for_workers=False)
            where = (addr, store.port)
        else:
            where = None
        addr, port = mpi.bcast(where, root=0)
        if rank != 0:
            store = dist.TCPStore(addr, port, size, is_master=False)
        if backend == "nccl":
            local = os.environ.get("LOCAL_RANK") or os.environ.get("MPI_LOCALRANKID")
            local = local or os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK")
            torch.cuda.set_device(int(local) if local else rank % torch.cuda.device_count())
        dist.init_process_group(spec, store=store, rank=rank, world_size=size)
    else:
        dist.init_process_group(spec, store=dist.HashStore(), rank=0, world_size=1)
    # Groups left alive at interpreter exit can abort the process ("terminate called without an
    # active exception" from gloo's threads); destroy what we made.
    atexit.register(_shutdown)


def _shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _new_group(world_ranks: list[int], name: str, backend=None):
    """A torch process group of ``world_ranks`` (in that order: group rank i is world_ranks[i])
    named ``name``, made by its members only, registered like one from ``dist.new_group``.

    ``dist.new_group`` cannot be given a name, and the names it makes itself are not agreed on
    between ranks (see the module docstring), so this does what it does with our name. It uses
    torch internals; if they change, it falls back to ``dist.new_group``.
    """
    c10d = dist.distributed_c10d
    try:
        default_pg = c10d._get_default_group()
        default_backend, default_store = c10d._world.pg_map[default_pg]
        pg, _ = c10d._new_process_group_helper(
            len(world_ranks),
            world_ranks.index(dist.get_rank()),
            list(world_ranks),
            backend or default_backend,
            default_store,
            name,
            timeout=dist.default_pg_timeout,
        )
        c10d._world.pg_group_ranks[pg] = {g: i for i, g in enumerate(world_ranks)}
    except (AttributeError, KeyError, TypeError):  # pragma: no cover - other torch versions
        pg = dist.new_group(
            world_ranks, backend=backend, use_local_synchronization=True, sort_ranks=False
        )
    return pg


# ------------------------------------------------------------------------------ reductions
class _Codec:
    """How a reduction of one dtype travels: ``encode(t)`` gives the tensor handed to the library
    (a view of ``t`` when ``in_place``), reduced with ``op``; ``decode(w, out)`` writes a reduced
    wire tensor back into ``out`` of the original dtype. ``scale``: wire elements per element (2
    for complex numbers travelling as pairs of reals)."""

    __slots__ = ("decode", "encode", "in_place", "op", "scale")

    def __init__(self, op, encode, decode, in_place, scale=1):
        self.op, self.encode, self.decode, self.in_place = op, encode, decode, in_place
        self.scale = scale


def _as(dtype):
    """A codec that reinterprets the bits as ``dtype`` (no copy)."""
    return (lambda t: t.view(dtype)), (lambda w, out: out.view(dtype).copy_(w))


def _codec(dtype, op: ReduceOp) -> _Codec:
    if dtype is torch.bool:  # bytes 0/1: and = MIN, or = MAX (the base passes BAND/BOR)
        return _Codec(ReduceOp.MIN if op is ReduceOp.BAND else ReduceOp.MAX, *_as(_U8), True)
    if dtype is torch.int16:
        return _Codec(op, lambda t: t.to(torch.int32), lambda w, out: out.copy_(w), False)
    if dtype is torch.uint16:
        return _Codec(
            op,
            lambda t: t.view(torch.int16).to(torch.int32).bitwise_and_(0xFFFF),
            lambda w, out: out.view(torch.int16).copy_(w),
            False,
        )
    minmax = op in (ReduceOp.MIN, ReduceOp.MAX)
    if dtype is torch.uint32:
        if not minmax:
            return _Codec(op, *_as(torch.int32), True)
        return _Codec(
            op,
            lambda t: t.view(torch.int32).to(torch.int64).bitwise_and_(0xFFFFFFFF),
            lambda w, out: out.view(torch.int32).copy_(w),
            False,
        )
    if dtype is torch.uint64:
        if not minmax:
            return _Codec(op, *_as(torch.int64), True)
        return _Codec(
            op,
            lambda t: torch.bitwise_xor(t.view(torch.int64), _INT64_MIN),
            lambda w, out: torch.bitwise_xor(w, _INT64_MIN, out=out.view(torch.int64)),
            False,
        )
    if dtype.is_complex and op is ReduceOp.SUM:
        real = torch.float32 if dtype is torch.complex64 else torch.float64
        return _Codec(op, *_as(real), True, scale=2)
    return _Codec(op, lambda t: t, lambda w, out: out.copy_(w), True)


def _local_reduce(rows, op: ReduceOp):
    """Reduce the rows of ``rows`` (one per rank) in rank order with torch arithmetic."""
    acc = rows[0].clone()
    for r in range(1, rows.shape[0]):
        torch_apply(op, rows[r], acc)
    return acc


# ------------------------------------------------------------------------------ requests
class _Pending:
    """torch Work objects that can be tested without blocking.

    gloo's point-to-point works (``threaded``) report ``is_completed()`` only after ``wait()`` has
    returned, and ``wait(timeout)`` closes the connection when it times out; so the first
    ``test()`` hands the waiting to a helper thread and later tests look at its flag. Blocking
    ``wait()`` without a prior ``test()`` waits in the calling thread (no helper).
    """

    __slots__ = ("done", "error", "threaded", "works")

    def __init__(self, works, threaded: bool):
        self.works = [w for w in works if w is not None]
        self.threaded = threaded
        self.done: threading.Event | None = None
        self.error: BaseException | None = None

    def test(self) -> bool:
        if self.done is None:
            if not self.threaded:
                if not all([w.is_completed() for w in self.works]):
                    return False
                self.wait()  # raises if the operation failed
                return True
            self.done = threading.Event()
            threading.Thread(target=self._wait_in_thread, name="hpc-comm-wait", daemon=True).start()
        if not self.done.is_set():
            return False
        if self.error is not None:
            raise self.error
        return True

    def _wait_in_thread(self) -> None:
        try:
            for w in self.works:
                w.wait()
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    def wait(self) -> None:
        if self.done is None:
            for w in self.works:
                w.wait()
            return
        self.done.wait()
        if self.error is not None:
            raise self.error


def _request(works, finish=None, keep=(), threaded: bool = False) -> Request:
    """A Request over torch Work objects (None entries: already done); ``threaded`` for
    point-to-point works (see ``_Pending``)."""
    pending = _Pending(works, threaded)
    return Request(pending.test, pending.wait, finish=finish, keep=keep)


class _Reaper:
    """A helper thread that waits for eager sends whose Requests were reported complete at once,
    so their buffers are released when the receiver has taken them. An error surfaces at the
    communicator's next send."""

    def __init__(self):
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None

    def add(self, works, keep) -> None:
        self.check()
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="hpc-comm-eager", daemon=True)
            self.thread.start()
        self.queue.put((works, keep))

    def check(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            for w in item[0]:
                try:
                    w.wait()
                except BaseException as exc:
                    self.error = exc

    def close(self) -> None:
        if self.thread is not None:
            self.queue.put(None)


def _bytes(t):
    """The bytes of a flat contiguous tensor, without a copy."""
    return t.view(_U8)


def _staged(method):
    """Run ``method`` on host copies of CUDA tensors when the group cannot take them (gloo)."""

    def wrapper(self, *args):
        if self._cuda_ok or not any(getattr(a, "is_cuda", False) for a in args):
            return method(self, *args)
        staged, host_args = [], []
        for a in args:
            if getattr(a, "is_cuda", False):
                host = a.to("cpu")
                staged.append((a, host))
                a = host
            host_args.append(a)
        result = method(self, *host_args)

        def copy_back():
            for dev, host in staged:
                dev.copy_(host)

        if isinstance(result, Request):
            return Request(result.test, result.wait, finish=copy_back, keep=(staged, result))
        copy_back()
        return result

    wrapper.__name__ = method.__name__
    return wrapper


# ------------------------------------------------------------------------------ messages
class _Message:
    """A message whose header has arrived and that no receive has taken yet."""

    __slots__ = ("data", "nbytes", "source", "tag", "work")

    def __init__(self, source, tag, nbytes, data, work):
        self.source, self.tag, self.nbytes, self.data, self.work = source, tag, nbytes, data, work


class _Receive:
    """A posted receive into ``buf`` (bytes); matched once ``status`` is set."""

    __slots__ = ("buf", "done", "error", "message", "source", "status", "tag", "work")

    def __init__(self, buf, source, tag):
        self.buf, self.source, self.tag = buf, source, tag
        self.status = self.work = self.error = self.message = None
        self.done = False


def _matches(want_source, want_tag, source, tag) -> bool:
    return want_source in (ANY_SOURCE, source) and want_tag in (ANY_TAG, tag)


def _too_big(nbytes: int, capacity: int) -> ValueError:
    return ValueError(
        f"message of {nbytes} bytes does not fit the receive buffer of {capacity} bytes"
    )


class _Mailbox:
    """Headers-first message matching for one kind of message (tensors or objects).

    At most one header receive (from any source) is outstanding. Each header is handled as soon as
    it arrives: its payload is received into the first posted receive that matches, else into a
    private buffer kept in ``unexpected`` (arrival order) for a later receive or probe.
    """

    def __init__(self, comm: TorchCommunicator, header_tag: int, data_tag: int):
        self.comm = comm
        self.header_tag, self.data_tag = header_tag, data_tag
        self.unexpected: list[_Message] = []
        self.posted: list[_Receive] = []
        self.header = torch.empty(2, dtype=torch.int64)
        self.header_work = None

    def poll(self, block: bool) -> bool:
        """Handle the next header; False when none has arrived (only when not blocking)."""
        comm = self.comm
        if self.header_work is None:
            work = dist.irecv(self.header, src=None, group=comm._cpu_group, tag=self.header_tag)
            self.header_work = _Pending([work], threaded=True)
        if not block and not self.header_work.test():
            return False
        pending, self.header_work = self.header_work, None
        pending.wait()
        nbytes, tag = self.header.tolist()
        self.arrive(pending.works[0].source_rank(), tag, nbytes, None)
        return True

    def arrive(self, source: int, tag: int, nbytes: int, local) -> None:
        """A message from ``source`` (a group rank) arrived; ``local`` holds its bytes when it
        was sent by this rank, else they are still to be received from the network."""
        for i, rcv in enumerate(self.posted):
            if _matches(rcv.source, rcv.tag, source, tag):
                del self.posted[i]
                rcv.status = Status(source, tag, nbytes)
                if nbytes > rcv.buf.numel():
                    rcv.error = _too_big(nbytes, rcv.buf.numel())
                    target = torch.empty(nbytes, dtype=_U8)  # drained and dropped
                else:
                    target = rcv.buf[:nbytes]
                if local is not None:
                    if rcv.error is None:
                        target.copy_(local)
                else:
                    rcv.work = self._receive_payload(source, target)
                    rcv.message = target  # keeps a drain buffer alive
                return
        data = local
        work = None
        if data is None:
            data = torch.empty(nbytes, dtype=_U8)
            work = self._receive_payload(source, data)
        self.unexpected.append(_Message(source, tag, nbytes, data, work))

    def _receive_payload(self, source: int, target):
        if target.numel() == 0:
            return None
        comm = self.comm
        work = dist.irecv(
            target, src=comm._world_ranks[source], group=comm._cpu_group, tag=self.data_tag
        )
        return _Pending([work], threaded=True)

    def find(self, source: int, tag: int, remove: bool) -> _Message | None:
        for i, msg in enumerate(self.unexpected):
            if _matches(source, tag, msg.source, msg.tag):
                if remove:
                    del self.unexpected[i]
                return msg
        return None

    def can_block(self, source: int) -> bool:
        """Whether waiting for a header can ever end (not when only this rank could send)."""
        return self.comm._size > 1 and source != self.comm._rank

    def wait_for(self, source: int, tag: int, what: str) -> _Message:
        """The first unexpected message matching ``source``/``tag``, waiting for it."""
        while True:
            msg = self.find(source, tag, remove=False)
            if msg is not None:
                return msg
            if not self.can_block(source):
                raise RuntimeError(
                    f"{what} with no matching message pending, and none can come from another "
                    "rank: it would wait forever"
                )
            self.poll(block=True)

    def post(self, buf, source: int, tag: int) -> _Receive:
        rcv = _Receive(buf, source, tag)
        msg = self.find(source, tag, remove=True)
        if msg is not None:
            rcv.status = Status(msg.source, msg.tag, msg.nbytes)
            rcv.message = msg
        else:
            self.posted.append(rcv)
        return rcv

    def complete(self, rcv: _Receive, block: bool) -> bool:
        """Progress ``rcv``; True once its data is in place (raises its error then)."""
        if rcv.done:
            return True
        while rcv.status is None:
            if block and not self.can_block(rcv.source):
                self.posted.remove(rcv)  # withdrawn: it must not take a later message
                raise RuntimeError(
                    "receive with no matching message pending, and none can come from another "
                    "rank: it would wait forever"
                )
            if not self.poll(block):
                return False
        msg = rcv.message
        if isinstance(msg, _Message):  # matched a message that had arrived before
            if msg.work is not None:
                if block:
                    msg.work.wait()
                elif not msg.work.test():
                    return False
            if msg.nbytes > rcv.buf.numel():
                rcv.error = _too_big(msg.nbytes, rcv.buf.numel())
            else:
                rcv.buf[: msg.nbytes].copy_(msg.data)
        elif rcv.work is not None:
            if block:
                rcv.work.wait()
            elif not rcv.work.test():
                return False
        rcv.done = True
        rcv.message = rcv.work = None
        if rcv.error is not None:
            raise rcv.error
        return True


# ------------------------------------------------------------------------------ communicator
class TorchCommunicator(Communicator):
    """A communicator over a torch.distributed process group."""

    backend = "torch"

    def __init__(
        self,
        group,
        world_ranks: list[int],
        node_id: int = 0,
        name: str = "hc",
        cpu_group=None,
        cuda_ok: bool = False,
    ):
        super().__init__(world_ranks.index(dist.get_rank()), len(world_ranks), node_id)
        self._group = group
        self._cpu_group = group if cpu_group is None else cpu_group
        self._world_ranks = list(world_ranks)
        self._name = name
        self._splits = 0
        self._cuda_ok = cuda_ok  # CUDA tensors go to the library as they are (NCCL)
        self._tensors = _Mailbox(self, _TENSOR_HEADER, _TENSOR_DATA)
        self._objects = _Mailbox(self, _OBJECT_HEADER, _OBJECT_DATA)
        self._reaper = _Reaper()  # eager sends still in flight

    @classmethod
    def world(cls) -> tuple[TorchCommunicator, int]:
        """The communicator of the default process group (made first if needed) and the number of
        ranks on this node."""
        global _roots
        if not dist.is_available():
            raise ImportError("this torch build has no torch.distributed")
        if not dist.is_initialized():
            _init_default_group(torch_backend())
        group = dist.group.WORLD
        size = dist.get_world_size()
        backend = str(dist.get_backend(group)).lower()
        cpu_group = None
        if "gloo" not in backend:  # a user's NCCL-only group: CPU traffic needs its own group
            cpu_group = dist.new_group(backend="gloo")
        comm = cls(
            group,
            list(range(size)),
            name=f"hc{_roots}",
            cpu_group=cpu_group,
            cuda_ok="nccl" in backend,
        )
        _roots += 1
        hosts = comm._allgather_obj(socket.gethostname())
        mine = hosts[comm.rank]
        comm._node_id = hosts.index(mine)
        emulated = _launcher.ranks_per_node()
        if emulated is not None:
            comm._node_id = comm.rank // emulated * emulated
        return comm, hosts.count(mine)

    @property
    def handle(self):
        """The torch ProcessGroup (pass it as ``group=`` to torch.distributed functions)."""
        return self._group

    def _pg(self, t):
        return self._group if t.is_cuda else self._cpu_group

    def _src(self, rank: int) -> int:
        return self._world_ranks[rank]

    # -- collectives
    def _barrier(self) -> None:
        dist.barrier(group=self._cpu_group)

    @_staged
    def _bcast(self, buf, root):
        self._ibcast(buf, root, False).wait()

    @_staged
    def _ibcast(self, buf, root, async_op=True):
        work = dist.broadcast(
            _bytes(buf), src=self._src(root), group=self._pg(buf), async_op=async_op
        )
        return _request([work])

    @_staged
    def _allreduce(self, buf, op):
        self._reduction(buf, op, None, False).wait()

    @_staged
    def _iallreduce(self, buf, op):
        return self._reduction(buf, op, None, True)

    @_staged
    def _reduce(self, buf, op, root):
        self._reduction(buf, op, root, False).wait()

    @_staged
    def _ireduce(self, buf, op, root):
        return self._reduction(buf, op, root, True)

    def _native(self, wire, op: ReduceOp) -> bool:
        """Whether the library reduces ``wire``'s dtype with ``op`` itself."""
        if wire.dtype.is_complex:
            return False  # only SUM, which travels as real numbers
        return not (wire.is_cuda and op in (ReduceOp.BAND, ReduceOp.BOR))  # NCCL has neither

    def _reduction(self, buf, op: ReduceOp, root: int | None, async_op: bool) -> Request:
        """allreduce (``root`` None) or reduce of ``buf`` in place; a Request (done when not
        ``async_op``, except for the write-back that ``wait()`` does)."""
        codec = _codec(buf.dtype, op)
        receives = root is None or root == self._rank
        wire = codec.encode(buf)
        if not receives and codec.in_place:
            wire = wire.clone()  # gloo's reduce scribbles on the non-root inputs
        group = self._pg(wire)
        if self._native(wire, codec.op):
            top = _TORCH_OPS[codec.op]
            if root is None:
                work = dist.all_reduce(wire, op=top, group=group, async_op=async_op)
            else:
                work = dist.reduce(wire, self._src(root), op=top, group=group, async_op=async_op)

            def finish():
                if receives and not codec.in_place:
                    codec.decode(wire, buf)

            return _request([work], finish, keep=(wire,))
        # Fallback: gather every rank's tensor and reduce locally in rank order.
        n = wire.numel()
        rows = torch.empty((self._size if receives else 0, n), dtype=wire.dtype, device=wire.device)
        if root is None:
            work = _all_gather(_bytes(rows.view(-1)), _bytes(wire), group, async_op)
        else:
            nb = n * wire.element_size()
            send = [nb if r == root else 0 for r in range(self._size)]
            recv = [nb if receives else 0] * self._size
            work = dist.all_to_all_single(
                _bytes(rows.view(-1)), _bytes(wire), recv, send, group=group, async_op=async_op
            )

        def finish_fallback():
            if receives:
                codec.decode(_local_reduce(rows, codec.op), buf)

        return _request([work], finish_fallback, keep=(wire, rows))

    @_staged
    def _allgatherv(self, send, recv, counts):
        if max(counts, default=0) == 0:
            return
        group = self._pg(send)
        if all(c == counts[0] for c in counts):
            _all_gather(_bytes(recv), _bytes(send), group, False)
            return
        # Ragged: gather pieces padded to the largest, then close the gaps (one copy each way).
        isz = send.element_size()
        width = max(counts) * isz
        padded = torch.empty(width, dtype=_U8, device=send.device)
        padded[: send.numel() * isz].copy_(_bytes(send))
        rows = torch.empty((self._size, width), dtype=_U8, device=send.device)
        _all_gather(rows.view(-1), padded, group, False)
        out = _bytes(recv)
        for r, (o, c) in enumerate(zip(offsets(counts), counts)):
            out[o * isz : (o + c) * isz].copy_(rows[r, : c * isz])

    @_staged
    def _gatherv(self, send, recv, counts, root):
        isz = send.element_size()
        mine = self._rank == root
        send_splits = [send.numel() * isz if r == root else 0 for r in range(self._size)]
        recv_splits = [c * isz for c in counts] if mine else [0] * self._size
        out = _bytes(recv) if mine else torch.empty(0, dtype=_U8, device=send.device)
        dist.all_to_all_single(out, _bytes(send), recv_splits, send_splits, group=self._pg(send))

    @_staged
    def _scatterv(self, send, recv, counts, root):
        isz = recv.element_size()
        mine = self._rank == root
        send_splits = [c * isz for c in counts] if mine else [0] * self._size
        recv_splits = [recv.numel() * isz if r == root else 0 for r in range(self._size)]
        source = _bytes(send) if mine else torch.empty(0, dtype=_U8, device=recv.device)
        dist.all_to_all_single(_bytes(recv), source, recv_splits, send_splits, group=self._pg(recv))

    @_staged
    def _alltoallv(self, send, send_counts, recv, recv_counts):
        isz = send.element_size()
        dist.all_to_all_single(
            _bytes(recv),
            _bytes(send),
            [c * isz for c in recv_counts],
            [c * isz for c in send_counts],
            group=self._pg(send),
        )

    @_staged
    def _reduce_scatter(self, send, recv, counts, op):
        # All-to-all of the pieces, then a local reduction in rank order: each rank sends and
        # receives (size-1)/size of the tensor (what a ring reduce-scatter moves too) and needs
        # ``size`` pieces of scratch; gloo's reduce_scatter wants equal pieces and was slower.
        codec = _codec(send.dtype, op)
        wire = codec.encode(send)  # read only
        counts = [c * codec.scale for c in counts]
        n = counts[self._rank]
        rows = torch.empty((self._size, n), dtype=wire.dtype, device=wire.device)
        isz = wire.element_size()
        dist.all_to_all_single(
            _bytes(rows.view(-1)),
            _bytes(wire),
            [n * isz] * self._size,
            [c * isz for c in counts],
            group=self._pg(wire),
        )
        codec.decode(_local_reduce(rows, codec.op), recv)

    # -- point to point
    def _post_send(self, box: _Mailbox, data, dest: int, tag: int, owned: bool, eager: bool):
        """Send bytes ``data``: header then payload. ``owned``: ``data`` is ours (not the user's
        buffer). ``eager``: the returned Request is complete, the transfer goes on detached."""
        self._reaper.check()
        nbytes = data.numel()
        if dest == self._rank:
            box.arrive(self._rank, tag, nbytes, data if owned else data.clone())
            return Request.completed()
        group, peer = self._cpu_group, self._src(dest)
        header = torch.tensor([nbytes, tag], dtype=torch.int64)
        works = [dist.isend(header, dst=peer, group=group, tag=box.header_tag)]
        if nbytes:
            works.append(dist.isend(data, dst=peer, group=group, tag=box.data_tag))
        if eager:
            self._reaper.add(works, (header, data))
            return Request.completed()
        return _request(works, keep=(header, data), threaded=True)

    def _send(self, buf, dest, tag):
        data = _bytes(buf.cpu() if buf.is_cuda else buf)
        if data.numel() <= EAGER_LIMIT:
            self._post_send(self._tensors, data.clone(), dest, tag, owned=True, eager=True)
        else:
            self._post_send(self._tensors, data, dest, tag, owned=False, eager=False).wait()

    def _isend(self, buf, dest, tag):
        data = _bytes(buf.cpu() if buf.is_cuda else buf)
        return self._post_send(self._tensors, data, dest, tag, owned=False, eager=False)

    def _recv(self, buf, source, tag):
        host = buf.cpu() if buf.is_cuda else buf
        rcv = self._tensors.post(_bytes(host), source, tag)
        self._tensors.complete(rcv, block=True)
        if host is not buf:
            buf.copy_(host)
        return rcv.status

    def _irecv(self, buf, source, tag):
        host = buf.cpu() if buf.is_cuda else buf
        rcv = self._tensors.post(_bytes(host), source, tag)
        box = self._tensors
        finish = None
        if host is not buf:

            def finish():
                buf.copy_(host)

        return Request(
            lambda: box.complete(rcv, block=False),
            lambda: box.complete(rcv, block=True),
            finish=finish,
            keep=(rcv, host),
        )

    def _probe(self, source, tag):
        msg = self._tensors.wait_for(source, tag, "probe")
        return Status(msg.source, msg.tag, msg.nbytes)

    # -- objects
    def _bcast_obj(self, obj, root):
        if self._size == 1:
            return pickle.loads(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
        data = _pickle(obj) if self._rank == root else None
        n = torch.tensor([data.numel() if data is not None else 0], dtype=torch.int64)
        dist.broadcast(n, src=self._src(root), group=self._cpu_group)
        if data is None:
            data = torch.empty(int(n.item()), dtype=_U8)
        dist.broadcast(data, src=self._src(root), group=self._cpu_group)
        return _unpickle(data)

    def _allgather_obj(self, obj):
        data = _pickle(obj)
        sizes = torch.empty(self._size, dtype=torch.int64)
        self._allgatherv(torch.tensor([data.numel()], dtype=torch.int64), sizes, [1] * self._size)
        counts = sizes.tolist()
        out = torch.empty(sum(counts), dtype=_U8)
        self._allgatherv(data, out, counts)
        return [_unpickle(p) for p in torch.split(out, counts)]

    def _gather_obj(self, obj, root):
        data = _pickle(obj)
        mine = self._rank == root
        sizes = torch.empty(self._size if mine else 0, dtype=torch.int64)
        self._gatherv(
            torch.tensor([data.numel()], dtype=torch.int64), sizes, [1] * self._size, root
        )
        counts = sizes.tolist() if mine else [0] * self._size  # used on the root only
        out = torch.empty(sum(counts) if mine else 0, dtype=_U8)
        self._gatherv(data, out, counts, root)
        return [_unpickle(p) for p in torch.split(out, counts)] if mine else None

    def _isend_obj(self, obj, dest, tag):
        data = _pickle(obj)
        eager = data.numel() <= EAGER_LIMIT
        return self._post_send(self._objects, data, dest, tag, owned=True, eager=eager)

    def _iprobe(self, source, tag):
        box = self._objects
        while True:
            msg = box.find(source, tag, remove=False)
            if msg is not None:
                return Status(msg.source, msg.tag, msg.nbytes)
            if not box.can_block(source) or not box.poll(block=False):
                return None

    def _recv_obj(self, source, tag):
        box = self._objects
        msg = box.wait_for(source, tag, "recv_obj")
        box.unexpected.remove(msg)
        if msg.work is not None:
            msg.work.wait()
        return _unpickle(msg.data), Status(msg.source, msg.tag, msg.nbytes)

    # -- sub-communicators
    def _split(self, color, key):
        rows = self._allgather_obj((color, key))
        self._splits += 1
        if color is None:
            return None
        members = sorted((k, r) for r, (c, k) in enumerate(rows) if c == color)
        world_ranks = [self._world_ranks[r] for _, r in members]
        name = f"{self._name}.{self._splits}.{color}"
        group = _new_group(world_ranks, name)
        cpu_group = None
        if self._cpu_group is not self._group:
            cpu_group = _new_group(world_ranks, name + ".cpu", backend="gloo")
        return TorchCommunicator(
            group, world_ranks, self._node_id, name, cpu_group=cpu_group, cuda_ok=self._cuda_ok
        )

    def _free(self):
        self._tensors = self._objects = None
        self._reaper.close()
        if self._group is dist.group.WORLD or self._group is dist.GroupMember.WORLD:
            return
        for group in {id(g): g for g in (self._group, self._cpu_group)}.values():
            dist.destroy_process_group(group)


def _all_gather(out, inp, group, async_op):
    gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    return gather(out, inp, group=group, async_op=async_op)


def _pickle(obj):
    return torch.frombuffer(
        bytearray(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)), dtype=_U8
    )


def _unpickle(data):
    return pickle.loads(data.numpy().tobytes())
