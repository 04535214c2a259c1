"""QRNN3D: the pooling recurrence, training on generated data, weights saved and loaded on CPU."""

import numpy as np
import pytest
import torch

import hyde
from hyde.cli import main
from hyde.nn import QRNN3D, load_model, qrnn_pool, save_model, train_qrnn3d
from hyde.nn.train import WEIGHTS, NNDenoiser


@pytest.mark.parametrize("reverse", [False, True])
def test_qrnn_pool_matches_the_recurrence(reverse):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((2, 3, 6, 4, 5))
    f = rng.uniform(size=z.shape)
    expected = np.zeros_like(z)
    h = np.zeros_like(z[:, :, 0])
    order = range(5, -1, -1) if reverse else range(6)
    for t in order:
        h = f[:, :, t] * h + (1 - f[:, :, t]) * z[:, :, t]
        expected[:, :, t] = h
    got = qrnn_pool(torch.from_numpy(z), torch.from_numpy(f), reverse).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_model_shapes_and_band_causality_of_one_layer():
    model = QRNN3D(channels=4, depth=2)
    x = torch.randn(1, 1, 7, 16, 12)
    assert model(x).shape == x.shape
    # a forward QRNN layer at band t depends on bands <= t+1 only (3-tap conv, then causal pool)
    layer = model.head
    y1 = layer(x)
    x2 = x.clone()
    x2[:, :, 5:] += 1.0
    y2 = layer(x2)
    assert torch.equal(y1[:, :, :4], y2[:, :, :4])


def test_training_lowers_the_loss_and_weights_roundtrip(tmp_path):
    model, losses = train_qrnn3d(steps=30, channels=4, bands=8, crop=16, batch=2, cubes=1)
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    save_model(model, tmp_path / "w.pt")
    loaded = load_model(tmp_path / "w.pt", device="cpu")
    x = torch.rand(1, 1, 8, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="not a file"):
        load_model(tmp_path / "missing.pt")
    torch.save({"something": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="QRNN3D"):
        load_model(tmp_path / "other.pt")


def test_cuda_saved_weights_load_on_cpu(tmp_path, monkeypatch):
    # HyDe's checkpoints held CUDA tensors and torch.load without map_location could not read
    # them on a CPU-only machine. Write a checkpoint whose storages are tagged "cuda:0" (as a
    # GPU run writes them) and load it with load_model on the CPU.
    model = QRNN3D(channels=4)
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        save_model(model, tmp_path / "w.pt")
    loaded = load_model(tmp_path / "w.pt", device="cpu")
    assert all(p.device.type == "cpu" for p in loaded.parameters())
    x = torch.rand(1, 1, 6, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    # our own saves are CPU copies in the first place
    save_model(model, tmp_path / "cpu.pt")
    blob = torch.load(tmp_path / "cpu.pt", weights_only=True)
    assert all(t.device.type == "cpu" for t in blob["state_dict"].values())


def test_shipped_tiny_weights_denoise(small_cube):
    cube = small_cube[0]
    noisy = hyde.add_noise(cube, "gaussian", seed=4, sigma=0.05)
    out = hyde.denoise(noisy, method="qrnn3d")
    assert out.dtype == noisy.dtype and out.shape == noisy.shape
    assert hyde.psnr(cube, out) > hyde.psnr(cube, noisy) + 3
    assert (WEIGHTS / "qrnn3d_tiny.pt").stat().st_size < 200_000
    odd = noisy[:31, :29]  # padded to the network's multiple and cut back
    assert NNDenoiser()(odd).shape == odd.shape


def test_train_command(tmp_path, capsys):
    out = tmp_path / "q.pt"
    assert (
        main(
            [
                "train",
                str(out),
                "--steps",
                "3",
                "--channels",
                "4",
                "--bands",
                "8",
                "--crop",
                "16",
                "--quiet",
            ]
        )
        == 0
    )
    assert "wrote" in capsys.readouterr().out
    assert isinstance(load_model(out), QRNN3D)


def test_memnet_windows_cover_every_band_once_on_average():
    from hyde.nn import MemNet

    model = MemNet(band_window=4, width=4, blocks=2, recursions=2).eval()
    x = torch.rand(1, 1, 4, 12, 10)
    with torch.no_grad():
        # exactly one window: the windowed run is the plain network
        torch.testing.assert_close(model.denoise_bands(x)[:, 0], model(x[:, 0]))
        # more bands: each band is the mean of the windows that hold it (step 2: 0-3, 2-5, 3-6)
        y = torch.rand(1, 1, 7, 12, 10)
        expected = torch.zeros_like(y[:, 0])
        count = torch.zeros(7)
        for s in (0, 2, 3):
            expected[:, s : s + 4] += model(y[:, 0, s : s + 4])
            count[s : s + 4] += 1
        torch.testing.assert_close(model.denoise_bands(y)[:, 0], expected / count[:, None, None])
    with pytest.raises(ValueError, match="bands"):
        model.denoise_bands(torch.rand(1, 1, 3, 8, 8))


def test_memnet_trains_and_roundtrips(tmp_path):
    model, losses = train_qrnn3d(
        steps=30, arch="memnet", channels=4, bands=8, crop=16, batch=2, cubes=1
    )
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    save_model(model, tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    x = torch.rand(1, 1, 8, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded.denoise_bands(x), model.denoise_bands(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="arch"):
        train_qrnn3d(steps=1, arch="unet")


def test_shipped_tiny_memnet_denoises(small_cube):
    cube = small_cube[0]
    noisy = hyde.add_noise(cube, "gaussian", seed=4, sigma=0.05)
    out = hyde.denoise(noisy, method="memnet")
    assert hyde.psnr(cube, out) > hyde.psnr(cube, noisy) + 3
