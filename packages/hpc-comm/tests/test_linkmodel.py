"""The simulated inter-node link: delays from the formula, asynchrony kept, intra-node untouched."""

import math
import time

import pytest
import torch

from hpc_comm.linkmodel import LinkModel, LinkModelCommunicator, with_link_model


def test_delay_is_latency_plus_bytes_over_bandwidth():
    link = LinkModel(latency=0.002, bandwidth=1e6)
    assert link.delay(0) == 0.002
    assert link.delay(500_000) == pytest.approx(0.502)
    assert LinkModel().delay(10**9) == 0.0


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"latency": -1.0}, ValueError, "latency"),
        ({"latency": math.inf}, ValueError, "latency"),
        ({"bandwidth": 0.0}, ValueError, "bandwidth"),
        ({"latency": "1"}, TypeError, "latency"),
    ],
)
def test_bad_link_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        LinkModel(**kwargs)


def test_wrapping_needs_a_communicator_and_a_model(comm):
    with pytest.raises(TypeError, match="inner"):
        LinkModelCommunicator("world", LinkModel())
    with pytest.raises(TypeError, match="model"):
        LinkModelCommunicator(comm, 0.1)


class FakeClock:
    """Stands in for the ``time`` module inside hpc_comm.linkmodel: sleeping advances it exactly,
    so the timing rules are checked without depending on how loaded the machine is."""

    def __init__(self):
        self.now = 1000.0
        self.slept = 0.0

    def perf_counter(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.now += seconds
        self.slept += seconds


@pytest.fixture
def clock(monkeypatch):
    import hpc_comm.linkmodel as linkmodel

    fake = FakeClock()
    monkeypatch.setattr(linkmodel, "time", fake)
    return fake


def forced_inter_node():
    """A one-rank communicator treated as if its traffic left the node (to time the delay)."""
    from hpc_comm._self import SelfCommunicator

    slow = LinkModelCommunicator(SelfCommunicator(), LinkModel(latency=0.05, bandwidth=40_000.0))
    slow.crosses_nodes = True
    return slow


def test_blocking_operation_takes_the_modelled_time(clock):
    slow = forced_inter_node()
    x = torch.ones(1000)  # 4000 bytes: 0.05 + 4000 / 40000 = 0.15 s
    slow.allreduce(x)
    assert clock.slept == pytest.approx(0.15)
    assert torch.equal(x, torch.ones(1000))
    assert slow.stats.inter_bytes == 4000 and slow.stats.inter_calls == 1
    assert slow.stats.inter_seconds == pytest.approx(0.15)


def test_blocking_operation_really_sleeps():
    slow = forced_inter_node()
    start = time.perf_counter()
    slow.allreduce(torch.ones(1000))
    assert time.perf_counter() - start >= 0.15  # a lower bound holds however loaded the machine


def test_nonblocking_operation_overlaps_the_delay_with_work(clock):
    slow = forced_inter_node()
    x = torch.ones(1000)
    req = slow.iallreduce(x)
    assert clock.slept == 0.0  # starting does not wait for the link
    assert req.test() is False  # not complete before the modelled time
    clock.sleep(0.2)  # "compute" for longer than the delay
    assert req.test() is True
    req.wait()
    assert clock.slept == pytest.approx(0.2)  # nothing left to wait for
    assert slow.stats.inter_seconds == 0.0


def test_wait_sleeps_only_for_what_is_left(clock):
    slow = forced_inter_node()
    req = slow.iallreduce(torch.ones(1000))
    clock.sleep(0.1)
    req.wait()
    assert clock.slept == pytest.approx(0.15)  # 0.05 of the 0.15 s remained
    assert slow.stats.inter_seconds == pytest.approx(0.05)


def test_intra_node_traffic_is_not_delayed_and_is_counted(clock):
    from hpc_comm._self import SelfCommunicator

    fast = LinkModelCommunicator(SelfCommunicator(), LinkModel(latency=5.0, bandwidth=1.0))
    assert not fast.crosses_nodes
    fast.allreduce(torch.ones(100))
    fast.bcast(torch.ones(100))
    req = fast.iallreduce(torch.ones(100))
    req.wait()
    assert clock.slept == 0.0
    assert fast.stats.intra_bytes == 1200 and fast.stats.inter_bytes == 0


@pytest.mark.mpi
def test_world_wrapper_delays_only_operations_that_cross_nodes(comm):
    slow = with_link_model(comm, latency=0.02, bandwidth=1e9)
    nodes = comm.allgather_obj(comm.node_id)
    assert slow.crosses_nodes == (len(set(nodes)) > 1)
    x = torch.arange(10.0) + comm.rank
    slow.allreduce(x)
    expected = torch.arange(10.0) * comm.size + sum(range(comm.size))
    torch.testing.assert_close(x, expected)
    node = slow.node()
    assert isinstance(node, LinkModelCommunicator) and not node.crosses_nodes
    before = slow.stats.inter_bytes
    y = torch.ones(5)
    node.allreduce(y)
    assert slow.stats.inter_bytes == before  # node traffic never counts as inter-node
    torch.testing.assert_close(y, torch.full((5,), float(node.size)))
    # one rank per node: crosses exactly when there are several nodes
    leaders = slow.leaders()
    if leaders is not None:
        assert leaders.crosses_nodes == (len(set(nodes)) > 1)
        start = time.perf_counter()
        z = torch.ones(3)
        req = leaders.iallreduce(z)
        req.wait()
        if leaders.crosses_nodes:
            assert time.perf_counter() - start >= 0.02
        torch.testing.assert_close(z, torch.full((3,), float(leaders.size)))
    slow.free()
    assert not comm.freed  # the wrapped communicator stays usable
    comm.barrier()
