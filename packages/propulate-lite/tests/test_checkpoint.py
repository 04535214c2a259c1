"""Checkpoints: resume gives back the same population, also on another number of ranks; a killed
run loses no evaluated individual; a checkpoint of another search space is refused."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import propulate_lite as pl
from propulate_lite import Islands, Propulator, get_default_propagator

pytestmark = pytest.mark.timeout(60)
SPHERE = pl.get_function("sphere")


def propagator(comm, seed=0, limits=SPHERE.limits):
    return get_default_propagator(4, limits, rng=np.random.default_rng([seed, comm.rank]))


def island_snapshots(comm, prop):
    return dict(comm.allgather_obj((prop.layout.island, prop.population.snapshot())))


@pytest.mark.mpi
@pytest.mark.parametrize("exchange", ["migration", "pollination"])
def test_population_after_resume_equals_the_one_before(comm, shared_dir, exchange):
    islands = 2 if comm.size >= 2 else 1
    kwargs = dict(num_islands=islands, exchange=exchange, checkpoint_path=shared_dir)
    first = Islands(SPHERE.loss, propagator(comm), comm=comm, generations=20, rng=1, **kwargs)
    first.propulate()
    before = island_snapshots(comm, first)
    if islands > 1:  # emigrants moved away or victims of pollination: the replay must see them
        assert any(not v[2] for snap in before.values() for v in snap.values())
    again = Islands(
        SPHERE.loss, propagator(comm), comm=comm, generations=0, resume=True, rng=1, **kwargs
    )
    assert island_snapshots(comm, again) == before
    again.propulate()  # zero generations: nothing changes, no rank hangs
    more = Islands(
        SPHERE.loss, propagator(comm, 5), comm=comm, generations=5, resume=True, rng=2, **kwargs
    )
    more.propulate()
    after = island_snapshots(comm, more)
    for island, snap in before.items():  # the old ones are all still there, plus 5 per worker
        assert set(snap) <= set(after[island])

    def born(snaps):
        return sum(1 for snap in snaps.values() for uid, steps in snap if steps == 0)

    assert born(after) == born(before) + 5 * comm.size


@pytest.mark.mpi
def test_resume_on_a_different_number_of_ranks(comm, shared_dir):
    run = Propulator(
        SPHERE.loss, propagator(comm), comm=comm, generations=15, checkpoint_path=shared_dir
    )
    run.propulate()
    before = run.population.snapshot()
    solo = comm.split(0 if comm.rank == 0 else None)
    if solo is not None:
        resumed = Propulator(
            SPHERE.loss,
            propagator(solo),
            comm=solo,
            generations=3,
            checkpoint_path=shared_dir,
            resume=True,
        )
        assert resumed.population.snapshot() == before
        resumed.propulate()
        assert len(resumed.population) == len(before) + 3
        solo.free()


@pytest.mark.mpi
def test_resuming_needs_the_flag_and_the_same_search_space(comm, shared_dir):
    children = len(comm._children)
    run = Propulator(
        SPHERE.loss, propagator(comm), comm=comm, generations=2, checkpoint_path=shared_dir
    )
    run.propulate()
    with pytest.raises(RuntimeError, match="already run"):
        run.propulate()  # a second call would reuse uids and freed communicators
    with pytest.raises(ValueError, match="resume=True"):
        Propulator(SPHERE.loss, propagator(comm), comm=comm, checkpoint_path=shared_dir)
    other = {"x0": (0.0, 1.0), "x1": (0.0, 1.0)}
    with pytest.raises(ValueError, match="space"):
        Propulator(
            SPHERE.loss,
            propagator(comm, limits=other),
            comm=comm,
            checkpoint_path=shared_dir,
            resume=True,
        )
    assert len(comm._children) == children  # refused runs leave no sub-communicator behind


KILLED_RUN = textwrap.dedent(
    """
    import json, os, sys
    import propulate_lite as pl
    f = pl.get_function("sphere")
    log = open(sys.argv[2], "a")
    count = 0
    def loss(params):
        global count
        count += 1
        if count == 23:
            os._exit(9)  # killed in the middle of an evaluation
        value = f.loss(params)
        log.write(json.dumps([dict(params), value]) + "\\n")
        log.flush()
        return value
    prop = pl.Propulator(loss, pl.get_default_propagator(4, f.limits, rng=0),
                         generations=100, checkpoint_path=sys.argv[1], rng=0)
    prop.propulate()
    """
)


def _run_until_killed(tmp_path, source: str) -> list:
    """Run ``source`` in a child process that kills itself during its 23rd evaluation; returns
    the 22 it finished as (params, loss) pairs."""
    script = tmp_path / "run.py"
    script.write_text(source)
    evaluated = tmp_path / "evaluated.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "MPI", "HYDRA"))}
    env["HPC_COMM_BACKEND"] = "self"
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "ckpt"), str(evaluated)],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 9
    logged = [json.loads(line) for line in evaluated.read_text().splitlines()]
    assert len(logged) == 22
    return logged


def _assert_resume_restores(tmp_path, logged) -> None:
    resumed = Propulator(
        SPHERE.loss,
        get_default_propagator(4, SPHERE.limits, rng=0),
        comm=_solo(),
        generations=0,
        checkpoint_path=tmp_path / "ckpt",
        resume=True,
    )
    restored = sorted(((i.loss, dict(i)) for i in resumed.population), key=lambda r: r[0])
    assert restored == sorted(((value, params) for params, value in logged), key=lambda r: r[0])


def test_a_killed_run_resumes_without_losing_an_evaluated_individual(tmp_path):
    logged = _run_until_killed(tmp_path, KILLED_RUN)
    _assert_resume_restores(tmp_path, logged)


def _solo():
    import hpc_comm as hc

    world = hc.world()
    return world if world.size == 1 else world.split(world.rank)


JOURNALED_KILLED_RUN = KILLED_RUN.replace(
    "generations=100, checkpoint_path",
    "generations=100, checkpoint_interval=3600.0, checkpoint_path",
)


def test_a_killed_run_recovers_from_the_journal_what_the_hdf5_file_had_not_taken_yet(tmp_path):
    import h5py

    from propulate_lite import checkpoint as ckpt

    logged = _run_until_killed(tmp_path, JOURNALED_KILLED_RUN)
    (file,) = ckpt.existing_files(tmp_path / "ckpt")
    with h5py.File(file, "r", swmr=True) as f:  # an hour between appends: nothing in HDF5 yet
        assert f["individuals"].shape[0] == 0
    journal = ckpt.journal_path(file, "individuals")
    with journal.open("ab") as f:
        f.write(b"\x01" * 5)  # a row cut short by the kill is dropped
    _assert_resume_restores(tmp_path, logged)


def test_a_record_both_in_the_file_and_in_the_journal_is_read_once(tmp_path):
    from propulate_lite import checkpoint as ckpt
    from propulate_lite.space import SearchSpace

    space = SearchSpace(SPHERE.limits)
    writer = ckpt.CheckpointWriter(tmp_path, 0, 0, space, {"space": space.to_config()}, True)
    inds = []
    for g in range(4):
        ind = pl.Individual({"x0": 0.1 * g, "x1": -0.2 * g})
        ind.loss, ind.uid, ind.generation = SPHERE.loss(ind), (0, 0, g), g
        inds.append(ind)
    for ind in inds[:2]:
        writer.add_individual(ind)
    writer.flush()
    journal = ckpt.journal_path(writer.file_path, "individuals")
    assert journal.stat().st_size == 0  # emptied once the file has the rows
    kept = ckpt._Journal(journal, np.float64)  # a kill between the flush and the emptying
    for ind in inds[:3]:
        kept.write(ckpt._row(space, ind))
    _, read, _ = ckpt.read_records(tmp_path)
    assert sorted(i.uid for i in read) == [(0, 0, 0), (0, 0, 1), (0, 0, 2)]
    writer.close()
    assert not journal.exists()


@pytest.mark.mpi
def test_a_finished_run_leaves_every_record_in_hdf5_and_no_journal(comm, shared_dir):
    from propulate_lite import checkpoint as ckpt

    run = Propulator(
        SPHERE.loss,
        propagator(comm),
        comm=comm,
        generations=12,
        checkpoint_path=shared_dir,
        checkpoint_interval=3600.0,
    )
    run.propulate()
    comm.allgather_obj(None)
    assert not list(shared_dir.glob("*.journal"))
    _, read, _ = ckpt.read_records(shared_dir)
    assert {i.uid for i in read} == {h[0] for h in run.population.snapshot()}
    assert len(read) == 12 * comm.size
