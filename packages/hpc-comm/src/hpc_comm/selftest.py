"""A quick end-to-end check of every collective on the running job, against closed-form results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .communicator import Communicator, chunk_counts


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, whether every rank got the expected result, and what went wrong."""

    name: str
    passed: bool
    detail: str = ""


def _checks(comm: Communicator) -> list[tuple[str, Callable[[], bool]]]:
    import torch

    r, n = comm.rank, comm.size
    tri = n * (n + 1) // 2  # sum of rank + 1 over all ranks

    def allreduce(dtype):
        def run():
            x = torch.full((5,), r + 1, dtype=dtype)
            return comm.allreduce(x).tolist() == [tri] * 5

        return run

    def bcast():
        x = torch.full((4,), float(r))
        return comm.bcast(x, root=n - 1).tolist() == [float(n - 1)] * 4

    def allgatherv():
        out = comm.allgatherv(torch.full((r,), r, dtype=torch.int64))
        return out.tolist() == [k for k in range(n) for _ in range(k)]

    def alltoallv():
        out = comm.alltoallv(torch.arange(n, dtype=torch.int32) + 100 * r, [1] * n)
        return out.tolist() == [100 * k + r for k in range(n)]

    def reduce_scatter():
        out = comm.reduce_scatter(torch.ones(2 * n + 1))
        return out.tolist() == [float(n)] * chunk_counts(2 * n + 1, n)[r]

    def iallreduce():
        return (
            comm.iallreduce(torch.ones(3, dtype=torch.float64), "max").wait().tolist() == [1.0] * 3
        )

    def ring():
        right, left = (r + 1) % n, (r - 1) % n
        got = torch.empty(2, dtype=torch.int64)
        req = comm.isend(torch.tensor([r, r]), right, tag=11)
        comm.recv(got, source=left, tag=11)
        req.wait()
        return got.tolist() == [left, left]

    def objects():
        return comm.allgather_obj({"rank": r}) == [{"rank": k} for k in range(n)]

    def split():
        with comm.split(r % 2) as sub:
            x = torch.ones(1)
            return sub.allreduce(x).item() == len(range(r % 2, n, 2))

    return [
        ("allreduce float32", allreduce(torch.float32)),
        ("allreduce float16", allreduce(torch.float16)),
        ("allreduce bfloat16", allreduce(torch.bfloat16)),
        ("allreduce int64", allreduce(torch.int64)),
        ("iallreduce max", iallreduce),
        ("bcast", bcast),
        ("allgatherv (ragged)", allgatherv),
        ("alltoallv", alltoallv),
        ("reduce_scatter", reduce_scatter),
        ("isend/recv ring", ring),
        ("allgather_obj", objects),
        ("split", split),
    ]


def run(comm: Communicator) -> list[CheckResult]:
    """Run every check on ``comm``; a check passes only if it passed on every rank."""
    import torch

    results = []
    for name, check in _checks(comm):
        try:
            ok, detail = bool(check()), ""
        except Exception as exc:  # reported, not raised: the other checks still run
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        everyone = torch.tensor([int(ok)], dtype=torch.int32)
        comm.allreduce(everyone, "min")
        results.append(CheckResult(name, bool(everyone.item()), detail))
    return results
