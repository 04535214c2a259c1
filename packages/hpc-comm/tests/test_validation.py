"""Bad input gets a clear error naming the argument, on every rank, before any communication."""

import pytest
import torch

import hpc_comm as hc

pytestmark = pytest.mark.mpi


def test_root_out_of_range_is_named(comm):
    with pytest.raises(ValueError, match=r"root=\d+ is not a rank"):
        comm.bcast(torch.ones(2), root=comm.size)
    with pytest.raises(TypeError, match="root must be an int"):
        comm.reduce(torch.ones(2), root="0")


def test_non_tensor_input_is_a_type_error(comm):
    with pytest.raises(TypeError, match=r"tensor must be a torch\.Tensor"):
        comm.allreduce([1.0, 2.0])


def test_unknown_operator_is_named(comm):
    with pytest.raises(ValueError, match="op must be one of"):
        comm.allreduce(torch.ones(2), op="mean")
    assert comm.allreduce(torch.ones(2), op="sum").tolist() == [comm.size] * 2


@pytest.mark.parametrize(
    "dtype,op",
    [(torch.float32, hc.BAND), (torch.complex64, hc.MAX), (torch.float8_e4m3fn, hc.SUM)],
    ids=str,
)
def test_operator_undefined_for_dtype_is_a_type_error(comm, dtype, op):
    with pytest.raises(TypeError, match=f"{op.name}|reductions are not supported"):
        comm.allreduce(torch.zeros(2, dtype=dtype), op)


def test_counts_must_be_one_per_rank_non_negative_and_add_up(comm):
    x = torch.zeros(4)
    with pytest.raises(ValueError, match="counts must have one entry per rank"):
        comm.alltoallv(x, [4] * (comm.size + 1))
    with pytest.raises(ValueError, match="counts must be non-negative"):
        comm.alltoallv(x, [-1, 5] + [0] * (comm.size - 2) if comm.size > 1 else [-1])
    with pytest.raises(ValueError, match="add up"):
        comm.reduce_scatter(x, counts=[5] + [0] * (comm.size - 1))


def test_dim_out_of_range_is_named(comm):
    with pytest.raises(ValueError, match="dim=2 is out of range"):
        comm.allgather(torch.zeros(2, 2), dim=2)


def test_tag_and_peer_are_checked(comm):
    with pytest.raises(ValueError, match="tag must be >= 0"):
        comm.send(torch.zeros(1), dest=0, tag=-5)
    with pytest.raises(ValueError, match="dest="):
        comm.isend_obj(1, dest=comm.size)


def test_color_must_be_non_negative(comm):
    with pytest.raises(ValueError, match="color"):
        comm.split(-3)


def test_checked_mode_reports_shape_mismatch_on_every_rank(checked):
    comm = checked
    if comm.size == 1:
        comm.allreduce(torch.ones(2))  # nothing to disagree with
        return
    with pytest.raises(ValueError, match="ranks disagree"):
        comm.allreduce(torch.ones(2 + (comm.rank == comm.size - 1)))
    with pytest.raises(ValueError, match="ranks disagree"):
        comm.bcast(torch.ones(2), root=comm.rank % 2)
    comm.barrier()  # every rank raised, none was left inside a collective


def test_allgatherv_always_checks_the_other_dimensions(comm):
    if comm.size == 1:
        assert comm.allgatherv(torch.ones(2, 3)).shape == (2, 3)
        return
    with pytest.raises(ValueError, match="every dimension but dim=0"):
        comm.allgatherv(torch.ones(2, 3 + (comm.rank == 1)))
    with pytest.raises(ValueError, match="dtype"):
        comm.allgatherv(torch.ones(2, dtype=torch.float64 if comm.rank else torch.float32))
    comm.barrier()


def test_chunk_counts_rejects_bad_input_and_matches_heat_layout():
    assert hc.chunk_counts(7, 3) == [3, 2, 2]
    assert hc.chunk_counts(2, 3) == [1, 1, 0]
    with pytest.raises(ValueError):
        hc.chunk_counts(-1, 2)
