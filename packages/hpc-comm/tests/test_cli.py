"""The hpc-comm command line: info, selftest, version and bad input."""

import json

import pytest

import hpc_comm as hc
from hpc_comm import cli

pytestmark = pytest.mark.mpi


def test_info_json_reports_this_job(comm, capsys):
    assert cli.main(["info", "--json"]) == 0
    out = capsys.readouterr().out
    if comm.rank == 0:
        facts = json.loads(out)
        assert facts["ranks"] == comm.size and facts["backend"] == comm.backend
        assert facts["hpc-comm"] == hc.__version__
        assert facts["nodes"] == len(set(comm.allgather_obj(comm.node_id)))
    else:
        comm.allgather_obj(comm.node_id)
        assert out == ""  # only rank 0 prints


def test_selftest_passes_and_prints_summary(comm, capsys):
    assert cli.main(["selftest"]) == 0
    out = capsys.readouterr().out
    if comm.rank == 0:
        assert f"12 passed, 0 failed ({comm.backend} backend, {comm.size} ranks)" in out
        assert "FAIL" not in out


def test_version_and_bad_arguments(comm, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    out = capsys.readouterr().out.strip()
    assert exc.value.code == 0
    assert out == (f"hpc-comm {hc.__version__}" if comm.rank == 0 else "")
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--ops", "scan"])
    err = capsys.readouterr().err
    assert exc.value.code == 2  # every rank exits alike
    if comm.rank == 0:
        assert "--ops" in err and "scan" in err and err.count("error:") == 1
    else:
        assert err == ""  # only rank 0 prints argparse's error


def test_no_command_prints_help(comm, capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    if comm.rank == 0:
        assert "selftest" in out
    else:
        assert out == ""  # only rank 0 prints
