"""Fixtures for the fwdgrad suite: the world communicator and a small float64 network."""

import sys
from pathlib import Path

import pytest
import torch

import hpc_comm as hc

sys.path.insert(0, str(Path(__file__).parent))
from fwdgrad_helpers import SmallNet


@pytest.fixture(scope="session")
def comm():
    return hc.world()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny problems: one torch thread. On a loaded machine OpenMP threads that wait for each
    other made a batched QR hundreds of times slower than on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def net():
    return SmallNet()
