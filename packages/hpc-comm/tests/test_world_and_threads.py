"""Backend choice, per-rank thread shares and the rank-aware logger."""

import logging

import pytest

import hpc_comm as hc
from hpc_comm import _threads


def test_backend_choice_follows_environment():
    assert hc.choose_backend({}) == "self"
    assert hc.choose_backend({"PMI_RANK": "0", "PMI_SIZE": "2"}) == "mpi"
    assert hc.choose_backend({"OMPI_COMM_WORLD_RANK": "1"}) == "mpi"
    torchrun = {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "x", "MASTER_PORT": "1"}
    assert hc.choose_backend(torchrun) == "torch"
    assert hc.choose_backend({"HPC_COMM_BACKEND": "SELF", "PMI_RANK": "0"}) == "self"
    with pytest.raises(ValueError, match="HPC_COMM_BACKEND must be one of"):
        hc.choose_backend({"HPC_COMM_BACKEND": "nccl"})


def test_threads_share_the_cores_among_local_ranks(monkeypatch):
    monkeypatch.setattr(_threads, "available_cores", lambda: 8)
    assert _threads.decide(3, {}).threads == 2
    assert _threads.decide(16, {}).threads == 1  # at least one
    assert _threads.decide(1, {}).threads is None  # a lone rank keeps the library defaults


def test_threads_respect_the_users_choice(monkeypatch):
    monkeypatch.setattr(_threads, "available_cores", lambda: 8)
    assert _threads.decide(2, {"OMP_NUM_THREADS": "3"}).threads is None
    assert "OMP_NUM_THREADS=3" in _threads.decide(2, {"OMP_NUM_THREADS": "3"}).source
    assert _threads.decide(2, {"HPC_COMM_THREADS": "5"}).threads == 5
    with pytest.raises(ValueError, match="HPC_COMM_THREADS must be a positive integer"):
        _threads.decide(2, {"HPC_COMM_THREADS": "many"})


@pytest.mark.mpi
def test_world_applies_the_thread_share(comm):
    import torch

    choice = hc.threads()
    assert choice is not None
    if choice.threads is not None:
        assert torch.get_num_threads() == choice.threads


@pytest.mark.mpi
def test_logger_prefixes_rank(comm, capsys):
    log = hc.get_logger("hpc_comm.test", level=logging.INFO)
    log.info("hello")
    err = capsys.readouterr().err
    assert f"[rank {comm.rank}/{comm.size}]" in err and "hello" in err


def _thp_setting(code: str, **env) -> str:
    import os
    import subprocess
    import sys

    environ = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    environ.update(env)
    script = code + "; import os; print(os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset'))"
    done = subprocess.run(
        [sys.executable, "-c", script], env=environ, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_importing_first_puts_large_torch_tensors_on_huge_pages():
    assert _thp_setting("import hpc_comm") == "1"
    assert _thp_setting("import hpc_comm", THP_MEM_ALLOC_ENABLE="0") == "0"  # the user decides
    # torch reads the variable at its first allocation: once imported, it is too late to set it
    assert _thp_setting("import torch, hpc_comm") == "unset"
