"""Fixtures for the hpc-comm suite: the world communicator of whichever backend is running."""

import pytest

import hpc_comm as hc


@pytest.fixture(scope="session")
def comm():
    return hc.world()


@pytest.fixture
def checked(comm):
    """The world communicator with cross-rank argument checks switched on for one test."""
    before = comm.check
    comm.check = True
    yield comm
    comm.check = before
