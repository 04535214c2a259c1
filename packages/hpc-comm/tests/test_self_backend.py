"""The self backend on its own: messages to oneself, splits, what would wait forever."""

import pytest
import torch

from hpc_comm._self import SelfCommunicator


def test_messages_to_oneself_are_delivered_in_order():
    comm = SelfCommunicator()
    comm.send(torch.arange(3), dest=0, tag=1)
    comm.isend(torch.arange(3) * 2, dest=0, tag=2).wait()
    got = torch.empty(3, dtype=torch.int64)
    assert comm.probe(tag=2).nbytes == 24
    assert comm.recv(got, tag=2).tag == 2 and got.tolist() == [0, 2, 4]
    comm.recv(got)
    assert got.tolist() == [0, 1, 2]


def test_objects_to_oneself_are_copies():
    comm = SelfCommunicator()
    payload = {"a": [1]}
    comm.isend_obj(payload, 0, tag=4)
    payload["a"].append(2)
    assert comm.iprobe(tag=5) is None and comm.iprobe(tag=4).tag == 4
    assert comm.recv_obj(tag=4) == {"a": [1]}


def test_receive_with_nothing_pending_raises_instead_of_hanging():
    comm = SelfCommunicator()
    with pytest.raises(RuntimeError, match="wait forever"):
        comm.recv(torch.empty(1))
    with pytest.raises(RuntimeError, match="wait forever"):
        comm.recv_obj()


def test_too_small_receive_buffer_is_an_error():
    comm = SelfCommunicator()
    comm.send(torch.zeros(4), 0)
    with pytest.raises(ValueError, match="does not fit"):
        comm.recv(torch.empty(2))
