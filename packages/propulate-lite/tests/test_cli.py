"""The command line: run a TOML config, summarise its checkpoint, one-line errors with exit 2."""

import pytest

from propulate_lite.cli import main
from propulate_lite.config import parse_config
from propulate_lite.space import Float, SearchSpace

CONFIG = """
loss = "propulate_lite.functions:sphere"
generations = 150
seed = 3
checkpoint = "ckpt"
[limits]
x0 = [-5.12, 5.12]
x1 = [-5.12, 5.12]
[propagator]
pop_size = 8
"""


def test_run_then_summary_writes_a_table_and_a_plot(tmp_path, capsys, comm):
    if comm.size > 1:  # the CLI owns the world; this test runs it on one process
        return
    config = tmp_path / "run.toml"
    config.write_text(CONFIG)
    assert main(["run", str(config), "--quiet"]) == 0
    out = capsys.readouterr().out
    best = float(out.split("loss ")[1].split()[0])
    assert best < 0.05  # 150 evaluations of the 2-D sphere; random search gives ~0.1
    assert main(["summary", str(tmp_path / "ckpt"), "--top", "3"]) == 0
    table = capsys.readouterr().out
    assert "150" in table and "top 3" in table
    assert (tmp_path / "ckpt" / "loss_over_time.png").stat().st_size > 1000
    # a second run on the same folder needs resume = true
    assert main(["run", str(config), "--quiet"]) == 2
    assert "resume" in capsys.readouterr().err
    config.write_text(CONFIG.replace("seed = 3", "seed = 3\nresume = true"))
    assert main(["run", str(config), "--quiet"]) == 0


@pytest.mark.parametrize(
    "text, message",
    [
        ('function = "nope"', "name must be one of"),
        ('loss = "json"', "module:function"),
        ('loss = "json:nothing"\n[limits]\nx = [0.0, 1.0]', "no function"),
        ('function = "sphere"\nbogus = 1', "unknown keys"),
        ('function = "sphere"\ngenerations = -1', "generations"),
        ('function = "sphere"\n[propagator]\nkind = "tabu"', "kind must be one of"),
        ('function = "sphere"\n[propagator]\nkind = "cmaes"\npop_size = 4', "unknown keys"),
        ('loss = "json:dumps"\n[limits]\nn = [1, 4]\n[propagator]\nkind = "pso"', "float"),
    ],
)
def test_bad_configs_exit_2_with_one_line(tmp_path, capsys, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_config_parses_log_floats_ints_and_choices():
    raw = {
        "loss": "propulate_lite.functions:sphere",
        "limits": {"lr": {"low": 1e-4, "high": 1e-1, "log": True}, "n": [1, 4], "a": ["x", "y"]},
    }
    config = parse_config(raw)
    space = SearchSpace(config.limits)
    assert space.params["lr"] == Float(1e-4, 1e-1, True)
    assert space.names == ["lr", "n", "a"]


def test_summary_of_a_missing_folder_exits_2(tmp_path, capsys):
    assert main(["summary", str(tmp_path / "none")]) == 2
    assert "not a propulate-lite checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["cmaes", "nelder-mead", "pso-canonical"])
def test_run_with_another_propagator_kind(tmp_path, capsys, comm, kind):
    if comm.size > 1:
        return
    config = tmp_path / "run.toml"
    extra = "particles = 6" if kind.startswith("pso") else ""
    text = CONFIG.replace("pop_size = 8", f'kind = "{kind}"\n{extra}').replace("150", "300")
    config.write_text(text.replace('checkpoint = "ckpt"', ""))
    assert main(["run", str(config), "--quiet"]) == 0
    best = float(capsys.readouterr().out.split("loss ")[1].split()[0])
    assert best < 1e-3  # 300 evaluations of the 2-D sphere (optimum 0)
