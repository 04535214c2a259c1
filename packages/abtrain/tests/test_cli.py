"""The `abtrain train` command: summary table, PNG, exit code 2 on bad input."""

import pytest

from abtrain.cli import main


def test_train_all_methods_prints_a_table_and_writes_a_png(tmp_path, capsys):
    png = tmp_path / "acc.png"
    args = ["train", "--method", "all", "--steps", "30", "--warmup-steps", "10"]
    args += ["--sync-every", "10", "--full-rank-steps", "2", "--quiet", "--plot", str(png)]
    assert main(args) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip().split(" ")[0] for row in rows[1:]] == ["dp", "ab", "powersgd"]
    for row in rows[1:]:
        accuracy = float(row.split("|")[2])
        assert 0.3 < accuracy <= 1.0  # 30 steps on digits is far above chance (0.1)
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--steps", "0"], "steps"),
        (["train", "--sync-every", "5", "--full-rank-steps", "5"], "full_rank_steps"),
        (["train", "--method", "powersgd", "--powersgd-rank", "zero"], "powersgd-rank"),
        (["train", "--cutoff", "2"], "cutoff"),
        (["train", "--method", "all", "--cutoff", "-0.5"], "cutoff"),
        (["train", "--method", "all", "--group-size", "0"], "group_size"),
        (["train", "--method", "all", "--lr-rebound-steps", "-1"], "lr-rebound-steps"),
    ],
)
def test_bad_input_exits_with_code_2_and_one_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
