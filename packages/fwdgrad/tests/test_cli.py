"""The `fwdgrad` command line: approx and train write what they print, bad input exits with 2."""

import json
import math

import pytest

from fwdgrad.approx import approximation_table, expected_cosine, sqrt_beta_mean
from fwdgrad.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_approx_table_matches_the_closed_forms(tmp_path, capsys):
    out, png = tmp_path / "approx.json", tmp_path / "approx.png"
    argv = ["approx", "--n", "48", "--k", "1,6,48", "--draws", "400", "--seed", "1"]
    assert main([*argv, "--json", str(out), "--plot", str(png)]) == 0
    assert "projection" in capsys.readouterr().out
    rows = json.loads(out.read_text())
    assert {(r["k"], r["aggregation"]) for r in rows} == {
        (k, a) for k in (1, 6, 48) for a in ("mean", "projection")
    }
    for r in rows:
        # closed forms computed here, independently of the package
        a, b = r["k"] / 2, ((48 - r["k"]) if r["aggregation"] == "projection" else 47) / 2
        expected = 1.0 if b == 0 else math.exp(_log_beta(a + 0.5, b) - _log_beta(a, b))
        assert r["cos_expected"] == pytest.approx(expected, rel=1e-12)
        assert abs(r["cos_mean"] - expected) <= 4 * r["cos_sd"] / math.sqrt(400) + 1e-12
        if r["aggregation"] == "projection":  # ||P g|| = cos ||g||
            assert r["norm_ratio_mean"] == pytest.approx(r["cos_mean"], rel=1e-9)
    assert png.read_bytes()[:8] == PNG_MAGIC


def _log_beta(p, q):
    return math.lgamma(p) + math.lgamma(q) - math.lgamma(p + q)


def test_orthonormal_mean_points_where_the_projection_points():
    rows = approximation_table([20], [5], ["mean", "projection"], "orthonormal", draws=30)
    mean, proj = rows
    assert mean.cos_mean == pytest.approx(proj.cos_mean, rel=1e-10)
    assert mean.norm_ratio_mean == pytest.approx(proj.norm_ratio_mean / 5, rel=1e-10)
    assert expected_cosine("mean", "rademacher", 20, 5) is None
    assert sqrt_beta_mean(0.5, 0.5) == pytest.approx(2 / math.pi, rel=1e-12)


def test_train_prints_writes_json_and_a_loss_plot(tmp_path, capsys):
    out, png = tmp_path / "train.json", tmp_path / "loss.png"
    argv = ["train", "--methods", "bp,fg,frog", "--k", "2,4", "--steps", "4", "--hidden", "8"]
    assert main([*argv, "--json", str(out), "--plot", str(png), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "final loss" in printed and "frog" in printed
    runs = json.loads(out.read_text())
    assert [(r["method"], r["k"]) for r in runs] == [("bp", 1), ("fg", 1), ("frog", 2), ("frog", 4)]
    assert all(len(r["losses"]) == 4 and math.isfinite(r["final_loss"]) for r in runs)
    assert png.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(
    "argv",
    [
        ["approx", "--k", "0"],
        ["approx", "--aggregations", "median"],
        ["approx", "--draws", "-3"],
        ["train", "--methods", "adam"],
        ["train", "--steps", "zero"],
        ["train", "--lr", "-1"],
        ["train", "--model", "rnn"],
    ],
)
def test_bad_input_exits_with_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_help_names_the_commands(capsys):
    assert main([]) == 0
    text = capsys.readouterr().out
    assert "approx" in text and "train" in text
