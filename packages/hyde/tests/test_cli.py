"""The `hyde` command: list, generate, denoise (with metrics and PNG), bench, bad input."""

import numpy as np
import pytest
import torch

import hyde
from hyde.cli import main


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in hyde.list_methods():
        assert name in out


def test_generate_denoise_with_reference_and_png(tmp_path, capsys):
    noisy, clean, out, png = (tmp_path / n for n in ("n.npy", "c.npy", "o.npy", "p.png"))
    assert (
        main(
            [
                "generate",
                str(noisy),
                "--size",
                "32",
                "32",
                "12",
                "--endmembers",
                "3",
                "--noise",
                "gaussian",
                "--sigma",
                "0.05",
                "--clean",
                str(clean),
            ]
        )
        == 0
    )
    args = [
        "denoise",
        str(noisy),
        str(out),
        "--method",
        "hyres",
        "--tile",
        "20",
        "--overlap",
        "4",
        "--reference",
        str(clean),
        "--quiet",
    ]
    assert main([*args, "--png", str(png)]) == 0
    text = capsys.readouterr().out
    assert "| hyres |" in text and "| noisy |" in text
    c, n, o = (torch.from_numpy(np.load(p)).double() for p in (clean, noisy, out))
    assert hyde.psnr(c, o) > hyde.psnr(c, n) + 5
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_denoise_mat_input_with_params(tmp_path):
    cube = hyde.make_cube(24, 24, 10, 3, seed=2)
    noisy = hyde.add_noise(cube, "gaussian", seed=3, sigma=0.05)
    hyde.save_cube(tmp_path / "n.mat", noisy)
    assert (
        main(
            [
                "denoise",
                str(tmp_path / "n.mat"),
                str(tmp_path / "o.h5"),
                "--method",
                "hysime",
                "--param",
                "min_rank=5",
                "--quiet",
            ]
        )
        == 0
    )
    out = hyde.load_cube(tmp_path / "o.h5")
    assert hyde.psnr(cube, out) > hyde.psnr(cube, noisy) + 2  # 4 of 10 bands kept: ~ +4 dB


def test_bench_small(capsys):
    assert (
        main(
            [
                "bench",
                "--size",
                "24",
                "24",
                "10",
                "--endmembers",
                "3",
                "--sigma",
                "0.05",
                "--no-mixed",
                "--methods",
                "hysime,hyres",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| hyres |" in out and "| hysime |" in out and "sigma=0.05" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["denoise", "missing.npy", "o.npy"],
        ["denoise", "{here}", "o.npy", "--method", "nope"],
        ["denoise", "{here}", "o.npy", "--param", "oops"],
        ["bench", "--methods", "nope"],
    ],
)
def test_bad_input_exits_2(tmp_path, capsys, argv):
    np.save(tmp_path / "c.npy", np.zeros((4, 4, 3), dtype=np.float32))
    argv = [a.replace("{here}", str(tmp_path / "c.npy")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("hyde: error:") and len(err.strip().splitlines()) == 1
