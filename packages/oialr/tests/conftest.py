"""Fixtures of the oialr suite: the world communicator and small float64 models."""

import pytest
import torch

import hpc_comm as hc


@pytest.fixture(scope="session")
def comm():
    return hc.world()


@pytest.fixture
def float64():
    """Run a test with float64 as torch's default dtype."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)
