"""The asynchronous worker loop: breed, evaluate, share with the island, exchange with others.

There is no generation barrier. Each worker breeds from whatever population it knows, sends the
evaluated individual to the other workers of its island with non-blocking sends (buffers kept
until complete; never a send to itself) and takes in whatever has arrived. At the end every
worker tells every other how many messages it sent, and drains until it has received them all.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import hpc_comm as hc

from . import checkpoint as ckpt
from .layout import Layout, check_topology, plan_layout
from .population import Individual, Population
from .propagators.base import Propagator, as_rng, largest, smallest
from .space import SearchSpace
from .surrogate import Surrogate

log = hc.get_logger(__name__)

TAG_INDIVIDUAL, TAG_IMMIGRANTS, TAG_RETIRE, TAG_DONE, TAG_WORK = 11, 12, 13, 14, 15
EXCHANGES = ("migration", "pollination")
SELECTIONS = ("best", "worst", "random")
_MAX_IDLE_SLEEP = 0.02


class Propulator:
    """Asynchronous evolutionary optimisation of ``loss_fn`` over the ranks of ``comm``.

    ``loss_fn(params)`` gets an Individual (a mapping name -> value) and returns a float, or is a
    generator yielding intermediate losses (see ``surrogate``). With ``ranks_per_worker > 1``
    it is called as ``loss_fn(params, worker_comm)`` on every rank of the worker.
    ``generations`` is the number of evaluations per worker in one ``propulate()`` call.
    ``checkpoint_interval`` is the least time in seconds between appends to the HDF5 checkpoint;
    in between, every evaluated individual and exchange is written at once to a small binary
    journal beside it (one ``write`` call), so a killed run still loses no evaluated individual
    and a resume reads both. 0 appends to and flushes the HDF5 file after every record.
    Island arguments (``num_islands`` ...) are described in `Islands`.
    """

    def __init__(
        self,
        loss_fn: Callable,
        propagator: Propagator,
        comm: hc.Communicator | None = None,
        generations: int = 100,
        checkpoint_path: str | Path | None = None,
        rng: int | np.random.Generator | None = None,
        *,
        resume: bool = False,
        limits=None,
        surrogate: Surrogate | None = None,
        checkpoint_interval: float = 1.0,
        logging_interval: int = 0,
        progress: bool = False,
        num_islands: int = 1,
        island_sizes: Sequence[int] | None = None,
        migration_topology=None,
        migration_probability: float = 0.0,
        exchange: str = "migration",
        emigrant_selection: str | Callable = "best",
        immigrant_selection: str | Callable = "worst",
        ranks_per_worker: int = 1,
    ):
        comm = hc.world() if comm is None else comm
        _check_arguments(
            loss_fn, propagator, generations, checkpoint_interval, migration_probability, exchange
        )
        self.layout: Layout = plan_layout(
            comm.rank, comm.size, ranks_per_worker, num_islands, island_sizes
        )
        self.topology = check_topology(migration_topology, self.layout.num_islands)
        self.emigrant_selection = _selection(emigrant_selection, "emigrant_selection")
        self.immigrant_selection = _selection(immigrant_selection, "immigrant_selection")
        self.space = _find_space(propagator, limits)
        if checkpoint_path is not None and self.space is None:
            raise ValueError("limits is needed to checkpoint (the propagator does not carry it)")
        self.loss_fn, self.propagator, self.comm = loss_fn, propagator, comm
        self.generations, self.surrogate = int(generations), surrogate
        self.rng = as_rng(rng)
        self.exchange, self.migration_probability = exchange, float(migration_probability)
        self.checkpoint_interval, self.logging_interval = checkpoint_interval, logging_interval
        self.progress = progress
        self.checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
        self.segment = 0
        self.population = Population(owner=self.layout.local_index)
        self.writer: ckpt.CheckpointWriter | None = None
        # idle_polls: polls that found nothing while waiting (at the end, or a helper rank
        # waiting for work); the backoff keeps it near 8 per wait plus 1 per 20 ms waited
        self.stats = {
            "emigrants": 0,
            "immigrants": 0,
            "replacements_due": 0,
            "retired": 0,
            "idle_polls": 0,
        }
        # the sub-communicators live for one propulate() call: a Propulator that is built and
        # never run (or whose checkpoint is refused) holds none
        self.pcomm = self.worker_comm = self._control = None
        self._ran = False
        if self.checkpoint_path is not None:
            self._open_checkpoint(resume)

    # ------------------------------------------------------------------ setup
    def _split_communicators(self) -> None:
        lay = self.layout
        self.worker_comm = self._control = None
        if lay.ranks_per_worker > 1:
            # one communicator for the loss function, one of our own for handing out work, so
            # the user's messages and ours can never match each other
            self.worker_comm = self.comm.split(lay.worker, self.comm.rank)
            self._control = self.comm.split(lay.worker, self.comm.rank)
        self.pcomm = self.comm.split(0 if lay.leader else None, self.comm.rank)

    def _config(self) -> dict:
        return {
            "format": ckpt.FORMAT_VERSION,
            "space": self.space.to_config(),
            "num_islands": self.layout.num_islands,
            "island_sizes": self.layout.island_sizes,
            "ranks_per_worker": self.layout.ranks_per_worker,
            "exchange": self.exchange,
            "migration_probability": self.migration_probability,
        }

    def _open_checkpoint(self, resume: bool) -> None:
        error, segment, records = None, 0, None
        if self.comm.rank == 0:
            try:
                error, segment, records = self._inspect_checkpoint(resume)
            except (OSError, ValueError) as exc:
                error = f"checkpoint_path {str(self.checkpoint_path)!r}: {exc}"
        error, segment, records = self.comm.bcast_obj((error, segment, records))
        if error:
            raise ValueError(error)
        self.segment = segment
        if records is not None and self.layout.leader:
            individuals, events = records
            lay = self.layout
            restored = ckpt.replay(individuals, events, lay.island, lay.island_sizes[lay.island])
            for ind in sorted(restored, key=lambda i: i.handle):
                self.population.add(ind)
            log.info("resumed %d individuals on island %d", len(restored), lay.island)
        if self.layout.leader:
            self.writer = ckpt.CheckpointWriter(
                self.checkpoint_path,
                segment,
                self.layout.worker,
                self.space,
                self._config(),
                journal=self.checkpoint_interval > 0,
            )

    def _inspect_checkpoint(self, resume: bool):
        path = self.checkpoint_path
        if not ckpt.existing_files(path):
            return None, 0, None
        if not resume:
            return (
                f"checkpoint_path {str(path)!r} already holds a checkpoint: pass resume=True to "
                "continue it or choose an empty folder",
                0,
                None,
            )
        stored = ckpt.read_config(path)
        if stored is None:
            return f"checkpoint_path {str(path)!r} holds no readable checkpoint", 0, None
        mismatch = ckpt.config_mismatch(stored, self._config())
        if mismatch:
            return f"cannot resume from {str(path)!r}: {mismatch}", 0, None
        _space, individuals, events = ckpt.read_records(path)
        return None, ckpt.next_segment(path), (individuals, events)

    # -------------------------------------------------------------- the loop
    def propulate(self) -> None:
        """Run ``generations`` evaluations on every worker, then drain all messages (collective).

        A Propulator runs once; to go on, build a new one on the same ``checkpoint_path`` with
        ``resume=True``.
        """
        if self._ran:
            raise RuntimeError(
                "propulate() has already run on this Propulator; to continue, build a new one "
                "with the same checkpoint_path and resume=True"
            )
        self._ran = True
        self._split_communicators()
        if self.pcomm is None:  # a helper rank of a multi-rank worker
            self._serve_leader()
            return
        lay = self.layout
        self._sent = dict.fromkeys(range(self.pcomm.size), 0)
        self._received = dict.fromkeys(range(self.pcomm.size), 0)
        self._expected: dict[int, int] = {}
        self._pending: list = []
        self._draining = False
        self._pollinated: dict[int, set] = {}
        self._last_flush = time.monotonic()
        emigrate_p = self.migration_probability / lay.island_sizes[lay.island]
        bar = self._progress_bar()
        for generation in range(self.generations):
            ind = self._breed(generation)
            self._evaluate(ind)
            self._publish(ind)
            if lay.num_islands > 1 and emigrate_p > 0 and self.rng.random() < emigrate_p:
                self._emigrate()
            self._receive()
            self._reap()
            if bar is not None:
                bar.update(lay.num_workers)
            self._log_progress(generation)
        if bar is not None:
            bar.close()
        self._shutdown()

    def _breed(self, generation: int) -> Individual:
        child = self.propagator(self.population.active())
        if isinstance(child, list):
            child = child[0]
        lay = self.layout
        child.uid = (self.segment, lay.worker, generation)
        child.generation, child.island = generation, lay.island
        child.worker = child.current = lay.local_index
        return child

    def _evaluate(self, ind: Individual) -> None:
        if self._control is not None:
            self._hand_out(ind)
        start = time.perf_counter()
        loss, failed, cancelled = self._run_loss(ind)
        if self._control is not None:  # a worker fails when any of its ranks failed
            failed = any(self._control.allgather_obj(failed))
        ind.evaltime, ind.timestamp = time.perf_counter() - start, time.time()
        ind.loss, ind.failed, ind.cancelled = loss, failed, cancelled
        ind.active = not failed

    def _run_loss(self, ind: Individual) -> tuple[float, bool, bool]:
        args = (ind, self.worker_comm) if self.worker_comm is not None else (ind,)
        try:
            result = self.loss_fn(*args)
            if inspect.isgenerator(result):
                loss, cancelled = self._follow(result)
            else:
                loss, cancelled = float(result), False
        except Exception:
            log.warning("loss function failed for %s", dict(ind), exc_info=True)
            return math.nan, True, False
        if math.isnan(loss):
            log.warning("loss function returned NaN for %s", dict(ind))
            return loss, True, cancelled
        return loss, False, cancelled

    def _follow(self, steps) -> tuple[float, bool]:
        """Iterate a generator loss, asking the surrogate after every intermediate value."""
        if self.surrogate is not None:
            self.surrogate.start()
        loss = math.nan
        for value in steps:
            loss = float(value)
            if self.surrogate is None:
                continue
            stop = self.surrogate.cancel(loss) if self.pcomm is not None else None
            if self._control is not None:
                stop = self._control.bcast_obj(stop, root=0)
            if stop:
                steps.close()
                return loss, True
        if self.surrogate is not None and self.pcomm is not None and not math.isnan(loss):
            self.surrogate.finish(loss)
        return loss, False

    def _hand_out(self, ind: Individual | None) -> None:
        """Leader: send the next individual (None: the end) to the worker's other ranks."""
        requests = [
            self._control.isend_obj(ind, rank, TAG_WORK) for rank in range(1, self._control.size)
        ]
        for request in requests:
            request.wait()

    def _serve_leader(self) -> None:
        """Non-leading ranks of a worker: evaluate what the leader hands out until None.

        They wait by polling with a backoff sleep, not in a blocking call (MPI implementations
        may busy-wait there), as a helper may wait long: at the end, while other workers finish.
        """
        while True:
            pause = 1e-4
            while self._control.iprobe(0, TAG_WORK) is None:
                self.stats["idle_polls"] += 1
                time.sleep(pause)
                pause = min(2 * pause, _MAX_IDLE_SLEEP)
            ind = self._control.recv_obj(0, TAG_WORK)
            if ind is None:
                break
            _, failed, _ = self._run_loss(ind)
            self._control.allgather_obj(failed)
        self._free()

    def _publish(self, ind: Individual) -> None:
        self.population.add(ind)
        self._log_individual(ind)
        for peer in self.layout.peers():
            self._send(ind, peer, TAG_INDIVIDUAL)

    def _send(self, obj: Any, dest: int, tag: int) -> None:
        self._pending.append(self.pcomm.isend_obj(obj, dest, tag))
        self._sent[dest] += 1

    def _reap(self) -> None:
        if self._pending:
            self._pending = [r for r in self._pending if not r.test()]

    def _log_individual(self, ind: Individual) -> None:
        if self.writer is not None:
            self.writer.add_individual(ind)
            self._maybe_flush()

    def _maybe_flush(self) -> None:
        now = time.monotonic()
        if now - self._last_flush >= self.checkpoint_interval:
            self.writer.flush()
            self._last_flush = now

    # ------------------------------------------------------------- exchange
    def _emigrate(self) -> None:
        lay = self.layout
        moving = self.exchange == "migration"
        for target in np.flatnonzero(self.topology[lay.island]):
            target = int(target)
            count = int(self.topology[lay.island, target])
            emigrants = self._choose_emigrants(target, count)
            if not emigrants:
                continue
            self.stats["emigrants"] += len(emigrants)
            twins = []
            for ind in emigrants:
                twin = ind.copy()
                twin.island, twin.migration_steps = target, ind.migration_steps + 1
                twin.current = int(self.rng.integers(lay.island_sizes[target]))
                twin.active = True
                twins.append(twin)
                if self.writer is not None:
                    kind = ckpt.EVENT_MOVE if moving else ckpt.EVENT_COPY
                    self.writer.add_event(kind, ind, target, twin.current)
            for dest in lay.island_workers(target):
                self._send((self.exchange, twins), dest, TAG_IMMIGRANTS)
            if moving:
                self._retire(emigrants)

    def _choose_emigrants(self, target: int, count: int) -> list[Individual]:
        own = self.population.own()
        if self.exchange == "migration":
            return self.emigrant_selection(own, count, self.rng)
        # pollination: never send the same copy to the same island twice
        sent = self._pollinated.setdefault(target, set())
        picks = [
            ind
            for ind in self.emigrant_selection(own, count + len(sent), self.rng)
            if ind.handle not in sent
        ][:count]
        sent.update(ind.handle for ind in picks)
        return picks

    def _retire(self, inds: list[Individual]) -> None:
        """Deactivate here and on the island's other workers."""
        if not inds:
            return
        handles = [ind.handle for ind in inds]
        for handle in handles:
            self.population.deactivate(handle)
        for peer in self.layout.peers():
            self._send(handles, peer, TAG_RETIRE)
        if self.writer is not None:
            self._maybe_flush()

    def _welcome(self, payload) -> None:
        exchange, twins = payload
        mine = [t for t in twins if self.population.add(t) and t.current == self.layout.local_index]
        self.stats["immigrants"] += len(mine)
        if exchange != "pollination" or not mine or self._draining:
            return
        self.stats["replacements_due"] += len(mine)
        keep = {t.handle for t in mine}
        candidates = self.immigrant_selection(self.population.own(), 2 * len(mine), self.rng)
        victims = [v for v in candidates if v.handle not in keep][: len(mine)]
        self.stats["retired"] += len(victims)
        if self.writer is not None:
            for v in victims:
                self.writer.add_event(ckpt.EVENT_RETIRE, v, -1, -1)
        self._retire(victims)

    def _receive(self) -> int:
        count = 0
        while (status := self.pcomm.iprobe()) is not None:
            obj = self.pcomm.recv_obj(status.source, status.tag)
            count += 1
            if status.tag == TAG_DONE:
                self._expected[status.source] = obj
                continue
            self._received[status.source] += 1
            if status.tag == TAG_INDIVIDUAL:
                self.population.add(obj)
            elif status.tag == TAG_IMMIGRANTS:
                self._welcome(obj)
            elif status.tag == TAG_RETIRE:
                for handle in obj:
                    self.population.deactivate(handle)
        return count

    def _shutdown(self) -> None:
        """Tell everyone how much was sent, then take in everything still in flight."""
        self._draining = True
        me = self.pcomm.rank
        others = [r for r in range(self.pcomm.size) if r != me]
        for dest in others:
            self._pending.append(self.pcomm.isend_obj(self._sent[dest], dest, TAG_DONE))
        pause = 1e-4
        while not all(
            src in self._expected and self._received[src] == self._expected[src] for src in others
        ):
            if self._receive():
                pause = 1e-4
            else:  # idle: back off instead of spinning on a core
                self.stats["idle_polls"] += 1
                time.sleep(pause)
                pause = min(2 * pause, _MAX_IDLE_SLEEP)
            self._reap()
        for request in self._pending:
            request.wait()
        self._pending = []
        if self.writer is not None:
            self.writer.close()
        if self._control is not None:
            self._hand_out(None)
        if self.population.duplicates:
            log.warning("received %d duplicate copies", self.population.duplicates)
        self._free()

    def _free(self) -> None:
        for sub in (self.pcomm, self.worker_comm, self._control):
            if sub is not None:
                sub.free()

    # ------------------------------------------------------------- reporting
    def _progress_bar(self):
        if not self.progress or self.comm.rank != 0:
            return None
        try:
            from tqdm import tqdm
        except ImportError:
            return None
        total = self.generations * self.layout.num_workers
        return tqdm(total=total, desc="evaluations", unit="eval")

    def _log_progress(self, generation: int) -> None:
        every = self.logging_interval
        if every and self.comm.rank == 0 and (generation + 1) % every == 0:
            best = self.population.best(1)
            loss = best[0].loss if best else math.nan
            log.info(
                "generation %d: best loss %.6g, %d known",
                generation + 1,
                loss,
                len(self.population),
            )

    def summarize(self, top_n: int = 1) -> list[list[Individual]]:
        """The ``top_n`` best individuals of each island (distinct ones), on every rank."""
        if not isinstance(top_n, int) or top_n < 1:
            raise ValueError(f"top_n must be a positive int, got {top_n!r}")
        lay = self.layout
        mine = None
        if lay.leader and lay.local_index == 0:
            mine = (lay.island, _distinct_best(self.population, top_n))
        gathered = [g for g in self.comm.allgather_obj(mine) if g is not None]
        per_island = [inds for _, inds in sorted(gathered, key=lambda g: g[0])]
        if self.comm.rank == 0:
            for island, inds in enumerate(per_island):
                for place, ind in enumerate(inds, 1):
                    log.info("island %d #%d: loss %.6g %s", island, place, ind.loss, dict(ind))
        return per_island


class Islands(Propulator):
    """Several islands (groups of workers) that exchange individuals.

    ``exchange="migration"`` moves emigrants (they become inactive at home);
    ``exchange="pollination"`` copies them and each receiving island retires as many of its own
    (chosen by ``immigrant_selection``) as it took in. ``migration_topology[i][j]`` is how many
    emigrants island i sends to island j per migration; ``migration_probability`` is the chance
    per island and generation (split over the island's workers). ``emigrant_selection`` and
    ``immigrant_selection`` are "best", "worst", "random" or ``f(ranked_inds, n, rng) -> list``.
    """

    def __init__(
        self,
        loss_fn,
        propagator,
        comm=None,
        generations=100,
        checkpoint_path=None,
        rng=None,
        *,
        num_islands: int = 2,
        migration_probability: float = 0.9,
        **kwargs,
    ):
        super().__init__(
            loss_fn,
            propagator,
            comm,
            generations,
            checkpoint_path,
            rng,
            num_islands=num_islands,
            migration_probability=migration_probability,
            **kwargs,
        )


def _distinct_best(population: Population, top_n: int) -> list[Individual]:
    seen, out = set(), []
    for ind in population.active():
        if ind.uid not in seen:
            seen.add(ind.uid)
            out.append(ind)
            if len(out) == top_n:
                break
    return out


def _selection(choice, name: str) -> Callable:
    if callable(choice):
        return choice
    if choice == "best":
        return lambda inds, n, rng: smallest(inds, n)
    if choice == "worst":
        return lambda inds, n, rng: largest(inds, n)
    if choice == "random":
        return _random_selection
    raise ValueError(f"{name} must be one of {SELECTIONS} or a callable, got {choice!r}")


def _random_selection(inds, n: int, rng: np.random.Generator) -> list[Individual]:
    k = min(n, len(inds))
    return [inds[int(i)] for i in rng.choice(len(inds), size=k, replace=False)] if k else []


def _find_space(propagator, limits) -> SearchSpace | None:
    if limits is not None:
        return SearchSpace(limits)
    stack, seen = [propagator], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(getattr(node, "space", None), SearchSpace):
            return node.space
        stack.extend(getattr(node, "propagators", []))
        stack.extend(getattr(node, n) for n in ("true_prop", "false_prop") if hasattr(node, n))
    return None


def _check_arguments(loss_fn, propagator, generations, interval, probability, exchange) -> None:
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if not isinstance(propagator, Propagator):
        raise TypeError(f"propagator must be a Propagator, got {type(propagator).__name__}")
    if not isinstance(generations, int) or isinstance(generations, bool) or generations < 0:
        raise ValueError(f"generations must be an int >= 0, got {generations!r}")
    if not isinstance(interval, int | float) or interval < 0:
        raise ValueError(f"checkpoint_interval must be a number >= 0, got {interval!r}")
    if not isinstance(probability, int | float) or not 0.0 <= probability <= 1.0:
        raise ValueError(f"migration_probability must be in [0, 1], got {probability!r}")
    if exchange not in EXCHANGES:
        raise ValueError(f"exchange must be one of {EXCHANGES}, got {exchange!r}")
