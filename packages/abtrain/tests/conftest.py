"""Fixtures for the abtrain suite: the world communicator; helpers live in abtrain_test_helpers."""

import sys
from pathlib import Path

import pytest

import hpc_comm as hc

# the suite's helper module sits next to this file; pytest's importlib mode does not add the folder
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def comm():
    return hc.world()
