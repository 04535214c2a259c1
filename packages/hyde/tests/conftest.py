"""Fixtures of the hyde suite: the world communicator and small generated cubes."""

import pytest

import hpc_comm as hc


@pytest.fixture(scope="session")
def comm():
    return hc.world()


@pytest.fixture(scope="session")
def small_cube():
    """A clean 32 x 32 x 16 cube of rank 4 (float64) with its abundances and spectra."""
    from hyde.data import make_cube

    return make_cube(
        32, 32, 16, endmembers=4, seed=3, dtype=__import__("torch").float64, return_parts=True
    )
