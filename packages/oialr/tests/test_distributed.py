"""Data-parallel OIALR over hpc-comm: runs at any number of ranks (1, 2, 3 in CI)."""

import pytest
import torch
from torch import nn

from oialr import OIALR, average_gradients, broadcast_parameters

pytestmark = [pytest.mark.mpi, pytest.mark.timeout(60)]

STEPS, BATCH = 12, 12


def _model(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(10, 32),
        nn.Tanh(),
        nn.Linear(32, 32),
        nn.Tanh(),
        nn.Linear(32, 32),
        nn.Tanh(),
        nn.Linear(32, 5),
    )


def _global_batches():
    g = torch.Generator().manual_seed(2024)
    return [
        (torch.randn(BATCH, 10, generator=g), torch.randint(0, 5, (BATCH,), generator=g))
        for _ in range(STEPS)
    ]


def _run(model, comm, shard):
    """Train on this rank's rows of every global batch (``shard``) and return the controller."""
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    ctl = OIALR(
        model,
        opt,
        delay=3,
        stability_frequency=3,
        sigma_cutoff_fraction=0.4,
        layer_share_step=0.5,
        comm=comm,
    )
    for x, y in _global_batches():
        rows = shard(len(x))
        opt.zero_grad()
        # sum-of-losses / global batch: averaging over ranks then gives the global-batch mean
        loss = nn.functional.cross_entropy(model(x[rows]), y[rows], reduction="sum")
        (loss * (comm.size if comm is not None else 1) / len(x)).backward()
        if comm is not None:
            ctl.average_gradients()
        opt.step()
        ctl.step()
    return ctl


def _flat_state(model) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1) for t in model.state_dict().values()])


def test_ranks_end_with_identical_shapes_and_bit_identical_weights(comm, float64):
    model = _model(seed=comm.rank)  # different on purpose: broadcast_parameters must fix it
    broadcast_parameters(model, comm)
    ctl = _run(model, comm, lambda n: slice(comm.rank, n, comm.size))
    shapes = comm.allgather_obj({k: tuple(v.shape) for k, v in model.state_dict().items()})
    assert all(s == shapes[0] for s in shapes)
    assert any(r < 32 for r in ctl.ranks().values())  # pruning did happen
    mine = _flat_state(model)
    everyone = comm.allgather(mine.unsqueeze(0), dim=0)
    for r in range(comm.size):
        assert torch.equal(everyone[r], mine), f"rank {r} differs from rank {comm.rank}"


def test_data_parallel_run_matches_one_process_on_the_global_batch(comm, float64):
    model = _model(seed=0)
    ctl = _run(model, comm, lambda n: slice(comm.rank, n, comm.size))
    reference = _model(seed=0)  # every rank computes the single-process run itself
    ref_ctl = _run(reference, None, lambda n: slice(0, n))
    assert ctl.ranks() == ref_ctl.ranks()
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10, msg=name)


def test_average_gradients_is_the_mean_over_ranks(comm, float64):
    p = nn.Parameter(torch.zeros(3))
    q = nn.Parameter(torch.zeros(2))  # no gradient on odd ranks: counts as zeros
    p.grad = torch.full((3,), float(comm.rank))
    if comm.rank % 2 == 0:
        q.grad = torch.ones(2)
    average_gradients([p, q], comm)
    mean_rank = (comm.size - 1) / 2
    torch.testing.assert_close(p.grad, torch.full((3,), mean_rank))
    evens = (comm.size + 1) // 2
    torch.testing.assert_close(q.grad, torch.full((2,), evens / comm.size))


class _ConvAttentionNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        h = torch.tanh(self.conv2(torch.tanh(self.conv(x))))  # b, 16, 4, 4
        tokens = h.flatten(2).transpose(1, 2)
        return self.head(self.attn(tokens, tokens, tokens, need_weights=False)[0].mean(1))


def test_conv_and_attention_weights_end_bit_identical_across_ranks(comm, float64, monkeypatch):
    svd_calls = []
    real_svd = torch.linalg.svd

    def counting_svd(*args, **kwargs):
        svd_calls.append(1)
        return real_svd(*args, **kwargs)

    monkeypatch.setattr(torch.linalg, "svd", counting_svd)
    torch.manual_seed(comm.rank)  # different on purpose: broadcast_parameters must fix it
    model = _ConvAttentionNet()
    broadcast_parameters(model, comm)
    opt = torch.optim.AdamW(model.parameters(), lr=0.02)
    ctl = OIALR(
        model,
        opt,
        delay=2,
        stability_frequency=2,
        layer_share_step=1.0,
        sigma_cutoff_fraction=0.5,
        comm=comm,
    )
    g = torch.Generator().manual_seed(7)
    for _ in range(7):
        x, y = torch.randn(6, 1, 4, 4, generator=g), torch.randint(0, 5, (6,), generator=g)
        rows = slice(comm.rank, 6, comm.size)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x[rows]), y[rows], reduction="sum")
        (loss * comm.size / 6).backward()
        ctl.average_gradients()
        opt.step()
        ctl.step()
    assert set(ctl.ranks()) == {"conv", "conv2", "attn.in_proj", "attn.out_proj"}
    assert any(f.rank < f.full_rank for _, f in ctl.layers())
    # weight i is decomposed (conversion + 3 checks) only on rank i mod size: round robin
    assert [s for s, _ in ctl.rank_history] == [2, 4, 6]
    owned = sum(1 for i in range(4) if i % comm.size == comm.rank)
    assert len(svd_calls) == 4 * owned
    shapes = comm.allgather_obj({k: tuple(v.shape) for k, v in model.state_dict().items()})
    assert all(s == shapes[0] for s in shapes)
    mine = _flat_state(model)
    everyone = comm.allgather(mine.unsqueeze(0), dim=0)
    for r in range(comm.size):
        assert torch.equal(everyone[r], mine), f"rank {r} differs from rank {comm.rank}"
