"""The worker loop at any number of ranks: delivery, islands, faults, reproducibility, idling."""

import math
import time

import numpy as np
import pytest

import propulate_lite as pl
from propulate_lite import Islands, Propulator, get_default_propagator

pytestmark = pytest.mark.timeout(60)
SPHERE = pl.get_function("sphere")


def make_propagator(comm, seed=0, limits=SPHERE.limits, pop_size=4):
    return get_default_propagator(pop_size, limits, rng=np.random.default_rng([seed, comm.rank]))


def gather_snapshots(comm, propulator):
    """(island, population snapshot) of every worker, on every rank."""
    return comm.allgather_obj((propulator.layout.island, propulator.population.snapshot()))


@pytest.mark.mpi
def test_every_individual_reaches_every_worker_of_its_island_exactly_once(comm):
    generations = 25
    prop = Propulator(SPHERE.loss, make_propagator(comm), comm=comm, generations=generations)
    prop.propulate()
    own = [h for h, v in prop.population.snapshot().items() if h[0][1] == comm.rank]
    assert len(own) == generations
    everyone = comm.allgather_obj(own)
    expected = {h for handles in everyone for h in handles}
    assert len(expected) == generations * comm.size
    for _island, snapshot in gather_snapshots(comm, prop):
        assert set(snapshot) == expected
    assert prop.population.duplicates == 0
    assert len({repr(sorted(s.items())) for _, s in gather_snapshots(comm, prop)}) == 1


@pytest.mark.mpi
def test_run_improves_on_random_search_reference(comm):
    prop = Propulator(SPHERE.loss, make_propagator(comm), comm=comm, generations=150)
    prop.propulate()
    best = prop.summarize(1)[0][0]
    assert best.loss == pytest.approx(SPHERE.loss(best), rel=0, abs=0)
    assert best.loss < 1e-2  # uniform sampling of 150 points reaches ~1e-1 on the 2-D sphere


@pytest.mark.mpi
@pytest.mark.parametrize("exchange", ["migration", "pollination"])
def test_islands_move_or_copy_emigrants(comm, exchange):
    if comm.size < 2:
        with pytest.raises(ValueError, match="num_islands"):
            Islands(SPHERE.loss, make_propagator(comm), comm=comm, num_islands=2)
        return
    prop = Islands(
        SPHERE.loss,
        make_propagator(comm),
        comm=comm,
        generations=30,
        num_islands=2,
        migration_probability=1.0,
        exchange=exchange,
        rng=comm.rank,
    )
    prop.propulate()
    assert prop.population.duplicates == 0  # every copy reached each island worker once
    snapshots = gather_snapshots(comm, prop)
    by_island = {}
    for island, snap in snapshots:  # every worker of an island ends with the same population
        assert by_island.setdefault(island, snap) == snap
    active_copies, immigrants = {}, 0
    for island, snap in by_island.items():
        for (uid, steps), (_values, _loss, active, _failed, home) in snap.items():
            assert home == island
            immigrants += steps > 0
            if active:
                active_copies.setdefault(uid, []).append(island)
    assert immigrants > 0
    emigrants = sum(s["emigrants"] for s in comm.allgather_obj(prop.stats))
    assert emigrants == immigrants  # each emigrant arrived on its target island once
    born = {uid for snap in by_island.values() for (uid, steps) in snap if steps == 0}
    if exchange == "migration":  # a moved individual is active in exactly one place
        assert all(len(places) == 1 for places in active_copies.values())
        moved = {uid for snap in by_island.values() for (uid, steps) in snap if steps > 0}
        for uid in moved:
            home = next(s[(uid, 0)] for s in by_island.values() if (uid, 0) in s)
            assert home[2] is False  # the emigrant was removed at home
    else:  # a pollinated individual stays active at home while its copy lives abroad
        assert any(len(set(places)) == 2 for places in active_copies.values())
        stats = comm.allgather_obj((prop.layout.island, prop.stats))
        for island, snap in by_island.items():  # one of its own retired per immigrant taken in
            due = sum(s["replacements_due"] for i, s in stats if i == island)
            retired = sum(s["retired"] for i, s in stats if i == island)
            assert retired == sum(1 for v in snap.values() if not v[2])
            assert retired == due  # populations are large enough to always find a victim
    assert born  # sanity: individuals were bred


@pytest.mark.mpi
def test_a_raising_or_nan_loss_marks_the_individual_failed_and_the_run_goes_on(comm, caplog):
    def flaky(params):
        if params["x0"] > 2.0:
            raise RuntimeError("diverged")
        if params["x0"] < -2.0:
            return math.nan
        return SPHERE.loss(params)

    prop = Propulator(flaky, make_propagator(comm), comm=comm, generations=40)
    with caplog.at_level("WARNING", logger="propulate_lite.propulator"):
        prop.propulate()
    inds = list(prop.population)
    failed = [i for i in inds if i.failed]
    assert len(inds) == 40 * comm.size
    assert failed and all(abs(i["x0"]) > 2.0 and not i.active for i in failed)
    assert all(not i.failed for i in inds if abs(i["x0"]) <= 2.0)
    assert all(i not in failed for i in prop.population.active())
    mine = [i for i in failed if i.uid[1] == comm.rank]
    if any(i["x0"] > 2.0 for i in mine):
        assert "diverged" in caplog.text  # logged with its traceback


@pytest.mark.mpi
def test_ranks_per_worker_hands_the_loss_a_communicator_of_that_size(comm):
    if comm.size % 2:
        with pytest.raises(ValueError, match="ranks_per_worker"):
            Propulator(SPHERE.loss, make_propagator(comm), comm=comm, ranks_per_worker=2)
        return
    sizes = []

    def parallel_sphere(params, worker_comm):
        sizes.append(worker_comm.size)
        # each rank sums half of the terms; the leader's reduced value is the loss
        terms = [v**2 for i, v in enumerate(params.values()) if i % 2 == worker_comm.rank]
        return sum(worker_comm.allgather_obj(sum(terms)))

    prop = Propulator(
        parallel_sphere, make_propagator(comm), comm=comm, generations=10, ranks_per_worker=2
    )
    prop.propulate()
    assert sizes == [2] * 10
    if comm.rank % 2 == 0:
        assert all(i.loss == pytest.approx(SPHERE.loss(i)) for i in prop.population)
        assert len(prop.population) == 10 * comm.size // 2


@pytest.mark.mpi
def test_a_fixed_seed_on_one_rank_is_reproducible(comm):
    solo = comm.split(0 if comm.rank == 0 else None)
    if solo is None:
        return

    def run(seed):
        propagator = get_default_propagator(4, SPHERE.limits, rng=seed)
        prop = Propulator(SPHERE.loss, propagator, comm=solo, generations=60, rng=seed)
        prop.propulate()
        return [(i.uid, dict(i), i.loss) for i in prop.population]

    first = run(3)
    assert first == run(3)
    assert first != run(4)
    solo.free()


@pytest.mark.mpi
def test_an_idle_worker_sleeps_instead_of_spinning(comm):
    def uneven(params):
        if comm.rank == 1:
            time.sleep(0.02)
        return SPHERE.loss(params)

    prop = Propulator(uneven, make_propagator(comm), comm=comm, generations=20)
    wall, cpu = time.perf_counter(), time.process_time()
    prop.propulate()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert len(prop.population) == 20 * comm.size
    if comm.rank == 0 and comm.size > 1:  # rank 0 finishes fast, then waits ~0.4 s for rank 1
        assert cpu < 0.5 * wall
        # on a loaded machine even a spinning wait gets little CPU, so count the polls too:
        # the backoff (0.1 ms doubling to 20 ms, reset by each message) polls about 8 times
        # per message waited for plus once per 20 ms; a spinning loop polls thousands of times
        messages = 20 * (comm.size - 1)
        assert 0 < prop.stats["idle_polls"] < 12 * (messages + 1) + 2 * wall / 0.02, prop.stats


@pytest.mark.mpi
def test_the_helper_ranks_of_a_worker_sleep_while_they_wait(comm):
    if comm.size % 2:
        return  # ranks_per_worker=2 needs an even number of ranks (see the test above)

    class SlowBreeding(pl.propagators.Propagator):
        """Breeding takes 20 ms on the leader; the helper rank has nothing to do meanwhile."""

        def __init__(self, inner):
            super().__init__(-1, 1)
            self.inner = inner

        def __call__(self, inds):
            time.sleep(0.02)
            return self.inner(inds)

    def parallel_sphere(params, worker_comm):
        return sum(worker_comm.allgather_obj(SPHERE.loss(params) / worker_comm.size))

    prop = Propulator(
        parallel_sphere,
        SlowBreeding(make_propagator(comm)),
        comm=comm,
        generations=20,
        ranks_per_worker=2,
        limits=SPHERE.limits,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    prop.propulate()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if comm.rank % 2 == 1:  # a helper: ~0.4 s of waiting for the leader to breed
        assert cpu < 0.5 * wall, (cpu, wall)
        # 21 waits (20 individuals and the end); each polls ~8 times in 20 ms with the backoff
        assert 0 < prop.stats["idle_polls"] < 21 * 12 + 2 * wall / 0.02, prop.stats
    else:
        assert all(i.loss == pytest.approx(SPHERE.loss(i)) for i in prop.population)
