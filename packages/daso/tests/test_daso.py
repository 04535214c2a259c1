"""DASO on any number of ranks, checked against float64 references and hand-computed values."""

import copy

import numpy as np
import pytest
import torch

import hpc_comm as hc
from daso import DASO, SyncDataParallel, Topology

pytestmark = pytest.mark.mpi

N_IN, N_HIDDEN, N_OUT, BATCH = 6, 5, 3, 4


def node_sizes(comm):
    """Node layouts to try: every node size that divides the world (1 rank per node ... 1 node)."""
    return [g for g in range(1, comm.size + 1) if comm.size % g == 0]


def env_node_size(comm):
    """None (nodes from ``comm.node()``, e.g. HPC_COMM_RANKS_PER_NODE) when they are all of one
    size, else 1: DASO refuses unequal nodes, which tests of other features must not trip on."""
    sizes = comm.allgather_obj(comm.node().size)
    return None if len(set(sizes)) == 1 else 1


def make_model(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(N_IN, N_HIDDEN), torch.nn.Tanh(), torch.nn.Linear(N_HIDDEN, N_OUT)
    ).to(dtype)


def batch_of(rank, epoch, b, dtype=torch.float32):
    g = torch.Generator().manual_seed(1000 * rank + 100 * epoch + b)
    x = torch.randn(BATCH, N_IN, generator=g, dtype=torch.float64)
    y = torch.randint(0, N_OUT, (BATCH,), generator=g)
    return x.to(dtype), y


def flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def gather_params(comm, model):
    return comm.allgather(flat(model).unsqueeze(0))


def train_epoch(wrapper, model, comm, epoch, n_batches, check=None):
    loss_sum = 0.0
    with wrapper.epoch(n_batches):
        for b in range(n_batches):
            x, y = batch_of(comm.rank, epoch, b)
            wrapper.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            wrapper.step()
            loss_sum += loss.item()
            if check is not None:
                check(b)
    return wrapper.epoch_loss_logic(loss_sum / n_batches)


def test_topology_groups_one_rank_per_node(comm):
    for node_size in node_sizes(comm):
        top = Topology.build(comm, node_size)
        g = node_size
        assert top.ranks_per_node == g and top.nodes == comm.size // g
        assert top.local_rank == comm.rank % g
        members = top.group.allgather_obj(comm.rank)
        assert members == list(range(comm.rank % g, comm.size, g))
        top.free()


def test_topology_from_environment_needs_equal_nodes(comm):
    sizes = comm.allgather_obj(comm.node().size)
    if len(set(sizes)) == 1:
        top = Topology.build(comm)
        assert top.nodes * top.ranks_per_node == comm.size
        top.free()
    else:
        with pytest.raises(ValueError, match="same number of ranks on every node"):
            Topology.build(comm)


def test_warmup_equals_synchronous_data_parallel_and_float64_reference(comm):
    """Blocking phase, SGD with momentum: DASO == DDP-style averaging == full-batch float64."""
    n_batches, epochs = 3, 2
    for node_size in node_sizes(comm):
        m_daso, m_sync = make_model(), make_model()
        m_ref = copy.deepcopy(m_daso).double()
        o_daso = torch.optim.SGD(m_daso.parameters(), lr=0.1, momentum=0.9)
        o_sync = torch.optim.SGD(m_sync.parameters(), lr=0.1, momentum=0.9)
        o_ref = torch.optim.SGD(m_ref.parameters(), lr=0.1, momentum=0.9)
        daso = DASO(
            m_daso, o_daso, comm=comm, total_epochs=10, warmup_epochs=5, node_size=node_size
        )  # default downcast=bfloat16 must not touch blocking syncs
        sync = SyncDataParallel(m_sync, o_sync, comm=comm)
        for epoch in range(epochs):
            with daso.epoch(n_batches), sync.epoch(n_batches):
                for b in range(n_batches):
                    for wrapper, model in ((daso, m_daso), (sync, m_sync)):
                        x, y = batch_of(comm.rank, epoch, b)
                        wrapper.zero_grad()
                        torch.nn.functional.cross_entropy(model(x), y).backward()
                        wrapper.step()
                    o_ref.zero_grad()
                    ref_loss = sum(
                        torch.nn.functional.cross_entropy(
                            m_ref(batch_of(r, epoch, b, torch.float64)[0]),
                            batch_of(r, epoch, b)[1],
                        )
                        for r in range(comm.size)
                    )
                    (ref_loss / comm.size).backward()
                    o_ref.step()
                    ref = flat(m_ref).float()
                    torch.testing.assert_close(flat(m_daso), flat(m_sync), atol=2e-6, rtol=1e-5)
                    torch.testing.assert_close(flat(m_daso), ref, atol=2e-6, rtol=1e-5)
            daso.epoch_loss_logic(1.0)
            assert daso.global_skip == 0
        daso.close()


def expected_merge(comm, node_size, theta0, d0, d1, stale_dtype=None):
    """θ after batch 1 of a cycling epoch (gs 4, B 1), by hand: every node steps θ += mean d,
    sends its batch-0 state, steps again, then group 0 merges (2·1·θ_now + Σ θ_stale)/(2 + P)."""
    nodes = comm.size // node_size
    node_of = [r // node_size for r in range(comm.size)]
    step0 = [np.mean([d0[r] for r in range(comm.size) if node_of[r] == n]) for n in range(nodes)]
    step1 = [np.mean([d1[r] for r in range(comm.size) if node_of[r] == n]) for n in range(nodes)]
    stale = [theta0 + step0[n] for n in range(nodes)]
    if stale_dtype is not None:  # the sent copy is rounded, its sum is exact here
        stale = [float(torch.tensor(s).to(stale_dtype).double()) for s in stale]
    n = node_of[comm.rank]
    now = theta0 + step0[n] + step1[n]
    return (2.0 * now + sum(stale)) / (2.0 + nodes), now


def run_constructed(comm, node_size, d0, d1, theta0, downcast):
    """One parameter (a scalar), SGD lr 1 with the gradient set to -d: θ moves by +mean d."""
    theta = torch.nn.Parameter(torch.tensor([theta0], dtype=torch.float32))
    model = torch.nn.Module()
    model.theta = theta
    opt = torch.optim.SGD([theta], lr=1.0)
    daso = DASO(
        model,
        opt,
        comm=comm,
        total_epochs=5,
        warmup_epochs=0,
        cooldown_epochs=0,
        node_size=node_size,
        downcast=downcast,
        record_trace=True,
    )
    assert (daso.global_skip, daso.batches_to_wait) == (4, 1)
    seen = []
    with daso.epoch(4):
        for b in range(4):
            theta.grad = torch.tensor([-[d0, d1, d1, d1][b][comm.rank]], dtype=torch.float32)
            daso.step()
            seen.append(theta.item())
    return daso, seen


def test_stale_merge_formula_on_constructed_case(comm):
    d0 = [0.25 * (r + 1) for r in range(comm.size)]
    d1 = [0.125 * (r + 2) ** 2 for r in range(comm.size)]
    for node_size in node_sizes(comm):
        daso, seen = run_constructed(comm, node_size, d0, d1, 1.0, None)
        expected, unmerged = expected_merge(comm, node_size, 1.0, d0, d1)
        assert seen[1] == pytest.approx(expected, abs=1e-6)
        if comm.size // node_size > 1:
            assert seen[1] != pytest.approx(unmerged, abs=1e-3)
        assert daso.trace[:4] == [("send", 0, 0, 1), ("local", 0), ("recv", 1, 0, 0), ("local", 1)]
        # the last batch merges nothing (nothing pending) and syncs blocking with group 1 % g
        assert ("sync", 3, 1 % node_size) in daso.trace
        assert daso.pending_requests() == []
        everyone = comm.allgather_obj(seen[3])
        assert everyone == [everyone[0]] * comm.size
        daso.close()


def test_downcast_applies_to_async_syncs_only(comm):
    """1 + 2**-10 is not a bfloat16: the stale copy arrives as 1.0, the blocking sync is exact."""
    tiny = 2.0**-10
    d0 = [tiny] * comm.size
    d1 = [0.5] * comm.size
    node_size = 1
    for downcast in (torch.bfloat16, torch.float16, None):
        daso, seen = run_constructed(comm, node_size, d0, d1, 1.0, downcast)
        rounded = torch.bfloat16 if downcast is torch.bfloat16 else None
        expected, _ = expected_merge(comm, node_size, 1.0, d0, d1, stale_dtype=rounded)
        # float16 holds 1 + 2**-10, but its sum over ranks is rounded to float16's spacing
        tolerance = 2.0**-8 if downcast is torch.float16 else 1e-7
        assert seen[1] == pytest.approx(expected, abs=tolerance), downcast
        daso.close()
    exact, _ = expected_merge(comm, 1, 1.0, d0, d1)
    bf16, _ = expected_merge(comm, 1, 1.0, d0, d1, stale_dtype=torch.bfloat16)
    assert abs(exact - bf16) > 1e-5  # the two expectations are distinguishable
    # bytes: async send in bfloat16 is half of float32; blocking syncs stay float32
    model = make_model()
    n_params = sum(p.numel() for p in model.parameters())
    daso = DASO(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        comm=comm,
        total_epochs=5,
        warmup_epochs=0,
        cooldown_epochs=0,
        node_size=1,
        downcast=torch.bfloat16,
    )
    with hc.traffic() as t:
        train_epoch(daso, model, comm, 0, 4)  # batch 0 async, batch 3 blocking
    assert t.bytes_sent["iallreduce"] == 2 * n_params
    assert t.bytes_sent["allreduce"] == 4 * n_params + 8  # + the loss average (float64)
    daso.close()


def test_chunked_sends_cover_the_whole_parameter_vector(comm):
    model = make_model()
    n_params = sum(p.numel() for p in model.parameters())  # 6*5+5+5*3+3 = 53
    chunk = 10
    daso = DASO(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        comm=comm,
        total_epochs=5,
        warmup_epochs=0,
        cooldown_epochs=0,
        node_size=1,
        sending_chunk_size=chunk,
        downcast=None,
    )
    with hc.traffic() as t:
        train_epoch(daso, model, comm, 0, 4)
    assert t.calls["iallreduce"] == -(-n_params // chunk) == 6
    assert t.bytes_sent["iallreduce"] == 4 * n_params
    everyone = gather_params(comm, model)
    assert torch.equal(everyone, everyone[:1].expand_as(everyone))
    daso.close()


def test_parameters_identical_on_all_ranks_after_cooldown(comm):
    for node_size in node_sizes(comm):
        model = make_model(seed=3)
        opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.5)
        daso = DASO(
            model,
            opt,
            comm=comm,
            total_epochs=4,
            warmup_epochs=1,
            cooldown_epochs=1,
            node_size=node_size,
            record_trace=True,
        )
        phases = []
        for epoch in range(4):
            phases.append(daso.global_skip)
            daso.trace.clear()
            train_epoch(daso, model, comm, epoch, 6)
            assert daso.pending_requests() == []
            if phases[-1] > 0:
                assert any(e[0] == "send" for e in daso.trace)
        assert phases == [0, 4, 4, 0]
        everyone = gather_params(comm, model)
        assert torch.equal(everyone, everyone[:1].expand_as(everyone))
        daso.close()


def test_no_request_in_flight_when_the_loss_raises(comm):
    for g in node_sizes(comm):
        model = make_model()
        daso = DASO(
            model,
            torch.optim.SGD(model.parameters(), lr=0.1),
            comm=comm,
            total_epochs=9,
            warmup_epochs=0,
            cooldown_epochs=0,
            node_size=g,
        )
        daso.schedule.batches_to_wait = 3  # sent at batch 0, due at batch 3
        captured = []
        with pytest.raises(FloatingPointError, match="loss diverged"):
            with daso.epoch(6):
                for b in range(6):
                    x, y = batch_of(comm.rank, 0, b)
                    daso.zero_grad()
                    loss = torch.nn.functional.cross_entropy(model(x), y)
                    if b == 2:
                        captured.extend(daso._pending)
                        raise FloatingPointError("loss diverged")
                    loss.backward()
                    daso.step()
        assert len(captured) == 1
        # only the sending group's ranks (local rank 0) hold requests, and they were completed
        assert len(captured[0].requests) == (1 if comm.rank % g == 0 else 0)
        assert all(r.done for p in captured for r in p.requests)
        assert daso.pending_requests() == [] and daso.batch == 0
        # the communicators are usable afterwards: a full epoch runs and ends in agreement
        train_epoch(daso, model, comm, 1, 5)
        everyone = gather_params(comm, model)
        assert torch.equal(everyone, everyone[:1].expand_as(everyone))
        daso.close()


def test_stopping_early_closes_the_epoch_with_a_blocking_sync(comm):
    for g in node_sizes(comm):
        model = make_model()
        daso = DASO(
            model,
            torch.optim.SGD(model.parameters(), lr=0.1),
            comm=comm,
            total_epochs=9,
            warmup_epochs=0,
            cooldown_epochs=0,
            node_size=g,
            record_trace=True,
        )
        daso.schedule.batches_to_wait = 3  # batch 0 sends, due at batch 3: still in flight
        with daso.epoch(8):
            for b in range(2):  # break after 2 of 8 batches
                x, y = batch_of(comm.rank, 0, b)
                daso.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                daso.step()
        # closing (at batch 2, the first not run) receives the sync in flight, then averages
        # blocking with the next group
        assert daso.trace[-2:] == [("recv", 2, 0, 0), ("sync", 2, 1 % g)]
        assert daso.batch == 0 and daso.pending_requests() == []
        everyone = gather_params(comm, model)
        assert torch.equal(everyone, everyone[:1].expand_as(everyone))
        assert daso.epoch_loss_logic(0.5) == 0.5  # the epoch counts as finished
        daso.close()


def test_state_dict_round_trip(comm):
    model = make_model()
    daso = DASO(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        comm=comm,
        total_epochs=9,
        warmup_epochs=1,
        cooldown_epochs=1,
        node_size=env_node_size(comm),
    )
    for epoch in range(2):
        train_epoch(daso, model, comm, epoch, 3)
    state = daso.state_dict()
    other_model = make_model(seed=1)
    other = DASO(
        other_model,
        torch.optim.SGD(other_model.parameters(), lr=0.1, momentum=0.9),
        comm=comm,
        total_epochs=9,
        warmup_epochs=1,
        cooldown_epochs=1,
        node_size=env_node_size(comm),
    )
    other.load_state_dict(state)
    assert other.schedule.state_dict() == daso.schedule.state_dict()
    assert (other.global_skip, other.epochs_done) == (4, 2)
    with pytest.raises(RuntimeError, match="between epochs"):
        with daso.epoch(3):
            x, y = batch_of(comm.rank, 5, 0)
            daso.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            daso.step()
            daso.state_dict()
    daso.close()
    other.close()


def test_bad_arguments_raise_before_communicating(comm):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="optimizer"):
        DASO(model, "sgd", comm=comm, total_epochs=3)
    with pytest.raises(ValueError, match="total_epochs"):
        DASO(model, opt, comm=comm, total_epochs=0)
    with pytest.raises(ValueError, match="downcast"):
        DASO(model, opt, comm=comm, total_epochs=3, downcast=torch.int8)
    with pytest.raises(ValueError, match="node_size"):
        DASO(model, opt, comm=comm, total_epochs=3, node_size=comm.size + 1)
    with pytest.raises(ValueError, match="skip_reduction_factor"):
        DASO(model, opt, comm=comm, total_epochs=3, skip_reduction_factor=1)
    daso = DASO(model, opt, comm=comm, total_epochs=3, node_size=env_node_size(comm))
    with pytest.raises(ValueError, match="last_batch"):
        daso.step()
    with pytest.raises(RuntimeError, match="after an epoch"):
        daso.epoch_loss_logic(1.0)
    daso.close()


def test_hierarchical_sync_equals_flat_sync(comm):
    models = [make_model(), make_model()]
    wrappers = [
        SyncDataParallel(m, torch.optim.SGD(m.parameters(), lr=0.3), comm=comm, hierarchical=h)
        for m, h in zip(models, (False, True))
    ]
    for b in range(3):
        for w, m in zip(wrappers, models):
            x, y = batch_of(comm.rank, 0, b)
            w.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            w.step()
        torch.testing.assert_close(flat(models[0]), flat(models[1]), atol=1e-6, rtol=1e-5)


# Hand-computed traces of one 6-batch epoch (last batch 5) per phase. Groups are numbered by the
# order of the epoch's global syncs (k-th sync: group k mod g; the rotation restarts every epoch).
# ("send", batch, group, due), ("recv", batch, group, batch sent), ("sync", batch, group),
# ("local", batch): gradients averaged inside the node before that batch's step.
BLOCKING_EPOCH = [e for b in range(6) for e in (("sync", b, b), ("local", b))]
GS2_B1_EPOCH = [
    ("send", 0, 0, 1), ("local", 0),
    ("recv", 1, 0, 0), ("local", 1),
    ("send", 2, 1, 3), ("local", 2),
    ("recv", 3, 1, 2), ("local", 3),
    ("send", 4, 2, 5), ("local", 4),
    ("recv", 5, 2, 4), ("sync", 5, 3), ("local", 5),
]  # fmt: skip
GS1_B1_EPOCH = [
    ("send", 0, 0, 1), ("local", 0),
    ("recv", 1, 0, 0), ("send", 1, 1, 2), ("local", 1),
    ("recv", 2, 1, 1), ("send", 2, 2, 3), ("local", 2),
    ("recv", 3, 2, 2), ("send", 3, 3, 4), ("local", 3),
    ("recv", 4, 3, 3), ("send", 4, 4, 5), ("local", 4),
    ("recv", 5, 4, 4), ("sync", 5, 5), ("local", 5),
]  # fmt: skip
GS2_LS2_B2_EPOCH = [  # waits 2 batches (clamped to 1 at batch 4); local syncs on even batches
    ("send", 0, 0, 2), ("local", 0),
    ("recv", 2, 0, 0), ("send", 2, 1, 4), ("local", 2),
    ("recv", 4, 1, 2), ("send", 4, 2, 5), ("local", 4),
    ("recv", 5, 2, 4), ("sync", 5, 3), ("local", 5),
]  # fmt: skip


def with_groups(trace, g):
    return [(e[0], e[1], e[2] % g, *e[3:]) if e[0] != "local" else e for e in trace]


def test_schedule_over_epochs_matches_hand_computed_trace(comm):
    """Constant loss: a plateau every 3 epochs. max_global_skips 2, local_skip_factor 1:
    warm-up (blocking) -> (2,1,1) x3 -> plateau: (1,1,1) x3 -> plateau at gs 1: reset to
    (2, 2//1, 2//1) -> cool-down (blocking)."""
    expected_epochs = [BLOCKING_EPOCH, *[GS2_B1_EPOCH] * 3, *[GS1_B1_EPOCH] * 3]
    expected_epochs += [GS2_LS2_B2_EPOCH, BLOCKING_EPOCH]
    expected_skips = [(2, 1, 1)] * 3 + [(1, 1, 1)] * 3 + [(2, 2, 2), (0, 0, 0), (0, 0, 0)]
    for g in node_sizes(comm):
        model = make_model(seed=5)
        daso = DASO(
            model,
            torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
            comm=comm,
            total_epochs=9,
            warmup_epochs=1,
            cooldown_epochs=1,
            max_global_skips=2,
            local_skip_factor=1,
            node_size=g,
            record_trace=True,
        )
        for epoch, (trace, skips) in enumerate(zip(expected_epochs, expected_skips)):
            daso.trace.clear()
            with daso.epoch(6):
                for b in range(6):
                    x, y = batch_of(comm.rank, epoch, b)
                    daso.zero_grad()
                    torch.nn.functional.cross_entropy(model(x), y).backward()
                    daso.step()
            assert daso.trace == with_groups(trace, g), (g, epoch)
            assert daso.pending_requests() == []
            everyone = gather_params(comm, model)
            assert torch.equal(everyone, everyone[:1].expand_as(everyone)), (g, epoch)
            assert daso.epoch_loss_logic(1.0) == 1.0  # same on every rank: no improvement
            assert (daso.global_skip, daso.local_skip, daso.batches_to_wait) == skips, (g, epoch)
        daso.close()


def test_grad_scaler_and_lr_scheduler_plug_in(comm):
    """An AMP GradScaler (power-of-two scale: exact) and an LR scheduler the user steps: the
    warm-up still equals synchronous data parallelism with the same schedule and no scaler."""
    m_daso, m_sync = make_model(seed=7), make_model(seed=7)
    o_daso = torch.optim.SGD(m_daso.parameters(), lr=0.2, momentum=0.9)
    o_sync = torch.optim.SGD(m_sync.parameters(), lr=0.2, momentum=0.9)
    lr_daso = torch.optim.lr_scheduler.StepLR(o_daso, step_size=1, gamma=0.5)
    lr_sync = torch.optim.lr_scheduler.StepLR(o_sync, step_size=1, gamma=0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=2)
    daso = DASO(
        m_daso, o_daso, comm=comm, total_epochs=4, warmup_epochs=4, scaler=scaler, node_size=1
    )
    sync = SyncDataParallel(m_sync, o_sync, comm=comm)
    for epoch in range(2):
        with daso.epoch(3):
            for b in range(3):
                x, y = batch_of(comm.rank, epoch, b)
                daso.zero_grad()
                scaler.scale(torch.nn.functional.cross_entropy(m_daso(x), y)).backward()
                daso.step()
                sync.zero_grad()
                torch.nn.functional.cross_entropy(m_sync(x), y).backward()
                sync.step()
                torch.testing.assert_close(flat(m_daso), flat(m_sync), atol=1e-6, rtol=1e-5)
        daso.epoch_loss_logic(1.0)
        lr_daso.step()
        lr_sync.step()
    assert scaler.get_scale() > 2.0**10  # the scaler did step (and grew) through DASO
    assert o_daso.param_groups[0]["lr"] == pytest.approx(0.05)
    daso.close()


def replace_first_weight(model, rows: int) -> torch.nn.Parameter:
    """Swap the first layer's weight for a new, smaller Parameter (as a low-rank conversion
    does), with rank-dependent values, and hand it to the optimiser in the old one's place."""
    layer = model[0]
    g = torch.Generator().manual_seed(7)
    new = torch.nn.Parameter(
        layer.weight.detach()[:rows].clone() + torch.randn(rows, N_IN, generator=g)
    )
    del layer.weight
    layer.weight = new
    return new


def test_changed_parameters_are_refused_until_refreshed_then_synced(comm):
    model = make_model(seed=comm.rank)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    daso = DASO(model, optimizer, total_epochs=4, comm=comm, node_size=1, warmup_epochs=4)
    train_epoch(daso, model, comm, epoch=0, n_batches=2)

    # the first layer becomes a 2-row "low-rank" factor, different on every rank
    new = replace_first_weight(model, rows=2)
    with torch.no_grad():
        new.add_(comm.rank)
    model[0].bias = torch.nn.Parameter(model[0].bias.detach()[:2].clone())
    model[2] = torch.nn.Linear(2, N_OUT)
    optimizer.param_groups[0]["params"] = list(model.parameters())
    expected = torch.cat([p.detach().reshape(-1).double() for p in model.parameters()])
    comm.allreduce(expected)
    expected /= comm.size

    daso.last_batch = 0
    with pytest.raises(RuntimeError, match="refresh_parameters"):
        daso.step()
    daso.refresh_parameters()
    x, y = batch_of(comm.rank, 1, 0)
    daso.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    daso.step()  # lr 0: the warm-up's blocking sync averages the new parameters
    assert [id(p) for p in daso.params] == [id(p) for p in model.parameters()]
    assert sorted(tuple(p.shape) for p in daso.params) == [(2,), (2, N_IN), (N_OUT,), (N_OUT, 2)]
    got = flat(model).double()
    torch.testing.assert_close(got, expected.to(got.dtype), rtol=1e-6, atol=1e-6)
    rows = gather_params(comm, model)
    assert all(torch.equal(rows[0], r) for r in rows)
    daso.close()
