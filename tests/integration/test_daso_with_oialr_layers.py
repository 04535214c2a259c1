"""Pipeline 3: DASO trains an MLP whose layers OIALR turns into low-rank U·S·Vᵀ layers mid-run;
every rank ends with the same shapes and the same weights."""

from __future__ import annotations

import torch
from torch import nn

from daso import DASO
from oialr import OIALR, LowRankLinear
from oialr.digits import build_model, load_digits

EPOCHS, BATCHES, BATCH = 8, 16, 32


def test_daso_trains_oialr_low_rank_layers_to_identical_weights(comm):
    x_train, y_train, x_test, y_test = load_digits(seed=0)
    model = build_model("mlp", seed=comm.rank)  # different starts: DASO's first sync must fix them
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    daso = DASO(
        model,
        optimizer,
        total_epochs=EPOCHS,
        comm=comm,
        node_size=1,
        warmup_epochs=1,
        cooldown_epochs=1,
    )
    # OIALR's SVDs run on one rank each and are broadcast over comm, so conversions agree
    lowrank = OIALR(
        model,
        optimizer,
        delay=3 * BATCHES,
        stability_frequency=BATCHES,
        sigma_cutoff_fraction=0.2,
        comm=comm,
    )
    batches = torch.Generator().manual_seed(100 + comm.rank)  # each rank its own data stream
    refreshes, phases = 0, []
    for _epoch in range(EPOCHS):
        phases.append(daso.global_skip)
        total = 0.0
        with daso.epoch(BATCHES):
            for _ in range(BATCHES):
                idx = torch.randint(0, len(y_train), (BATCH,), generator=batches)
                daso.zero_grad()
                loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
                loss.backward()
                daso.step()
                if lowrank.step():  # converted or pruned: S replaced the dense weights
                    daso.refresh_parameters()
                    refreshes += 1
                total += loss.item()
        daso.epoch_loss_logic(total / BATCHES)
    daso.close()

    assert any(p > 1 for p in phases), "DASO never reached its asynchronous phase"
    assert refreshes >= 2
    layers = [m for m in model.modules() if isinstance(m, LowRankLinear)]
    assert layers, "OIALR converted no layer"
    ranks = lowrank.ranks()
    assert all(r < 256 for r in ranks.values()), ranks

    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert all(s == shapes for s in comm.allgather_obj(shapes))
    flat = torch.cat([v.reshape(-1).double() for v in model.state_dict().values()])
    everyone = comm.allgather(flat.unsqueeze(0))
    assert torch.equal(everyone, everyone[:1].expand_as(everyone))

    # the forward pass of every low-rank layer is x·(U S Vᵀ)ᵀ + b, recomputed in float64
    probe = torch.Generator().manual_seed(5)
    for layer in layers:
        weight = layer.U.double() @ layer.S.detach().double() @ layer.Vh.double()
        x = torch.randn(16, weight.shape[1], generator=probe, dtype=torch.float64)
        with torch.no_grad():
            got = layer(x.to(layer.S.dtype)).double()
        want = x @ weight.T + layer.bias.detach().double()
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).double().mean().item()
    assert accuracy > 0.9, accuracy
