"""Fixtures for the daso suite: the world communicator of whichever backend is running."""

import pytest

import hpc_comm as hc


@pytest.fixture(scope="session")
def comm():
    return hc.world()
