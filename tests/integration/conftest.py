"""Shared fixtures of the cross-package pipelines: the world communicator, one results table."""

from __future__ import annotations

import pytest

import hpc_comm as hc


@pytest.fixture(scope="session")
def comm():
    return hc.world()


def pytest_collection_modifyitems(config, items):
    """A rank stuck in an MPI call never returns to Python: time out by a watchdog thread."""
    if not config.pluginmanager.hasplugin("timeout"):
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(method="thread"))
