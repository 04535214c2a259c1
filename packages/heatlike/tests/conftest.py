"""Shared fixtures: the world communicator; a deadlock fails the run instead of hanging it."""

from __future__ import annotations

import pytest

import hpc_comm as hc


@pytest.fixture(scope="session")
def comm():
    return hc.world()


def pytest_collection_modifyitems(config, items):
    """With pytest-timeout, time out by a watchdog thread: a rank stuck in an MPI call never
    returns to Python, so the default SIGALRM method cannot interrupt it; the thread method ends
    the process and the launcher then ends the others (``--timeout`` keeps its value)."""
    if not config.pluginmanager.hasplugin("timeout"):
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(method="thread"))
