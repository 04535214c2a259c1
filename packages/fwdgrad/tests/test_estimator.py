"""The estimator against float64 backprop: jvps, projection geometry, chunking, fallbacks."""

import pytest
import torch
from fwdgrad_helpers import SmallNet, cosine, flat

import fwdgrad
from fwdgrad.tangents import TangentStream


def supplied_tangents(net: SmallNet, k: int, seed: int = 5) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return {
        name: torch.randn(k, *p.shape, generator=gen, dtype=torch.float64)
        for name, p in net.params.items()
    }


def tangent_matrix(tangents: dict) -> torch.Tensor:
    """n x k, columns are the tangents."""
    return torch.cat([t.reshape(t.shape[0], -1) for t in tangents.values()], dim=1).T


@pytest.mark.parametrize("vectorize", [True, False])
def test_each_jvp_equals_the_backprop_dot_product(net, vectorize):
    tangents = supplied_tangents(net, 7)
    result = fwdgrad.forward_gradient_result(
        net.loss, net.params, tangents=tangents, vectorize=vectorize
    )
    expected = tangent_matrix(tangents).T @ net.gradient()
    torch.testing.assert_close(result.jvps[0], expected, rtol=0, atol=1e-10)
    assert float(result.loss) == pytest.approx(float(net.loss(net.params)), abs=1e-12)


def test_sampled_tangents_are_the_streams_tangents(net):
    result = fwdgrad.forward_gradient_result(net.loss, net.params, k=9, generator=42)
    stream = TangentStream([p.shape for p in net.params.values()], 42, dtype=torch.float64)
    matrix = torch.cat([t.reshape(9, -1) for t in stream.chunk(0, 9)], dim=1).T
    torch.testing.assert_close(result.jvps[0], matrix.T @ net.gradient(), rtol=0, atol=1e-10)


def test_projection_is_at_least_as_close_as_the_mean_for_the_same_tangents(net):
    g = net.gradient()
    for seed in range(8):
        tangents = supplied_tangents(net, 5, seed)
        proj = flat(
            fwdgrad.forward_gradient(
                net.loss, net.params, aggregation="projection", tangents=tangents
            )
        )
        mean = flat(
            fwdgrad.forward_gradient(net.loss, net.params, aggregation="mean", tangents=tangents)
        )
        assert cosine(proj, g) >= cosine(mean, g) - 1e-9


@pytest.mark.parametrize("chunk_size", [None, 3])
def test_projection_residual_is_orthogonal_to_every_tangent(net, chunk_size):
    tangents = supplied_tangents(net, 10)
    proj = flat(
        fwdgrad.forward_gradient(
            net.loss, net.params, aggregation="projection", tangents=tangents, chunk_size=chunk_size
        )
    )
    residual = proj - net.gradient()
    inner = tangent_matrix(tangents).T @ residual
    assert float(inner.abs().max()) < 1e-10 * float(net.gradient().norm()) * net.n


@pytest.mark.parametrize("tangents", ["normal", "rademacher", "orthonormal"])
@pytest.mark.parametrize("chunk_size", [None, 20])
def test_projection_recovers_gradient_when_k_equals_n(net, tangents, chunk_size):
    result = fwdgrad.forward_gradient_result(
        net.loss,
        net.params,
        k=net.n + 5,
        aggregation="projection",
        tangents=tangents,
        generator=1,
        chunk_size=chunk_size,
    )
    assert result.k == [net.n]  # k > n keeps n
    torch.testing.assert_close(flat(result.grad), net.gradient(), rtol=0, atol=1e-9)


def test_projection_is_idempotent(net):
    tangents = supplied_tangents(net, 6)
    matrix = tangent_matrix(tangents)
    once = flat(
        fwdgrad.forward_gradient(net.loss, net.params, aggregation="projection", tangents=tangents)
    )
    again = fwdgrad.aggregate(matrix, matrix.T @ once, "projection")
    torch.testing.assert_close(again, once, rtol=0, atol=1e-12)


def test_mean_and_sum_are_the_tangent_combination(net):
    tangents = supplied_tangents(net, 4)
    matrix = tangent_matrix(tangents)
    expected_sum = matrix @ (matrix.T @ net.gradient())
    mean = flat(
        fwdgrad.forward_gradient(net.loss, net.params, aggregation="mean", tangents=tangents)
    )
    total = flat(
        fwdgrad.forward_gradient(net.loss, net.params, aggregation="sum", tangents=tangents)
    )
    torch.testing.assert_close(total, expected_sum, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mean, expected_sum / 4, rtol=1e-12, atol=1e-12)


def test_orthonormal_tangents_match_a_numpy_qr(net):
    import numpy as np

    k = 6
    stream = TangentStream([p.shape for p in net.params.values()], 3, dtype=torch.float64)
    raw = torch.cat([t.reshape(k, -1) for t in stream.chunk(0, k)], dim=1).T.numpy()
    q, _ = np.linalg.qr(raw)
    g = net.gradient().numpy()
    mean = flat(
        fwdgrad.forward_gradient(net.loss, net.params, k=k, tangents="orthonormal", generator=3)
    )
    np.testing.assert_allclose(mean.numpy(), q @ (q.T @ g) / k, atol=1e-12)


# chunks of 4 complete V^T V chunk pair by chunk pair, chunks of 10 tensor by tensor
@pytest.mark.parametrize("chunk_size", [4, 10])
@pytest.mark.parametrize("aggregation", ["mean", "sum", "projection"])
@pytest.mark.parametrize("tangents", ["normal", "rademacher", "orthonormal"])
def test_chunked_estimate_equals_single_pass(net, aggregation, tangents, chunk_size):
    def run(chunk_size):
        return flat(
            fwdgrad.forward_gradient(
                net.loss,
                net.params,
                k=17,
                aggregation=aggregation,
                tangents=tangents,
                generator=9,
                chunk_size=chunk_size,
            )
        )

    torch.testing.assert_close(run(chunk_size), run(None), rtol=1e-9, atol=1e-11)


def test_sequential_fallback_equals_vectorised(net):
    kwargs = dict(k=8, aggregation="projection", generator=2)
    seq = fwdgrad.forward_gradient(net.loss, net.params, vectorize=False, **kwargs)
    vec = fwdgrad.forward_gradient(net.loss, net.params, vectorize=True, **kwargs)
    torch.testing.assert_close(flat(seq), flat(vec), rtol=1e-12, atol=1e-12)


def test_auto_falls_back_when_vmap_cannot_run(net):
    def loss_with_item(p):  # .item() inside vmap is not supported; dual numbers handle it
        scale = 1.0 + 0.0 * p["b1"].sum().item()
        return net.loss(p) * scale

    auto = fwdgrad.forward_gradient(loss_with_item, net.params, k=5, generator=4)
    seq = fwdgrad.forward_gradient(net.loss, net.params, k=5, generator=4, vectorize=False)
    torch.testing.assert_close(flat(auto), flat(seq), rtol=1e-12, atol=1e-12)


def test_per_layer_projection_with_k_at_least_each_size_recovers_gradient(net):
    result = fwdgrad.forward_gradient_result(
        net.loss, net.params, k=48, aggregation="projection", per_layer=True, generator=0
    )
    assert result.k == [48, 8, 32, 4]
    torch.testing.assert_close(flat(result.grad), net.gradient(), rtol=0, atol=1e-10)


def test_per_layer_jvps_are_blockwise_dot_products(net):
    tangents = supplied_tangents(net, 3)
    result = fwdgrad.forward_gradient_result(
        net.loss, net.params, tangents=tangents, per_layer=True
    )
    g = net.gradient()
    offset = 0
    for (_name, t), d in zip(tangents.items(), result.jvps):
        block = t.reshape(3, -1)
        expected = block @ g[offset : offset + block.shape[1]]
        offset += block.shape[1]
        torch.testing.assert_close(d, expected, rtol=0, atol=1e-10)


def test_structure_of_params_is_kept():
    x = torch.randn(5, dtype=torch.float64)
    as_tensor = fwdgrad.forward_gradient(
        lambda t: (t**2).sum(), x, k=5, aggregation="projection", generator=0
    )
    torch.testing.assert_close(as_tensor, 2 * x, rtol=0, atol=1e-12)
    as_list = fwdgrad.forward_gradient(
        lambda ts: (ts[0] * ts[1]).sum(), [x, x + 1], k=2, generator=0
    )
    assert isinstance(as_list, list) and len(as_list) == 2


def test_same_seed_same_estimate_and_generator_advances(net):
    a = fwdgrad.forward_gradient(net.loss, net.params, k=3, generator=11)
    b = fwdgrad.forward_gradient(net.loss, net.params, k=3, generator=11)
    torch.testing.assert_close(flat(a), flat(b), rtol=0, atol=0)
    gen = torch.Generator().manual_seed(0)
    c = fwdgrad.forward_gradient(net.loss, net.params, k=3, generator=gen)
    d = fwdgrad.forward_gradient(net.loss, net.params, k=3, generator=gen)
    assert not torch.equal(flat(c), flat(d))


def test_no_autograd_graph_is_recorded(net):
    leaves = {k: v.clone().requires_grad_() for k, v in net.params.items()}
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        result = fwdgrad.forward_gradient_result(
            net.loss, leaves, k=4, aggregation="projection", generator=0
        )
    assert saved == []  # nothing kept for a backward pass
    assert result.loss.grad_fn is None and not result.loss.requires_grad
    assert all(g.grad_fn is None for g in result.grad.values())
    assert all(p.grad is None for p in leaves.values())


@pytest.mark.parametrize(
    ("kwargs", "error", "word"),
    [
        ({"k": 0}, ValueError, "k"),
        ({"k": 2, "aggregation": "single"}, ValueError, "single"),
        ({"aggregation": "median"}, ValueError, "aggregation"),
        ({"scaling": "huge"}, ValueError, "scaling"),
        ({"tangents": "uniform"}, ValueError, "tangents"),
        ({"chunk_size": 0}, ValueError, "chunk_size"),
        ({"vectorize": "yes"}, ValueError, "vectorize"),
        ({"generator": "seed"}, TypeError, "generator"),
        ({"local_weight": 2.0}, ValueError, "local_weight"),
    ],
)
def test_bad_arguments_are_named(net, kwargs, error, word):
    with pytest.raises(error, match=word):
        fwdgrad.forward_gradient(net.loss, net.params, **kwargs)


def test_bad_params_and_tangent_shapes_are_named(net):
    with pytest.raises(TypeError, match="params"):
        fwdgrad.forward_gradient(net.loss, 3.0)
    bad = {k: torch.zeros(2, 1) for k in net.params}
    with pytest.raises(ValueError, match="tangent"):
        fwdgrad.forward_gradient(net.loss, net.params, tangents=bad)


@pytest.mark.parametrize("spread", [1.0, 1e-6])  # independent tangents / nearly dependent ones
def test_projection_equals_the_least_squares_fit_on_both_solver_paths(spread):
    import numpy as np

    from fwdgrad.aggregation import well_conditioned

    rng = np.random.default_rng(0)
    n, k = 200, 6
    v = rng.standard_normal((n, k))
    v[:, 1:] = v[:, :1] + spread * v[:, 1:]  # spread 1e-6: cond(V) ~ 1e6, the QR path
    g = rng.standard_normal(n)
    coef, *_ = np.linalg.lstsq(v, g, rcond=None)
    tangents = torch.from_numpy(v)
    assert well_conditioned(tangents.T @ tangents) == (spread == 1.0)
    estimate = fwdgrad.aggregate(tangents, tangents.T @ torch.from_numpy(g), "projection")
    np.testing.assert_allclose(estimate.numpy(), v @ coef, rtol=0, atol=1e-8 * np.abs(g).max())


@pytest.mark.parametrize("aggregation", ["mean", "projection"])
def test_tangents_are_drawn_chunk_by_chunk_never_all_k(net, monkeypatch, aggregation):
    drawn = []
    original = TangentStream.chunk

    def recording(self, start, stop, blocks=None):
        drawn.append(stop - start)
        return original(self, start, stop, blocks)

    monkeypatch.setattr(TangentStream, "chunk", recording)
    fwdgrad.forward_gradient(
        net.loss, net.params, k=17, aggregation=aggregation, generator=1, chunk_size=4
    )
    assert max(drawn) <= 4
    assert sum(drawn) >= 2 * 17  # dropped after the jvp pass and regenerated for the estimate


def test_auto_with_one_tangent_equals_the_vectorised_pass(net):
    kwargs = dict(k=1, aggregation="single", generator=6)
    auto = fwdgrad.forward_gradient(net.loss, net.params, **kwargs)
    vec = fwdgrad.forward_gradient(net.loss, net.params, vectorize=True, **kwargs)
    torch.testing.assert_close(flat(auto), flat(vec), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.int8])
@pytest.mark.parametrize("n", [1, 7, 8, 1000, 4099])
def test_rademacher_signs_are_fair_independent_and_reproducible(n, dtype):
    from fwdgrad.tangents import rademacher_

    signs = torch.empty(4000, n, dtype=dtype)
    gen = torch.Generator().manual_seed(3)
    for row in signs:
        rademacher_(row, gen)
    draws = signs.double()
    assert set(draws.unique().tolist()) <= {-1.0, 1.0}
    # E v = 0 and E v v^T = I: every mean and every off-diagonal second moment within 5 s.e.
    se = 1 / draws.shape[0] ** 0.5
    assert draws.mean(0).abs().max() < 5 * se
    if n > 1:
        second = draws[:, :64].T @ draws[:, :64] / draws.shape[0]
        off = second - torch.diag(torch.diagonal(second))
        assert off.abs().max() < 5 * se
    again = torch.empty(n, dtype=torch.float64)
    rademacher_(again, torch.Generator().manual_seed(3))
    torch.testing.assert_close(again, draws[0], rtol=0, atol=0)


def test_int8_and_float_signs_are_the_same_draws():
    from fwdgrad.tangents import rademacher_

    for n in (5, 64, 1001):
        as_int8 = rademacher_(torch.empty(n, dtype=torch.int8), torch.Generator().manual_seed(8))
        as_float = rademacher_(torch.empty(n), torch.Generator().manual_seed(8))
        torch.testing.assert_close(as_int8.float(), as_float, rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["normal", "rademacher"])
def test_stream_writes_the_same_tangents_into_given_buffers(kind):
    stream = TangentStream([(3, 4), (5,)], 21, kind, dtype=torch.float64)
    buffers = [
        torch.full((6, 3, 4), 9.0, dtype=torch.float64),
        torch.zeros(6, 5, dtype=torch.float64),
    ]
    into = stream.chunk(2, 5, out=buffers)
    for fresh, given, buffer in zip(stream.chunk(2, 5), into, buffers):
        torch.testing.assert_close(given, fresh, rtol=0, atol=0)
        assert given.data_ptr() == buffer.data_ptr()
