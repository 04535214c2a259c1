"""F³'s defining properties, each checked against float64 autograd or a formula."""

import copy

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from f3.data import ErrorBuffer, IndexedDataset, epoch_orders
from f3.feedback import make_feedback
from f3.heads import error_signal, loss, target_matrix
from f3.network import F3Network, conv_blocks, mlp_blocks, transformer_blocks
from f3.trainer import Trainer

pytestmark = pytest.mark.timeout(60)


def make_problem(head, n=24, d=6, hidden=(5,), c=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    if head == "mse":
        y = torch.randn(n, c, generator=gen, dtype=torch.float64)
    else:
        y = torch.randint(0, c, (n,), generator=gen)
    net = F3Network(mlp_blocks(d, list(hidden), c, seed=seed), c, (d,), head=head, seed=seed)
    return x, y, net.double()


def grads(module):
    return [p.grad.clone() for p in module.parameters()]


@pytest.mark.parametrize("head", ["bce", "ce", "mse"])
def test_one_hidden_layer_f3_gradient_equals_backprop_when_feedback_is_output_weights(head):
    x, y, net = make_problem(head)
    reference = copy.deepcopy(net)
    targets = target_matrix(head, y, 3).double()
    # independent reference: plain float64 autograd through the whole composition
    value = loss(head, reference.blocks[1](reference.blocks[0](x)), targets)
    value.backward()
    with torch.no_grad():
        net.connectors[0].feedback = net.blocks[1].weight.detach().clone()
        current_error = error_signal("delayed_error", head, net(x), targets)
    trainer = Trainer(net, "f3")
    trainer.buffer = ErrorBuffer(current_error)
    trainer.train_step(x, targets, torch.arange(len(x)), apply=False)
    for mine, theirs in zip(net.parameters(), reference.parameters()):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=0, atol=1e-10)


def test_single_backward_through_connectors_gives_the_block_local_gradients():
    x, y, net = make_problem("bce", hidden=(5, 4))
    targets = target_matrix("bce", y, 3).double()
    error = torch.randn(len(x), 3, dtype=torch.float64)
    twin = copy.deepcopy(net)
    trainer = Trainer(net, "f3")
    trainer.buffer = ErrorBuffer(error)
    trainer.train_step(x, targets, torch.arange(len(x)), apply=False)
    twin.train()
    loss("bce", twin(x, error), targets).backward()
    for mine, theirs in zip(net.parameters(), twin.parameters()):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=0, atol=1e-12)


def test_hidden_gradient_matches_the_formula_for_a_tanh_block():
    x, y, net = make_problem("bce")
    targets = target_matrix("bce", y, 3).double()
    error = torch.randn(len(x), 3, dtype=torch.float64)
    trainer = Trainer(net, "f3")
    trainer.buffer = ErrorBuffer(error)
    trainer.train_step(x, targets, torch.arange(len(x)), apply=False)
    linear = net.blocks[0][0]
    a = (x @ linear.weight.T + linear.bias).detach()
    delta = (-(error @ net.connectors[0].feedback) / len(x)) * (1 - torch.tanh(a) ** 2)
    torch.testing.assert_close(linear.weight.grad, delta.T @ x, rtol=0, atol=1e-12)
    torch.testing.assert_close(linear.bias.grad, delta.sum(0), rtol=0, atol=1e-12)


@pytest.mark.parametrize("update", ["immediate", "batch"])
def test_first_epoch_of_f3_equals_drtp_and_the_second_does_not(update):
    x, y, net = make_problem("bce", n=60, hidden=(8, 6))
    runs = {}
    for method in ("f3", "drtp"):
        model = copy.deepcopy(net)
        trainer = Trainer(model, method, update=update, lr=1e-2)
        first = trainer.fit(x, y, epochs=1, batch_size=10, seed=3)
        after_one = [p.detach().clone() for p in model.parameters()]
        runs[method] = (trainer, after_one, first)
    for a, b in zip(runs["f3"][1], runs["drtp"][1]):
        assert torch.equal(a, b)
    # epoch 2: F³ now uses stored errors, DRTP the targets, so the weights part
    f3, drtp = runs["f3"][0], runs["drtp"][0]
    f3.fit(x, y, epochs=1, batch_size=10, seed=4)
    drtp.fit(x, y, epochs=1, batch_size=10, seed=4)
    hidden_f3 = f3.network.blocks[0][0].weight
    hidden_drtp = drtp.network.blocks[0][0].weight
    assert not torch.allclose(hidden_f3, hidden_drtp)


@pytest.mark.parametrize("update", ["immediate", "batch"])
@pytest.mark.parametrize(
    "variant", ["delayed_error", "delayed_loss", "delayed_error_one_hot", "delayed_loss_one_hot"]
)
def test_step_overwrites_the_batch_rows_with_the_error_of_this_pass(variant, update):
    x, y, net = make_problem("bce", n=30)
    targets = target_matrix("bce", y, 3).double()
    before = copy.deepcopy(net)
    trainer = Trainer(net, "f3", error=variant, update=update, lr=0.1)
    trainer.init_error_buffer(y)
    initial = trainer.buffer.errors.clone()
    batch = torch.tensor([3, 7, 11, 20])
    trainer.train_step(x[batch], targets[batch], batch)
    with torch.no_grad():
        logits = before.blocks[1](before.blocks[0](x[batch]))
    prediction = logits.sigmoid().requires_grad_(True)
    t = targets[batch]
    per_sample = -(t * prediction.log() + (1 - t) * (1 - prediction).log()).sum()
    (neg_grad,) = torch.autograd.grad(-per_sample, prediction)
    expected = (t - prediction.detach()) if "error" in variant else neg_grad
    if variant.endswith("one_hot"):
        expected = t * expected
    torch.testing.assert_close(trainer.buffer.errors[batch], expected, rtol=1e-9, atol=1e-12)
    others = torch.ones(len(x), dtype=torch.bool)
    others[batch] = False
    assert torch.equal(trainer.buffer.errors[others], initial[others])


@pytest.mark.parametrize("method", ["f3", "drtp", "dfa", "llo"])
def test_immediate_updates_give_the_same_weights_as_updates_after_the_pass(method):
    x, y, net = make_problem("ce", n=40, hidden=(6, 5))
    models = {}
    for update in ("immediate", "batch"):
        models[update] = copy.deepcopy(net)
        Trainer(models[update], method, update=update, lr=0.05).fit(x, y, 3, batch_size=8)
    for a, b in zip(models["immediate"].parameters(), models["batch"].parameters()):
        assert torch.equal(a, b)
    assert not torch.equal(models["batch"].blocks[-1].weight, net.blocks[-1].weight)


def test_softmax_variant_is_a_distribution_over_classes():
    logits, targets = torch.randn(5, 4), torch.eye(4)[[0, 1, 2, 3, 0]]
    e = error_signal("delayed_error_softmax", "bce", logits, targets)
    torch.testing.assert_close(e, torch.softmax(targets - logits.sigmoid(), 1))


@pytest.mark.parametrize("init", ["kaiming_uniform", "trinomial", "binomial", "identity"])
def test_feedback_matrices_are_bit_identical_after_training(init):
    x, y, _ = make_problem("bce", n=40)
    net = F3Network(mlp_blocks(6, [5, 4], 3), 3, (6,), feedback=init).double()
    before = [c.feedback.clone() for c in net.connectors]
    Trainer(net, "f3", lr=0.05).fit(x, y, epochs=3, batch_size=8)
    assert all(torch.equal(a, c.feedback) for a, c in zip(before, net.connectors))
    assert all(not c.feedback.requires_grad for c in net.connectors)
    assert not any(p is c.feedback for c in net.connectors for p in net.parameters())


def test_feedback_inits_have_their_value_sets():
    k = make_feedback(10, 400, "kaiming_uniform", seed=1)
    assert k.abs().max() <= 1 / 20 and k.abs().max() > 0.95 / 20
    assert set(make_feedback(3, 300, "trinomial").unique().tolist()) == {-1.0, 0.0, 1.0}
    assert set(make_feedback(3, 300, "binomial").unique().tolist()) == {0.0, 1.0}
    ident = make_feedback(3, 7, "identity")
    expected = torch.tensor(
        [[1, 0, 0, -1, 0, 0, 1], [0, 1, 0, 0, -1, 0, 0], [0, 0, 1, 0, 0, -1, 0]], dtype=torch.float
    )
    assert torch.equal(ident, expected)
    assert torch.equal(make_feedback(4, 9, seed=5), make_feedback(4, 9, seed=5))


def test_block_gradient_does_not_depend_on_the_next_blocks_weights():
    x, y, net = make_problem("bce", hidden=(5, 4))
    targets = target_matrix("bce", y, 3).double()
    error = torch.randn(len(x), 3, dtype=torch.float64)
    results = {}
    for method in ("f3", "bp"):
        for perturb in (False, True):
            model = copy.deepcopy(net)
            if perturb:
                with torch.no_grad():
                    model.blocks[1][0].weight.add_(torch.randn_like(model.blocks[1][0].weight))
            trainer = Trainer(model, method)
            trainer.buffer = ErrorBuffer(error)
            trainer.train_step(x, targets, torch.arange(len(x)), apply=False)
            results[method, perturb] = grads(model.blocks[0])
    assert all(torch.equal(a, b) for a, b in zip(results["f3", False], results["f3", True]))
    assert not torch.allclose(results["bp", False][0], results["bp", True][0])


class _OpRecorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


def test_eval_mode_runs_exactly_the_plain_forward(monkeypatch):
    x, _, net = make_problem("bce", hidden=(5, 4))
    plain = nn.Sequential(*copy.deepcopy(list(net.blocks)))
    net.eval()
    monkeypatch.setattr(
        type(net.connectors[0]), "gradient", lambda *a: pytest.fail("connector work in eval")
    )
    error = torch.ones(len(x), 3, dtype=torch.float64)
    with torch.no_grad():
        with _OpRecorder() as ours:
            out = net(x, error)
        with _OpRecorder() as theirs:
            expected = plain(x)
    assert ours.ops == theirs.ops
    assert torch.equal(out, expected)


def saved_bytes(fn):
    """Bytes autograd keeps for backward while ``fn`` runs (with gradients enabled)."""
    total = []

    def pack(tensor):
        total.append(tensor.numel() * tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(total)


def test_eval_mode_keeps_no_more_for_backward_than_the_plain_blocks():
    x, _, net = make_problem("bce", hidden=(5, 4))
    plain = nn.Sequential(*copy.deepcopy(list(net.blocks)))
    error = torch.ones(len(x), 3, dtype=torch.float64)
    net.eval()
    in_eval = saved_bytes(lambda: net(x, error))
    assert in_eval == saved_bytes(lambda: plain(x)) > 0
    net.train()  # in training the connectors keep their substitute gradients (n × d each)
    extra = sum(len(x) * c.feedback.shape[1] * 8 for c in net.connectors)
    assert saved_bytes(lambda: net(x, error)) == in_eval + extra


@pytest.mark.parametrize("kind", ["conv", "transformer"])
def test_conv_and_transformer_blocks_get_the_same_gradient_both_ways(kind):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 1, 8, 8, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 4, (6,), generator=gen)
    if kind == "conv":
        blocks = conv_blocks(1, [3, 4], 8, 4)
    else:
        blocks = transformer_blocks(1, 8, 4, 8, 2, 2, 4)
    net = F3Network(blocks, 4, (1, 8, 8), head="ce", feedback="trinomial").double()
    widths = [c.feedback.shape for c in net.connectors]
    assert widths == [(4, 3 * 4 * 4), (4, 4 * 2 * 2)] if kind == "conv" else [(4, 32)] * 3
    targets = target_matrix("ce", y, 4).double()
    error = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    twin = copy.deepcopy(net)
    trainer = Trainer(net, "f3")
    trainer.buffer = ErrorBuffer(error)
    trainer.train_step(x, targets, torch.arange(6), apply=False)
    twin.train()
    loss("ce", twin(x, error), targets).backward()
    for mine, theirs in zip(net.parameters(), twin.parameters()):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-12, atol=1e-12)


def test_llo_trains_only_the_last_block_and_dfa_uses_the_current_error():
    x, y, net = make_problem("bce", n=30, hidden=(5, 4))
    model = copy.deepcopy(net)
    Trainer(model, "llo", lr=0.1).fit(x, y, epochs=2, batch_size=10)
    for a, b in zip(model.blocks[:-1].parameters(), net.blocks[:-1].parameters()):
        assert torch.equal(a, b)
    assert not torch.equal(model.blocks[-1].weight, net.blocks[-1].weight)
    targets = target_matrix("bce", y, 3).double()
    dfa = Trainer(copy.deepcopy(net), "dfa")
    dfa.train_step(x, targets, torch.arange(len(x)), apply=False)
    f3 = Trainer(copy.deepcopy(net), "f3")
    with torch.no_grad():
        f3.buffer = ErrorBuffer(error_signal("delayed_error", "bce", net(x), targets))
    f3.train_step(x, targets, torch.arange(len(x)), apply=False)
    for a, b in zip(dfa.network.parameters(), f3.network.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=1e-12)


def test_f3_learns_a_regression_teacher():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(400, 5, generator=gen)
    y = torch.tanh(x @ torch.randn(5, 2, generator=gen))
    net = F3Network(mlp_blocks(5, [32], 2), 2, (5,), head="mse")
    trainer = Trainer(net, "f3", lr=3e-3)
    start = trainer.evaluate(x, y)["mse"]
    history = trainer.fit(x, y, epochs=20, batch_size=20, x_test=x, y_test=y)
    assert history[-1]["test_mse"] < 0.5 * start


def test_indexed_dataset_and_orders():
    data = IndexedDataset(torch.utils.data.TensorDataset(torch.arange(5.0), torch.arange(5)))
    assert data[3] == (torch.tensor(3.0), torch.tensor(3), 3)
    a, b = epoch_orders(7, 3, seed=1), epoch_orders(7, 3, seed=1)
    first = next(a)
    assert [len(t) for t in first] == [3, 3, 1]
    assert sorted(torch.cat(first).tolist()) == list(range(7))
    assert all(torch.equal(p, q) for p, q in zip(first, next(b)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "sgd"}, "method"),
        ({"update": "later"}, "update"),
        ({"error": "delayed"}, "error"),
    ],
)
def test_bad_arguments_name_what_is_wrong(kwargs, match):
    _, _, net = make_problem("bce")
    with pytest.raises(ValueError, match=match):
        Trainer(net, **kwargs)


def test_one_hot_errors_need_a_classification_head():
    _, _, net = make_problem("mse")
    with pytest.raises(ValueError, match="classification"):
        Trainer(net, error="delayed_error_one_hot")
    with pytest.raises(ValueError, match="feedback init"):
        make_feedback(3, 4, "orthogonal")
    with pytest.raises(ValueError, match="last block"):
        F3Network(mlp_blocks(4, [3], 2), 5, (4,))


@pytest.mark.parametrize("method", ["f3", "dfa"])
def test_a_dataloader_over_indexed_samples_trains_like_the_tensor_path(method):
    x, y, net = make_problem("bce", n=40, hidden=(6, 5))
    batches = [b.tolist() for b in next(epoch_orders(len(x), 8, seed=2))]
    loader = torch.utils.data.DataLoader(
        IndexedDataset(torch.utils.data.TensorDataset(x, y)), batch_sampler=batches
    )
    via_loader = Trainer(copy.deepcopy(net), method, lr=0.05)
    via_loader.fit_loader(loader, epochs=2)
    via_tensors = Trainer(copy.deepcopy(net), method, lr=0.05)
    if method == "f3":
        via_tensors.init_error_buffer(y)
    targets = via_tensors.targets(y)
    for _ in range(2):
        via_tensors.train_epoch([torch.tensor(b) for b in batches], x, targets)
    for a, b in zip(via_loader.network.parameters(), via_tensors.network.parameters()):
        assert torch.equal(a, b)
    if method == "f3":
        assert torch.equal(via_loader.buffer.errors, via_tensors.buffer.errors)
    with pytest.raises(ValueError, match="indices"):
        plain = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
        Trainer(copy.deepcopy(net), "drtp").fit_loader(plain, epochs=1)


def test_f3_closes_most_of_the_gap_between_drtp_and_backprop_on_a_teacher_task():
    from f3.data import teacher

    gaps = []
    for seed in (0, 1):
        split = teacher(seed=seed, num_samples=600)
        mse = {}
        for method in ("bp", "drtp", "f3"):
            net = F3Network(mlp_blocks(16, [16], 4, seed=seed), 4, (16,), head="mse", seed=seed)
            history = Trainer(net, method, lr=3e-3).fit(
                split.x_train, split.y_train, 20, 25, seed, split.x_test, split.y_test
            )
            mse[method] = history[-1]["test_mse"]
        assert mse["bp"] < mse["f3"] < mse["drtp"]
        gaps.append((mse["drtp"] - mse["f3"]) / (mse["drtp"] - mse["bp"]))
    # the delayed error carries most of backprop's information for a one-hidden-layer net
    assert sum(gaps) / len(gaps) > 0.6


@pytest.mark.parametrize("bad, shown", [(-1, "-1"), (10, "10")])
def test_out_of_range_class_index_is_named_in_the_error(bad, shown):
    from f3.heads import target_matrix

    targets = torch.tensor([0, 3, bad, 9])
    with pytest.raises(ValueError, match=rf"\[0, 10\), got {shown}$"):
        target_matrix("ce", targets, 10)
