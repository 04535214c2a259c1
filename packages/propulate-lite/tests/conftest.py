"""Shared fixtures: the world communicator and a folder every rank sees."""

import shutil
import tempfile
from pathlib import Path

import pytest

import hpc_comm as hc


@pytest.fixture(scope="session")
def comm():
    return hc.world()


@pytest.fixture
def shared_dir(comm):
    """A temporary folder created by rank 0 and known to every rank."""
    path = tempfile.mkdtemp(prefix="propulate-lite-test-") if comm.rank == 0 else None
    path = Path(comm.bcast_obj(path))
    yield path
    comm.allgather_obj(None)  # everyone is done with it
    if comm.rank == 0:
        shutil.rmtree(path, ignore_errors=True)
