"""Fixtures for the f3 suite: the world communicator and small float64 networks."""

import pytest

import hpc_comm as hc


@pytest.fixture(scope="session")
def comm():
    return hc.world()
