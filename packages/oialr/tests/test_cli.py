"""The `oialr` command line: train and stability subcommands, outputs and bad input."""

import json

from oialr.cli import main


def test_train_writes_results_and_rank_plot(tmp_path, capsys):
    png, out = tmp_path / "ranks.png", tmp_path / "r.json"
    code = main(
        [
            "train",
            "--steps",
            "40",
            "--delay",
            "10",
            "--frequency",
            "10",
            "--layer-share",
            "1",
            "--quiet",
            "--plot",
            str(png),
            "--json",
            str(out),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "OIALR" in text and "full rank" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads(out.read_text())
    assert set(summary) == {"OIALR", "full rank"}
    assert summary["full rank"]["trainable_fraction"] == 1.0
    assert 0 < summary["OIALR"]["trainable_fraction"] < 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "ranks.png"]


def test_stability_renders_png(tmp_path, capsys):
    png = tmp_path / "s.png"
    assert main(["stability", "--steps", "30", "--every", "10", "--quiet", "--plot", str(png)]) == 0
    assert "mean column cosine" in capsys.readouterr().out
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_bad_input_exits_with_code_2(tmp_path, capsys):
    assert main(["train", "--plot", str(tmp_path / "missing" / "x.png")]) == 2
    assert "--plot" in capsys.readouterr().err
    try:
        main(["train", "--steps", "0"])
    except SystemExit as exc:
        assert exc.code == 2
    else:
        raise AssertionError("--steps 0 was accepted")
    assert main(["train", "--cutoff", "2", "--steps", "5", "--quiet", "--no-baseline"]) == 2
    assert "sigma_cutoff_fraction" in capsys.readouterr().err
