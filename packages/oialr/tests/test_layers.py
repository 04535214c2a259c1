"""Low-rank layers against dense PyTorch layers and NumPy: factorisation, outputs, gradients."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from oialr import (
    LowRankConv,
    LowRankLinear,
    LowRankMultiheadAttention,
    LowRankWeight,
    is_eligible,
    merge,
    tall_shape,
)


def _assert_orthonormal_columns(q: torch.Tensor, tol: float = 1e-12) -> None:
    eye = np.eye(q.shape[1])
    np.testing.assert_allclose(q.T.numpy() @ q.numpy(), eye, atol=tol)


@pytest.mark.parametrize("out_features, in_features", [(40, 12), (12, 40), (16, 16)])
def test_linear_conversion_reproduces_weight_with_orthonormal_bases(
    float64, out_features, in_features
):
    torch.manual_seed(0)
    dense = nn.Linear(in_features, out_features)
    layer = LowRankLinear.from_linear(dense)
    w = dense.weight.detach().numpy()
    product = layer.U.numpy() @ layer.S.detach().numpy() @ layer.Vh.numpy()
    tall = w.T if out_features < in_features else w
    assert np.linalg.norm(product - tall) / np.linalg.norm(tall) < 1e-6
    _assert_orthonormal_columns(layer.U)
    _assert_orthonormal_columns(layer.Vh.T)
    np.testing.assert_allclose(
        np.diag(layer.S.detach().numpy()), np.linalg.svd(w, compute_uv=False), rtol=1e-12
    )
    assert layer.bias is dense.bias
    assert [n for n, p in layer.named_parameters()] == ["S", "bias"]
    assert {n for n, _ in layer.named_buffers()} == {"U", "Vh"}


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(3, 8, 3, padding=1),  # 8 x 27: transposed to 27 x 8
        nn.Conv2d(4, 40, 2, stride=2),  # 40 x 16: already tall
        nn.Conv1d(5, 6, 3, padding=2, dilation=2, padding_mode="reflect"),
    ],
)
def test_conv_conversion_reproduces_kernel_and_output(float64, conv):
    torch.manual_seed(1)
    conv = conv.double()
    layer = LowRankConv.from_conv(conv)
    w2d = conv.weight.detach().reshape(conv.weight.shape[0], -1).numpy()
    m, n, transposed = tall_shape(*w2d.shape)
    tall = w2d.T if transposed else w2d
    product = layer.U.numpy() @ layer.S.detach().numpy() @ layer.Vh.numpy()
    assert product.shape == (m, n)
    assert np.linalg.norm(product - tall) / np.linalg.norm(tall) < 1e-6
    _assert_orthonormal_columns(layer.U)
    x = torch.randn(2, conv.in_channels, *([9] * (conv.weight.dim() - 2)))
    for factorized in (True, False):
        layer.factorized = factorized
        torch.testing.assert_close(layer(x), conv(x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("factorized", [True, False])
def test_linear_output_matches_dense(float64, factorized):
    torch.manual_seed(2)
    dense = nn.Linear(30, 20)
    layer = LowRankLinear.from_linear(dense, factorized=factorized)
    x = torch.randn(7, 30)
    torch.testing.assert_close(layer(x), dense(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("same_dim", [True, False])
def test_attention_output_matches_dense(float64, same_dim):
    torch.manual_seed(3)
    kdim = None if same_dim else 12
    mha = nn.MultiheadAttention(16, 4, batch_first=True, kdim=kdim, vdim=kdim).eval()
    layer = LowRankMultiheadAttention(mha).eval()
    q = torch.randn(2, 5, 16)
    kv = torch.randn(2, 6, 16 if same_dim else 12)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[0, -1] = True
    want, want_w = mha(q, kv, kv, key_padding_mask=mask)
    got, got_w = layer(q, kv, kv, key_padding_mask=mask)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(got_w, want_w, rtol=1e-10, atol=1e-10)
    dense = layer.to_dense()
    torch.testing.assert_close(dense(q, kv, kv)[0], mha(q, kv, kv)[0], rtol=1e-10, atol=1e-10)


def _tall_grad(factor: LowRankWeight, dense_grad: torch.Tensor) -> torch.Tensor:
    g = dense_grad.reshape(factor.rows, factor.cols)
    return g.T if factor.transposed else g


@pytest.mark.parametrize("factorized", [True, False])
def test_s_grad_is_projected_gradient_of_full_rank_twin(float64, factorized):
    torch.manual_seed(4)
    twin = nn.Sequential(nn.Linear(12, 30), nn.Tanh(), nn.Linear(30, 8))
    low = nn.Sequential(
        LowRankLinear.from_linear(twin[0], factorized),
        nn.Tanh(),
        LowRankLinear.from_linear(twin[2], factorized),
    )
    for layer in (low[0], low[2]):  # a dense S, as after some training
        layer.S.data += 0.1 * torch.randn_like(layer.S)
    with torch.no_grad():
        twin[0].weight.copy_(low[0].weight)
        twin[2].weight.copy_(low[2].weight)
    x, y = torch.randn(16, 12), torch.randn(16, 8)
    for model in (twin, low):
        ((model(x) - y) ** 2).mean().backward()
    for i in (0, 2):
        factor = low[i]
        g = _tall_grad(factor, twin[i].weight.grad)
        want = factor.U.T @ g @ factor.Vh.T
        torch.testing.assert_close(factor.S.grad, want, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(factor.bias.grad, twin[i].bias.grad)
        assert factor.U.grad is None and factor.Vh.grad is None


def test_s_grad_of_conv_and_attention_is_projected_gradient(float64):
    torch.manual_seed(5)
    conv = nn.Conv2d(3, 6, 3)
    low_conv = LowRankConv.from_conv(conv)
    low_conv.S.data += 0.1 * torch.randn_like(low_conv.S)
    with torch.no_grad():
        conv.weight.copy_(low_conv.weight)
    x = torch.randn(2, 3, 7, 7)
    conv(x).square().sum().backward()
    low_conv(x).square().sum().backward()
    g = _tall_grad(low_conv, conv.weight.grad)
    want = low_conv.U.T @ g @ low_conv.Vh.T
    torch.testing.assert_close(low_conv.S.grad, want, rtol=1e-10, atol=1e-12)

    mha = nn.MultiheadAttention(8, 2)
    low = LowRankMultiheadAttention(mha)
    q = torch.randn(4, 3, 8)
    mha(q, q, q)[0].square().sum().backward()
    low(q, q, q)[0].square().sum().backward()
    for factor, dense_grad in ((low.in_proj, mha.in_proj_weight.grad), (low.out_proj, None)):
        if dense_grad is None:
            dense_grad = mha.out_proj.weight.grad
        g = _tall_grad(factor, dense_grad)
        torch.testing.assert_close(
            factor.S.grad, factor.U.T @ g @ factor.Vh.T, rtol=1e-9, atol=1e-12
        )


def test_eligibility_skips_short_side_below_a_tenth():
    assert is_eligible(100, 10) and is_eligible(10, 100)
    assert not is_eligible(100, 9) and not is_eligible(9, 100)
    assert tall_shape(3, 5) == (5, 3, True)


def test_merge_gives_plain_modules_with_the_same_outputs(float64):
    torch.manual_seed(6)
    model = nn.Sequential(
        LowRankConv.from_conv(nn.Conv2d(2, 8, 3, padding=1)),
        nn.Flatten(),
        LowRankLinear.from_linear(nn.Linear(8 * 5 * 5, 16)),
    )
    merged = merge(model)
    assert type(merged[0]) is nn.Conv2d and type(merged[2]) is nn.Linear
    x = torch.randn(3, 2, 5, 5)
    torch.testing.assert_close(merged(x), model(x), rtol=1e-12, atol=1e-12)
    assert not any(isinstance(m, LowRankWeight) for m in merged.modules())


def test_load_state_dict_adopts_the_checkpoints_rank(float64):
    torch.manual_seed(7)
    small = LowRankLinear.from_linear(nn.Linear(10, 20))
    small.set_factors(small.U[:, :3], small.S.detach()[:3, :3], small.Vh[:3])
    fresh = LowRankLinear.from_linear(nn.Linear(10, 20))
    fresh.load_state_dict(small.state_dict())
    assert fresh.rank == 3
    x = torch.randn(4, 10)
    torch.testing.assert_close(fresh(x), small(x))


def test_bad_rank_is_rejected():
    with pytest.raises(ValueError, match="rank"):
        LowRankLinear(4, 8, rank=5)
    layer = LowRankWeight(8, 4)
    with pytest.raises(ValueError, match="factors"):
        layer.set_factors(torch.zeros(8, 2), torch.zeros(2, 2), torch.zeros(3, 4))


def test_transformer_encoder_layer_runs_on_low_rank_attention_in_train_and_eval(float64):
    """nn.TransformerEncoderLayer reads in_proj_weight (and takes a fast path in no-grad eval)."""
    torch.manual_seed(8)
    dense = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True)
    low = copy.deepcopy(dense)
    low.self_attn = LowRankMultiheadAttention(low.self_attn)
    x = torch.randn(3, 5, 16)
    for train_mode in (True, False):
        dense.train(train_mode)
        low.train(train_mode)
        torch.testing.assert_close(low(x), dense(x), rtol=1e-10, atol=1e-10)
        with torch.no_grad():
            torch.testing.assert_close(low(x), dense(x), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(low.self_attn.in_proj_weight, dense.self_attn.in_proj_weight)
