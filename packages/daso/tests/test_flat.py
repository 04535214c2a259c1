"""The flat parameter buffer DASO syncs through: views, rebuilds, and the mixed-dtype fallback."""

import copy

import pytest
import torch

from daso import DASO, SyncDataParallel
from daso._flat import FlatParameters, trainable


def small_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))


def packed(params):
    return torch.cat([p.detach().reshape(-1).double() for p in params])


def test_parameters_become_views_of_one_buffer_with_unchanged_values_and_outputs():
    model = small_model()
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(5, 4)
    out_before = model(x).detach()
    store = FlatParameters(trainable(model))
    flat = store.values()
    assert flat is store.flat and store.intact()
    torch.testing.assert_close(flat.double(), packed(before), rtol=0, atol=0)
    torch.testing.assert_close(model(x), out_before, rtol=0, atol=0)
    flat.mul_(2.0)  # writing the buffer writes the parameters
    for p, b in zip(model.parameters(), before):
        torch.testing.assert_close(p.detach(), 2.0 * b, rtol=0, atol=0)


def test_optimizer_steps_land_in_the_buffer():
    model, reference = small_model(), small_model()
    store = FlatParameters(trainable(model))
    for m in (model, reference):
        opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        for _ in range(3):
            opt.zero_grad()
            m(torch.ones(2, 4)).square().sum().backward()
            opt.step()
    torch.testing.assert_close(store.values().double(), packed(reference.parameters()))


def test_buffer_is_rebuilt_when_a_parameter_is_replaced():
    model = small_model()
    store = FlatParameters(trainable(model))
    first = model[0].weight
    first.data = torch.arange(12.0).reshape(3, 4)  # what model.to() or a conversion does
    assert not store.intact()
    flat = store.values()
    assert store.intact() and flat is store.flat
    torch.testing.assert_close(flat[:12], torch.arange(12.0), rtol=0, atol=0)
    torch.testing.assert_close(flat.double(), packed(model.parameters()), rtol=0, atol=0)


def test_mixed_dtypes_fall_back_to_packed_copies():
    model = small_model()
    model[2].double()
    params = trainable(model)
    store = FlatParameters(params)
    flat = store.values()
    assert store.flat is None and flat.dtype == torch.float64
    torch.testing.assert_close(flat, packed(params), rtol=0, atol=0)
    flat.zero_()
    assert all(p.abs().sum() > 0 for p in params)  # a copy: the parameters are untouched
    store.store(torch.arange(float(flat.numel()), dtype=torch.float64))
    torch.testing.assert_close(packed(params), torch.arange(float(flat.numel())).double())


@pytest.mark.mpi
def test_daso_follows_a_model_converted_to_float64_mid_training(comm):
    """Blocking phase: DASO stays equal to synchronous data parallelism after ``model.double()``
    replaced every parameter's storage (the flat buffer is rebuilt, not left stale)."""
    m_daso = small_model()
    m_sync = copy.deepcopy(m_daso)
    o_daso = torch.optim.SGD(m_daso.parameters(), lr=0.1)
    o_sync = torch.optim.SGD(m_sync.parameters(), lr=0.1)
    daso = DASO(m_daso, o_daso, comm=comm, total_epochs=4, warmup_epochs=4, node_size=1)
    sync = SyncDataParallel(m_sync, o_sync, comm=comm)
    for epoch, dtype in enumerate((torch.float32, torch.float64)):
        if dtype == torch.float64:
            m_daso.double(), m_sync.double()
        with daso.epoch(2), sync.epoch(2):
            for b in range(2):
                g = torch.Generator().manual_seed(100 * comm.rank + 10 * epoch + b)
                x = torch.randn(3, 4, generator=g, dtype=dtype)
                for wrapper, model in ((daso, m_daso), (sync, m_sync)):
                    wrapper.zero_grad()
                    model(x).square().mean().backward()
                    wrapper.step()
        daso.epoch_loss_logic(1.0)
    assert all(p.dtype == torch.float64 for p in m_daso.parameters())
    torch.testing.assert_close(packed(m_daso.parameters()), packed(m_sync.parameters()))
    everyone = comm.allgather(packed(m_daso.parameters()).unsqueeze(0))
    assert torch.equal(everyone, everyone[:1].expand_as(everyone))
    daso.close()
