"""The `f3 train` command: tables, plots, pipeline runs and one-line errors with exit code 2."""

import pytest

from f3.cli import main

pytestmark = pytest.mark.timeout(120)


def table_rows(text):
    return [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]


def test_train_prints_one_row_per_method_and_writes_a_png(tmp_path, capsys):
    png = tmp_path / "curves.png"
    argv = ["train", "--method", "f3,bp,dfa,drtp,llo", "--hidden", "8", "--epochs", "1"]
    assert main([*argv, "--quiet", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert [r.split("|")[1].strip() for r in rows] == [
        "f3 (delayed_error)",
        "bp",
        "dfa",
        "drtp",
        "llo",
    ]
    accuracies = [float(r.split("|")[3]) for r in rows]
    assert all(0.0 <= a <= 1.0 for a in accuracies)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(tmp_path.iterdir()) == [png]  # no temporary file left behind


def test_regression_on_the_generated_teacher(capsys):
    argv = ["train", "--dataset", "teacher", "--method", "f3", "--error", "delayed_loss"]
    assert main([*argv, "--hidden", "8", "--epochs", "1", "--quiet"]) == 0
    (row,) = table_rows(capsys.readouterr().out)
    assert row.split("|")[1].strip() == "f3 (delayed_loss)"
    assert float(row.split("|")[3]) > 0


@pytest.mark.parametrize(
    "argv, match",
    [
        (["train", "--method", "sgd"], "--method"),
        (["train", "--dataset", "teacher", "--error", "delayed_error_one_hot"], "classification"),
        (["train", "--hidden", "0"], "--hidden"),
        (["train", "--epochs", "-1"], "--epochs"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(argv, match, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert match in err
    assert err.count("error:") == 1


@pytest.mark.mpi
def test_train_runs_as_a_pipeline_on_every_rank(comm, capsys):
    hidden = ",".join(["6"] * max(1, comm.size - 1))
    argv = ["train", "--method", "f3,drtp", "--hidden", hidden, "--epochs", "1", "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    if comm.rank == 0:
        assert len(table_rows(out)) == 2
    else:
        assert out == ""
    if comm.size > 1:  # refused alike on every rank, before any message is sent
        assert main(["train", "--method", "bp", "--hidden", hidden, "--epochs", "1"]) == 2
    if comm.size > 2:
        assert main(["train", "--hidden", "6", "--epochs", "1"]) == 2
