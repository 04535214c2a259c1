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


def test_a_killed_run_resumes_without_losing_an_evaluated_individual(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(KILLED_RUN)
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


def _solo():
    import hpc_comm as hc

    world = hc.world()
    return world if world.size == 1 else world.split(world.rank)
