"""The OIALR controller: pruning rule, re-orthogonalisation, schedule, optimiser state, checkpoints."""

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from oialr import OIALR, LowRankLinear, LowRankWeight, load_checkpoint, pruned_rank, save_checkpoint


def _mlp(seed: int, widths=(12, 40, 40, 40, 6)) -> nn.Sequential:
    torch.manual_seed(seed)
    layers = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.Tanh()]
    return nn.Sequential(*layers[:-1])


def _batches(seed: int, n: int, d_in: int = 12, d_out: int = 6):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(16, d_in, generator=g), torch.randint(0, d_out, (16,), generator=g))
        for _ in range(n)
    ]


def _train(model, optimizer, controller, batches):
    for x, y in batches:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if controller is not None:
            controller.step()
    return loss


# ------------------------------------------------------------------------------- pruning rule
def test_pruned_rank_cuts_at_the_fraction_of_the_largest_value():
    assert pruned_rank([10, 8, 5, 1.5, 0.9, 0.5], 0.1, min_rank=0) == 4


def test_pruned_rank_at_most_halves_per_update():
    assert pruned_rank([10, 0.5, 0.4, 0.3, 0.2, 0.1], 0.1, min_rank=0) == 3


def test_pruned_rank_keeps_rank_without_small_values_and_respects_minimum():
    assert pruned_rank([10, 9, 8, 7], 0.1) == 4
    # half of 8 is not above the minimum 5, so the minimum wins over the cut at 1
    assert pruned_rank([10, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], 0.1, min_rank=5) == 5
    assert pruned_rank([10, 0.5], 0.1, min_rank=1) == 1


def _layer_with_spectrum(sigma, rows=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = len(sigma)
    u, _ = torch.linalg.qr(torch.randn(rows, n, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    w = u @ torch.diag(torch.tensor(sigma, dtype=torch.float64)) @ v.T
    linear = nn.Linear(n, rows, dtype=torch.float64)
    with torch.no_grad():
        linear.weight.copy_(w)
    return nn.Sequential(linear, nn.Linear(rows, 3, dtype=torch.float64)), w


def test_pruning_keeps_the_best_rank_r_approximation(float64):
    sigma = [10, 8, 5, 1.5, 0.9, 0.5]
    model, w = _layer_with_spectrum(sigma)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    ctl = OIALR(model, opt, delay=1, sigma_cutoff_fraction=0.1, min_rank_fraction=0.0)
    ctl.step()
    assert ctl.ranks() == {"0": 4}
    error = torch.linalg.norm(model[0].weight - w)
    assert error.item() == pytest.approx(math.sqrt(0.9**2 + 0.5**2), rel=1e-10)


# ------------------------------------------------------------------------------- re-orthogonalisation
def test_reorthogonalisation_leaves_weight_unchanged_and_diagonalises_s(float64):
    model = _mlp(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    ctl = OIALR(model, opt, delay=2, stability_frequency=3, sigma_cutoff_fraction=0.0)
    _train(model, opt, ctl, _batches(0, 4))  # converted at 2, S dense after 2 more steps
    layers = ctl.layers()
    assert all(not torch.allclose(f.S, torch.diag(torch.diagonal(f.S))) for _, f in layers)
    before = {n: f.weight.detach().clone() for n, f in layers}
    ranks = ctl.ranks()
    ctl.layer_share_step = 1.0
    ctl._check()
    for name, factor in ctl.layers():
        torch.testing.assert_close(factor.weight, before[name], rtol=0, atol=1e-12)
        s = factor.S.detach()
        torch.testing.assert_close(s, torch.diag(torch.diagonal(s)), rtol=0, atol=0)
        assert bool(torch.all(torch.diff(torch.diagonal(s)) <= 0))
        eye = torch.eye(factor.rank)
        torch.testing.assert_close(factor.U.T @ factor.U, eye, rtol=0, atol=1e-12)
        torch.testing.assert_close(factor.Vh @ factor.Vh.T, eye, rtol=0, atol=1e-12)
    assert ctl.ranks() == ranks


def test_rotated_momentum_keeps_the_sgd_trajectory(float64):
    """Without pruning a check is a change of basis; SGD with momentum must not notice it."""
    runs = []
    for check in (False, True):
        model = _mlp(1)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
        ctl = OIALR(model, opt, delay=2, stability_frequency=10**6, sigma_cutoff_fraction=0.0)
        data = _batches(1, 8)
        _train(model, opt, ctl, data[:4])
        if check:
            ctl.layer_share_step = 1.0
            ctl._check()
        _train(model, opt, ctl, data[4:])
        runs.append([f.weight.detach() for _, f in ctl.layers()])
    for a, b in zip(*runs):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("make_opt", [torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD])
def test_optimizer_moments_follow_new_shapes(float64, make_opt):
    model = _mlp(2)
    kwargs = {"momentum": 0.9} if make_opt is torch.optim.SGD else {"amsgrad": True}
    opt = make_opt(model.parameters(), lr=0.01, **kwargs)
    ctl = OIALR(model, opt, delay=2, stability_frequency=2, sigma_cutoff_fraction=0.5)
    _train(model, opt, ctl, _batches(2, 4))
    factor = ctl.layers()[-1][1]
    r = factor.rank
    state = opt.state[factor.S]
    keys = ["momentum_buffer"] if make_opt is torch.optim.SGD else ["exp_avg", "exp_avg_sq"]
    keys += [] if make_opt is torch.optim.SGD else ["max_exp_avg_sq"]
    # the first moment, mapped back to W space, must be that of the old basis, projected
    old = {k: state[k].clone() for k in keys}
    u_old, vh_old = factor.U.clone(), factor.Vh.clone()
    ctl.layer_share_step, ctl.sigma_cutoff_fraction = 1.0, 0.9
    ctl._check()
    state = opt.state[factor.S]
    assert factor.rank < r
    for k in keys:
        assert state[k].shape == factor.S.shape == (factor.rank, factor.rank)
    first = keys[0]
    w_space_old = u_old @ old[first] @ vh_old
    projected = factor.U @ factor.U.T @ w_space_old @ factor.Vh.T @ factor.Vh
    torch.testing.assert_close(factor.U @ state[first] @ factor.Vh, projected, atol=1e-12, rtol=0)
    for k in keys[1:]:
        assert bool(torch.all(state[k] >= 0))
    assert any(p is factor.S for g in opt.param_groups for p in g["params"])
    _train(model, opt, ctl, _batches(3, 2))  # keeps training with the new shapes


def test_conversion_carries_sgd_momentum_so_square_layers_follow_the_full_rank_run(float64):
    """A square layer at full rank is only a change of basis, if its momentum is carried over."""
    data = _batches(13, 8)
    twin = _mlp(13, widths=(12, 24, 24, 24, 6))
    twin_opt = torch.optim.SGD(twin.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    _train(twin, twin_opt, None, data)
    for mode, should_match in (("rotate", True), ("reset", False)):
        model = _mlp(13, widths=(12, 24, 24, 24, 6))
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
        ctl = OIALR(
            model,
            opt,
            delay=3,
            sigma_cutoff_fraction=0.0,
            keep_first_layer=True,
            keep_last_layer=True,
            optimizer_state=mode,
        )
        _train(model, opt, ctl, data)
        assert list(ctl.ranks()) == ["2", "4"]
        for i in (2, 4):
            close = torch.allclose(model[i].weight, twin[i].weight, rtol=0, atol=1e-10)
            assert close == should_match, (mode, i)


def test_conversion_projects_adam_moments_onto_s(float64):
    torch.manual_seed(14)
    model = nn.Sequential(nn.Linear(40, 12), nn.Tanh(), nn.Linear(12, 3))  # 12 x 40: transposed
    opt = torch.optim.Adam(model.parameters(), lr=0.01, amsgrad=True)
    ctl = OIALR(model, opt, delay=3, sigma_cutoff_fraction=0.0)
    x, y = torch.randn(16, 40), torch.randint(0, 3, (16,))
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if not ctl.converted:
            dense = {k: v.clone() for k, v in opt.state[model[0].weight].items()}
        ctl.step()
    factor = model[0]
    assert isinstance(factor, LowRankLinear) and factor.transposed
    state = opt.state[factor.S]
    u, v = factor.U.numpy(), factor.Vh.T.numpy()
    first = dense["exp_avg"].numpy().T  # the tall orientation, 40 x 12
    np.testing.assert_allclose(state["exp_avg"].numpy(), u.T @ first @ v, atol=1e-14)
    for key in ("exp_avg_sq", "max_exp_avg_sq"):
        want = (u**2).T @ dense[key].numpy().T @ (v**2)
        np.testing.assert_allclose(state[key].numpy(), want, rtol=1e-12, atol=1e-18)
    assert float(state["step"]) == float(dense["step"]) == 3
    assert model[0].weight not in opt.state


def test_slice_and_reset_modes(float64):
    for mode in ("slice", "reset"):
        model = _mlp(3)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        ctl = OIALR(model, opt, delay=2, stability_frequency=100, optimizer_state=mode)
        _train(model, opt, ctl, _batches(3, 3))
        factor = ctl.layers()[-1][1]
        before = opt.state[factor.S]["exp_avg"].clone()
        ctl.layer_share_step, ctl.sigma_cutoff_fraction = 1.0, 0.99
        ctl._check()
        r = factor.rank
        if mode == "slice":
            torch.testing.assert_close(opt.state[factor.S]["exp_avg"], before[:r, :r])
        else:
            assert factor.S not in opt.state


# ------------------------------------------------------------------------------- schedule
def test_conversion_waits_for_delay_then_checks_every_frequency():
    model = _mlp(4)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    ctl = OIALR(model, opt, delay=3, stability_frequency=4, layer_share_step=1.0)
    changed = [ctl.step() for _ in range(12)]
    assert changed == [False, False, True, False, False, False, True] + [False] * 3 + [True, False]
    assert [s for s, _ in ctl.rank_history] == [3, 7, 11]


def test_layers_are_processed_from_the_output_side_with_a_growing_share():
    model = _mlp(5, widths=(12, 40, 40, 40, 40, 6))  # four 40-wide factorised weights
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    ctl = OIALR(
        model, opt, delay=1, stability_frequency=1, layer_share_step=0.01, keep_last_layer=False
    )
    ctl.sigma_cutoff_fraction = 1.0  # every processed weight halves
    for _ in range(4):
        ctl.step()
    names = ["0", "2", "4", "6", "8"]
    # the 5th weight (40 x 6 -> 6 x 40, eligible) is the last: processed at every check
    history = [[r[n] for n in names] for _, r in ctl.rank_history]
    assert history == [
        [12, 40, 40, 40, 3],
        [12, 40, 40, 20, 1],
        [12, 40, 20, 10, 1],
        [12, 20, 10, 5, 1],
    ]


def test_stable_update_delay_skips_checks_after_an_update():
    model = _mlp(6)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    ctl = OIALR(
        model,
        opt,
        delay=1,
        stability_frequency=1,
        layer_share_step=1.0,
        stable_update_delay=1,
        sigma_cutoff_fraction=1.0,
    )
    for _ in range(3):
        ctl.step()
    assert [r["4"] for _, r in ctl.rank_history] == [20, 20, 10]


def test_keep_first_and_last_layer_and_eligibility():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.Linear(256, 20))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    names = [n for n, _ in OIALR(model, opt, keep_last_layer=False).eligible_modules()]
    assert names == ["0", "2"]  # 20 < 256/10: the classifier is not eligible
    ctl = OIALR(model, opt, delay=0, keep_first_layer=True, keep_last_layer=True)
    assert list(ctl.ranks()) == ["2"]
    assert type(model[0]) is nn.Linear and type(model[3]) is nn.Linear


def test_trainable_fraction_counts_s_biases_and_dense_layers():
    model = _mlp(7)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    full = sum(p.numel() for p in model.parameters())
    ctl = OIALR(model, opt, delay=1, sigma_cutoff_fraction=0.9, layer_share_step=1.0)
    ctl.step()
    ranks = ctl.ranks()
    biases = 40 + 40 + 40 + 6
    dense = 40 * 6  # the last layer stays full rank
    expected = sum(r * r for r in ranks.values()) + biases + dense
    assert ctl.trainable_count() == expected
    assert ctl.trainable_fraction() == pytest.approx(expected / full)
    assert [r.rank for r in ctl.report()] == list(ranks.values())


def test_only_s_bias_and_dense_layers_are_optimized():
    model = _mlp(8)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    ctl = OIALR(model, opt, delay=1)
    ctl.step()
    optimized = {id(p) for g in opt.param_groups for p in g["params"]}
    assert optimized == {id(p) for p in model.parameters()}
    assert all(not b.requires_grad for b in model.buffers())


# ------------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip_mid_training_gives_the_same_next_steps(tmp_path):
    data = _batches(9, 16)
    model = _mlp(9)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    ctl = OIALR(
        model, opt, delay=3, stability_frequency=3, sigma_cutoff_fraction=0.3, layer_share_step=0.5
    )
    _train(model, opt, ctl, data[:8])
    assert any(f.rank < f.full_rank for _, f in ctl.layers())
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, model, opt, ctl)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]

    resumed = _mlp(99)  # other initial values: everything must come from the checkpoint
    opt2 = torch.optim.AdamW(resumed.parameters(), lr=0.01)
    ctl2 = OIALR(
        resumed,
        opt2,
        delay=3,
        stability_frequency=3,
        sigma_cutoff_fraction=0.3,
        layer_share_step=0.5,
    )
    load_checkpoint(path, resumed, opt2, ctl2)
    assert ctl2.ranks() == ctl.ranks()
    _train(model, opt, ctl, data[8:])
    _train(resumed, opt2, ctl2, data[8:])
    assert ctl2.ranks() == ctl.ranks()
    for (n1, a), (n2, b) in zip(model.state_dict().items(), resumed.state_dict().items()):
        assert n1 == n2
        assert torch.equal(a, b), n1


# ------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, error, word",
    [
        ({"delay": -1}, ValueError, "delay"),
        ({"delay": 1.5}, TypeError, "delay"),
        ({"stability_frequency": 0}, ValueError, "stability_frequency"),
        ({"sigma_cutoff_fraction": 1.5}, ValueError, "sigma_cutoff_fraction"),
        ({"layer_share_step": 0.0}, ValueError, "layer_share_step"),
        ({"optimizer_state": "zero"}, ValueError, "optimizer_state"),
        ({"factorized": "yes"}, ValueError, "factorized"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, word):
    model = _mlp(10)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(error, match=word):
        OIALR(model, opt, **kwargs)


def test_model_and_optimizer_types_are_checked():
    model = _mlp(11)
    with pytest.raises(TypeError, match="model"):
        OIALR("net", torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(TypeError, match="optimizer"):
        OIALR(model, None)


def test_conv_and_attention_models_convert_and_train():
    torch.manual_seed(12)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 16, 3, padding=1)
            self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
            self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
            self.head = nn.Linear(16, 4)

        def forward(self, x):
            h = torch.relu(self.conv2(torch.relu(self.conv(x))))  # b, 16, 4, 4
            tokens = h.flatten(2).transpose(1, 2)
            out = self.attn(tokens, tokens, tokens, need_weights=False)[0]
            return self.head(out.mean(1))

    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    ctl = OIALR(
        model, opt, delay=2, stability_frequency=2, layer_share_step=1.0, sigma_cutoff_fraction=0.9
    )
    x, y = torch.randn(8, 1, 4, 4), torch.randint(0, 4, (8,))
    for _ in range(8):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        ctl.step()
    assert set(ctl.ranks()) == {"conv", "conv2", "attn.in_proj", "attn.out_proj"}
    assert all(isinstance(f, LowRankWeight) for _, f in ctl.layers())
    assert isinstance(model.attn.out_proj, LowRankLinear)
    assert ctl.ranks()["conv2"] < 16
    from oialr import merge

    merged = merge(model).eval()
    model.eval()
    np.testing.assert_allclose(merged(x).detach(), model(x).detach(), rtol=1e-4, atol=1e-5)
