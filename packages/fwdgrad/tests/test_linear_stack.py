"""The model API's matmul path for Linear stacks against float64 backprop and the vmap path."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fwdgrad
from fwdgrad.tangents import TangentStream, mix_seed


def make_stack(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    inner = nn.Sequential(nn.Linear(8, 5), nn.ReLU())
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), inner, nn.Linear(5, 4)).double()


def batch(seed: int = 1, shape: tuple = (11,)):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 4, shape, generator=gen)
    return x, y


def closure_for(x, y):
    return lambda run: F.cross_entropy(run(x).reshape(-1, 4), y.reshape(-1))


def backprop_gradient(net, x, y) -> torch.Tensor:
    params = [p for p in net.parameters() if p.requires_grad]
    grads = torch.autograd.grad(closure_for(x, y)(net), params)
    return torch.cat([g.reshape(-1) for g in grads])


def tangent_matrix(net, seed: int, k: int, kind: str) -> torch.Tensor:
    """n x k: the tangents of the first step of a model with ``seed``, drawn by the stream."""
    shapes = [p.shape for p in net.parameters() if p.requires_grad]
    stream = TangentStream(shapes, mix_seed(seed, 0), kind, dtype=torch.float64)
    return torch.cat([t.reshape(k, -1) for t in stream.chunk(0, k)], dim=1).T


def grads_of(net) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in net.parameters() if p.requires_grad])


def run_path(linear_path: bool, x, y, make=make_stack, **options):
    net = make()
    fg = fwdgrad.ForwardGradientModel(net, seed=3, linear_path=linear_path, **options)
    loss = fg.fill_grad(closure_for(x, y))
    return fg, loss, grads_of(net)


@pytest.mark.parametrize("tangents", ["normal", "rademacher"])
def test_matmul_path_jvps_equal_the_backprop_dot_products(tangents):
    x, y = batch()
    fg, loss, _ = run_path(True, x, y, k=7, tangents=tangents)
    assert fg.last_path == "linear"
    net = make_stack()
    expected = tangent_matrix(net, 3, 7, tangents).T @ backprop_gradient(net, x, y)
    torch.testing.assert_close(fg.last_result.jvps[0], expected, rtol=0, atol=1e-10)
    with torch.no_grad():
        assert float(loss) == pytest.approx(float(closure_for(x, y)(net)), abs=1e-12)


# k = 1, a few tangents, k > n (the projection keeps n), and k over chunks (tangents regenerated)
@pytest.mark.parametrize(("k", "chunk_size"), [(1, None), (7, None), (200, None), (17, 8)])
@pytest.mark.parametrize("tangents", ["normal", "rademacher", "orthonormal"])
@pytest.mark.parametrize("aggregation", ["mean", "projection"])
def test_matmul_path_estimate_equals_the_vmap_path(aggregation, tangents, k, chunk_size):
    x, y = batch()
    options = dict(k=k, aggregation=aggregation, tangents=tangents, chunk_size=chunk_size)
    fast, fast_loss, fast_grad = run_path(True, x, y, **options)
    slow, slow_loss, slow_grad = run_path(False, x, y, **options)
    assert (fast.last_path, slow.last_path) == ("linear", "generic")
    assert fast.last_result.k == slow.last_result.k
    torch.testing.assert_close(
        fast.last_result.jvps[0], slow.last_result.jvps[0], rtol=0, atol=1e-12
    )
    torch.testing.assert_close(fast_grad, slow_grad, rtol=1e-10, atol=1e-12)
    assert float(fast_loss) == pytest.approx(float(slow_loss), abs=1e-14)


def test_matmul_path_projection_recovers_the_gradient_when_k_exceeds_n():
    x, y = batch()
    net = make_stack()
    fg, _, grad = run_path(True, x, y, k=200, aggregation="projection", tangents="rademacher")
    assert fg.last_path == "linear" and fg.last_result.k == [
        sum(p.numel() for p in net.parameters())
    ]
    torch.testing.assert_close(grad, backprop_gradient(net, x, y), rtol=0, atol=1e-10)


def test_frozen_parameters_get_no_tangents_and_no_grad():
    def make():
        net = make_stack()
        net[0].weight.requires_grad_(False)
        net[2][0].bias.requires_grad_(False)
        return net

    x, y = batch()
    fast, _, fast_grad = run_path(True, x, y, make=make, k=5, aggregation="projection")
    _, _, slow_grad = run_path(False, x, y, make=make, k=5, aggregation="projection")
    assert fast.last_path == "linear"
    assert fast.module[0].weight.grad is None and fast.module[2][0].bias.grad is None
    torch.testing.assert_close(fast_grad, slow_grad, rtol=1e-10, atol=1e-12)
    expected = tangent_matrix(make(), 3, 5, "normal").T @ backprop_gradient(make(), x, y)
    torch.testing.assert_close(fast.last_result.jvps[0], expected, rtol=0, atol=1e-10)


def test_inputs_with_several_leading_dimensions_take_the_matmul_path():
    x, y = batch(shape=(3, 4))
    fast, _, fast_grad = run_path(True, x, y, k=6, aggregation="projection")
    _, _, slow_grad = run_path(False, x, y, k=6, aggregation="projection")
    assert fast.last_path == "linear"
    torch.testing.assert_close(fast_grad, slow_grad, rtol=1e-10, atol=1e-12)


def with_layer_norm():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.Linear(8, 4)).double()


def with_hook():
    net = make_stack()
    net[1].register_forward_hook(lambda module, args, out: out * 2)
    return net


@pytest.mark.parametrize("make", [with_layer_norm, with_hook], ids=["layer_norm", "hook"])
def test_other_modules_take_the_generic_path_with_correct_jvps(make):
    x, y = batch()
    fg, _, _ = run_path(True, x, y, make=make, k=4)
    assert fg.last_path == "generic"
    net = make()
    expected = tangent_matrix(net, 3, 4, "normal").T @ backprop_gradient(net, x, y)
    torch.testing.assert_close(fg.last_result.jvps[0], expected, rtol=0, atol=1e-10)


def test_a_closure_with_two_inputs_takes_the_generic_path_with_correct_jvps():
    x, y = batch()
    net = make_stack()
    fg = fwdgrad.ForwardGradientModel(net, k=4, seed=3)

    def two_halves(run):
        return F.cross_entropy(run(x[:5]), y[:5]) + F.cross_entropy(run(x[5:]), y[5:])

    fg.fill_grad(two_halves)
    assert fg.last_path == "generic"
    reference = make_stack()  # the same seed: the same parameters as net
    grads = torch.autograd.grad(two_halves(reference), list(reference.parameters()))
    g = torch.cat([t.reshape(-1) for t in grads])
    expected = tangent_matrix(net, 3, 4, "normal").T @ g
    torch.testing.assert_close(fg.last_result.jvps[0], expected, rtol=0, atol=1e-10)


def test_matmul_path_records_no_autograd_graph():
    x, y = batch()
    net = make_stack()
    fg = fwdgrad.ForwardGradientModel(net, k=4, aggregation="projection", seed=0)
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = fg.fill_grad(closure_for(x, y))
    assert fg.last_path == "linear"
    assert saved == [] and loss.grad_fn is None
    assert all(p.grad.grad_fn is None for p in net.parameters())


def test_tangent_buffers_are_reused_between_steps():
    x, y = batch()
    net = make_stack()
    fg = fwdgrad.ForwardGradientModel(net, k=4, tangents="rademacher", seed=0)
    fg.fill_grad(closure_for(x, y))
    first = {key: buf.data_ptr() for key, buf in fg._buffers.items()}
    fg.fill_grad(closure_for(x, y))
    assert first and {key: buf.data_ptr() for key, buf in fg._buffers.items()} == first


@pytest.mark.parametrize("int8_faster", [True, False])
@pytest.mark.parametrize("k", [1, 5])
def test_rademacher_projection_is_exact_with_int8_or_float_products(monkeypatch, int8_faster, k):
    from fwdgrad import linear_stack

    if int8_faster and not hasattr(torch, "_int_mm"):
        pytest.skip("this torch has no int8 matmul")
    calls = []
    if hasattr(torch, "_int_mm"):
        int_mm = torch._int_mm
        monkeypatch.setattr(torch, "_int_mm", lambda a, b: calls.append(1) or int_mm(a, b))
    monkeypatch.setattr(linear_stack, "int8_products_are_faster", lambda: int8_faster)
    x, y = batch()
    fg, _, grad = run_path(True, x, y, k=k, aggregation="projection", tangents="rademacher")
    assert fg.last_path == "linear"
    assert bool(calls) == (int8_faster and k > 1)
    # the projection of the float64 backprop gradient onto the span of the same signs
    net = make_stack()
    v, g = tangent_matrix(net, 3, k, "rademacher"), backprop_gradient(net, x, y)
    expected = v @ torch.linalg.solve(v.T @ v, v.T @ g)
    torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-12)


def test_the_int8_product_choice_is_measured_once():
    from fwdgrad import linear_stack

    first = linear_stack.int8_products_are_faster()
    assert isinstance(first, bool)
    assert linear_stack.int8_products_are_faster() is first
    assert len(linear_stack._INT8_FASTER) == 1


def make_deep(seed: int = 0) -> nn.Sequential:
    """Ten small layers: no parameter tensor holds more than a tenth of the parameters."""
    torch.manual_seed(seed)
    layers = [m for _ in range(10) for m in (nn.Linear(6, 6), nn.Tanh())]
    return nn.Sequential(*layers, nn.Linear(6, 4)).double()


# float64, so a chunk of c tangents holds 8 c bytes per parameter: 17 signs fit in chunks of
# 3 (24 bytes) but not of 2 (16), and 17 floats fit in neither; 17 tangents of the largest
# tensor fit in both
@pytest.mark.parametrize(("chunk_size", "signs_kept"), [(3, True), (2, False)])
def test_rademacher_signs_are_kept_as_int8_when_the_floats_do_not_fit(chunk_size, signs_kept):
    x, y = batch()
    net = make_deep()
    fg = fwdgrad.ForwardGradientModel(
        net, k=17, aggregation="projection", tangents="rademacher", seed=3, chunk_size=chunk_size
    )
    fg.fill_grad(closure_for(x, y))
    assert fg.last_path == "linear"
    keys = {key[0] for key in fg._buffers}
    assert ("kept-signs" in keys, "regenerated" in keys) == (signs_kept, not signs_kept)
    blocks = len(list(net.parameters()))
    kept = [fg._buffers[("kept-signs", b)] for b in range(blocks)] if signs_kept else []
    assert all(t.dtype == torch.int8 for t in kept)
    fresh = make_deep()
    v, g = tangent_matrix(fresh, 3, 17, "rademacher"), backprop_gradient(fresh, x, y)
    if signs_kept:  # the kept signs are the tangents, block by block
        torch.testing.assert_close(torch.cat([t.double().reshape(17, -1) for t in kept], 1), v.T)
    expected = v @ torch.linalg.solve(v.T @ v, v.T @ g)
    torch.testing.assert_close(grads_of(net), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_the_gram_matrix_equals_a_float64_reference(dtype):
    from fwdgrad import estimator

    rows = torch.randn(9, 1000, generator=torch.Generator().manual_seed(0)).to(dtype)
    gram = estimator.self_gram(rows)
    assert gram.dtype == torch.float64 and gram.shape == (9, 9)
    exact = rows.double().numpy()
    reference = torch.from_numpy(exact @ exact.T)
    tolerance = {torch.float64: 1e-12, torch.float32: 1e-3, torch.bfloat16: 20.0}[dtype]
    torch.testing.assert_close(gram, reference, rtol=0, atol=tolerance)
    if dtype != torch.bfloat16:  # NumPy's symmetric product: one triangle, mirrored
        assert torch.equal(gram, gram.T)
    # the sum over blocks, for a block given as both factors
    halves = [rows[:, :400], rows[:, 400:]]
    torch.testing.assert_close(estimator._cross(halves, halves), gram, rtol=0, atol=tolerance)


@pytest.mark.parametrize(
    "act", [nn.Tanh(), nn.Sigmoid(), nn.ReLU(), nn.ReLU(inplace=True), nn.GELU()]
)
def test_activation_values_and_slopes_equal_forward_mode(act):
    from torch.func import jvp

    from fwdgrad.linear_stack import _value_and_slope

    h = torch.cat([torch.linspace(-4, 4, 101, dtype=torch.float64), torch.zeros(3).double()])
    h = h.reshape(8, 13)
    value, slope = _value_and_slope(act, h.clone())
    expected_value, expected_slope = jvp(act, (h.clone(),), (torch.ones_like(h),))
    torch.testing.assert_close(value, expected_value, rtol=0, atol=1e-15)
    torch.testing.assert_close(slope, expected_slope, rtol=0, atol=1e-15)
