"""Append-only HDF5 checkpoints: one file per worker and run segment, replayed on resume.

Each worker logs what it alone knows: the individuals it evaluated and the exchanges it started
(an emigrant moved or copied to another island, a pollination victim retired). Every record
reaches the operating system before the worker goes on, so a killed run loses at most the
evaluation in progress: either the HDF5 file is flushed after every record, or (``journal``)
each record is written at once, with one ``write`` call, to a plain binary journal next to the
HDF5 file, which takes records in batches and then empties the journal. Replaying all files
rebuilds each island's population: an individual copy is present when it was born or received
there, and active unless some event retired it (order does not matter).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from .population import Individual
from .space import SearchSpace

FORMAT_VERSION = 1
EVENT_MOVE, EVENT_COPY, EVENT_RETIRE = 1, 2, 3
_FILE = re.compile(r"seg(\d+)-worker(\d+)\.h5$")
# meta columns of an evaluated individual
_META = ("segment", "rank", "generation", "island", "worker", "current", "failed", "cancelled")
# event columns: kind, uid (3), migration steps, from island, to island, current at target
_EVENT_WIDTH = 8


def existing_files(path: Path) -> list[Path]:
    """The worker files ``seg<segment>-worker<rank>.h5`` in the folder ``path``, sorted by name."""
    return sorted(p for p in Path(path).glob("seg*-worker*.h5") if _FILE.search(p.name))


def next_segment(path: Path) -> int:
    """The segment number of a new run in ``path``: one more than the highest there, else 0."""
    segments = [int(_FILE.search(p.name).group(1)) for p in existing_files(path)]
    return max(segments, default=-1) + 1


def read_config(path: Path) -> dict | None:
    """The run configuration stored in the checkpoint (from its first readable file)."""

    for file in existing_files(path):
        try:
            with _open_for_reading(file) as f:
                return json.loads(f.attrs["config"])
        except (OSError, KeyError):
            continue
    return None


def config_mismatch(stored: dict, current: dict) -> str | None:
    """Why a checkpoint cannot continue with this configuration, or None."""
    for key in ("format", "space", "num_islands"):
        if stored.get(key) != current.get(key):
            return f"checkpoint has {key}={stored.get(key)!r}, this run has {current.get(key)!r}"
    return None


class CheckpointWriter:
    """Appends one worker's evaluated individuals and exchange events to its own HDF5 file.

    With ``journal=True`` every record also goes at once to a binary journal file (one
    ``write`` per record, no HDF5 call), so ``flush`` may run rarely without risking a record.
    """

    def __init__(
        self,
        path: Path,
        segment: int,
        rank: int,
        space: SearchSpace,
        config: dict,
        journal: bool = False,
    ):
        import h5py

        self.space = space
        Path(path).mkdir(parents=True, exist_ok=True)
        self.file_path = Path(path) / f"seg{segment:04d}-worker{rank:05d}.h5"
        tmp = self.file_path.with_suffix(".h5.tmp")
        width = len(space) + 3 + len(_META)
        with h5py.File(tmp, "w", libver="latest") as f:  # created complete, then renamed
            f.attrs["config"] = json.dumps(config)
            f.attrs["columns"] = json.dumps([*space.names, "loss", "evaltime", "timestamp", *_META])
            _table(f, "individuals", (width,), np.float64)
            _table(f, "events", (_EVENT_WIDTH,), np.int64)
        os.replace(tmp, self.file_path)
        self._file = h5py.File(self.file_path, "r+", libver="latest")
        # single-writer/multiple-reader mode orders metadata writes so that the file on disk is
        # consistent after every flush: a killed worker leaves a readable file
        self._file.swmr_mode = True
        self._tables = {name: _AppendTable(self._file[name]) for name in ("individuals", "events")}
        self._queued: dict[str, list] = {"individuals": [], "events": []}
        self._journals = None
        if journal:
            self._journals = {
                "individuals": _Journal(journal_path(self.file_path, "individuals"), np.float64),
                "events": _Journal(journal_path(self.file_path, "events"), np.int64),
            }

    def add_individual(self, ind: Individual) -> None:
        """Queue an evaluated individual for the next ``flush`` (and journal it at once)."""
        self._add("individuals", _row(self.space, ind))

    def add_event(self, kind: int, ind: Individual, to_island: int, current: int) -> None:
        """Queue an exchange of the copy ``ind`` for the next ``flush`` (and journal it at once).

        Parameters
        ----------
        kind
            EVENT_MOVE (emigrated), EVENT_COPY (copied to another island) or EVENT_RETIRE
            (deactivated on its island).
        ind
            The copy as it is on its current island (uid, migration steps, island).
        to_island
            The receiving island (-1 for EVENT_RETIRE).
        current
            The island-local worker responsible for the copy on ``to_island`` (-1 for
            EVENT_RETIRE).
        """
        self._add("events", [kind, *ind.uid, ind.migration_steps, ind.island, to_island, current])

    def _add(self, table: str, row: list) -> None:
        self._queued[table].append(row)
        if self._journals is not None:
            self._journals[table].write(row)

    def flush(self) -> None:
        """Append what was added since the last flush, flush the file, then empty the journal."""
        if not self._queued["individuals"] and not self._queued["events"]:
            return
        for name, rows in self._queued.items():
            if rows:
                self._queued[name] = []
                self._tables[name].append(np.array(rows, dtype=self._tables[name].ds.dtype))
        self._file.flush()
        if self._journals is not None:  # a kill before this line leaves duplicates, not gaps
            for journal in self._journals.values():
                journal.clear()

    def close(self) -> None:
        """Flush what is queued, close the file and delete the journal; a second call does
        nothing."""
        if self._file is not None:
            self.flush()
            self._file.close()
            self._file = None
            for journal in (self._journals or {}).values():
                journal.remove()


def journal_path(file_path: Path, table: str) -> Path:
    """The journal of ``table`` ("individuals" or "events") next to a worker's HDF5 file."""
    return file_path.with_suffix(f".{table}.journal")


class _Journal:
    """Fixed-width binary rows, each appended with a single ``write`` to an O_APPEND file."""

    def __init__(self, path: Path, dtype):
        self.path, self.dtype = path, np.dtype(dtype)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)

    def write(self, row: list) -> None:
        os.write(self._fd, np.array(row, dtype=self.dtype).tobytes())

    def clear(self) -> None:
        os.ftruncate(self._fd, 0)

    def remove(self) -> None:
        os.close(self._fd)
        self.path.unlink(missing_ok=True)


def _read_journal(path: Path, width: int, dtype) -> np.ndarray:
    """The complete rows of a journal (a row cut short by a kill is dropped); none if absent."""
    dtype = np.dtype(dtype)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    count = len(data) // (width * dtype.itemsize)
    return np.frombuffer(data[: count * width * dtype.itemsize], dtype=dtype).reshape(count, width)


def _open_for_reading(file: Path):
    import h5py

    return h5py.File(file, "r", swmr=True)


def _table(f, name: str, row_shape: tuple, dtype) -> None:
    f.create_dataset(
        name, shape=(0, *row_shape), maxshape=(None, *row_shape), dtype=dtype, chunks=True
    )


class _AppendTable:
    """Appends rows to a resizable 2-D dataset through h5py's low-level calls (this is on the
    path of every evaluation, and the high-level slicing costs several times more)."""

    def __init__(self, ds):
        self.ds, self.rows, self.width = ds, ds.shape[0], ds.shape[1]

    def append(self, rows: np.ndarray) -> None:
        from h5py import h5s

        rows = np.ascontiguousarray(rows, dtype=self.ds.dtype)
        count = rows.shape[0]
        self.ds.id.set_extent((self.rows + count, self.width))
        target = self.ds.id.get_space()
        target.select_hyperslab((self.rows, 0), (count, self.width))
        self.ds.id.write(h5s.create_simple(rows.shape), target, rows)
        self.rows += count


def _row(space: SearchSpace, ind: Individual) -> list[float]:
    return [*space.encode(ind), ind.loss, ind.evaltime, ind.timestamp, *_meta_row(ind)]


def _meta_row(ind: Individual) -> list[int]:
    return [*ind.uid, ind.island, ind.worker, ind.current, int(ind.failed), int(ind.cancelled)]


def read_records(path: Path) -> tuple[SearchSpace, list[Individual], list[np.ndarray]]:
    """Every evaluated individual (as born) and every exchange event in a checkpoint folder."""

    config = read_config(path)
    if config is None:
        raise ValueError(f"checkpoint_path {str(path)!r} holds no readable checkpoint")
    space = SearchSpace.from_config(config["space"])
    individuals: list[Individual] = []
    events: list[np.ndarray] = []
    for file in existing_files(path):
        try:
            with _open_for_reading(file) as f:
                rows = f["individuals"][:]
                if f["events"].shape[0]:
                    events.append(f["events"][:])
        except (OSError, KeyError) as exc:  # a file cut short by a kill mid-creation
            from hpc_comm import get_logger

            get_logger(__name__).warning("skipping unreadable checkpoint file %s: %s", file, exc)
            continue
        width = rows.shape[1]
        journaled = _read_journal(journal_path(file, "individuals"), width, np.float64)
        rows = np.concatenate([rows, journaled]) if len(journaled) else rows
        journaled_events = _read_journal(journal_path(file, "events"), _EVENT_WIDTH, np.int64)
        if len(journaled_events):  # replaying an event twice changes nothing
            events.append(journaled_events)
        d, seen = len(space), set()
        for row in rows:
            info = row[d + 3 :].astype(np.int64)
            ind = _individual(space, row[:d], row[d], info, row[d + 1 : d + 3])
            if ind.uid not in seen:  # in the file and still in the journal after a kill
                seen.add(ind.uid)
                individuals.append(ind)
    return space, individuals, events


def _individual(space, row, value, info, times) -> Individual:
    ind = Individual(space.decode(row))
    ind.loss = float(value)
    ind.uid = (int(info[0]), int(info[1]), int(info[2]))
    ind.generation = int(info[2])
    ind.island, ind.worker, ind.current = int(info[3]), int(info[4]), int(info[5])
    ind.failed, ind.cancelled = bool(info[6]), bool(info[7])
    ind.evaltime, ind.timestamp = float(times[0]), float(times[1])
    return ind


def replay(
    individuals: list[Individual], events: list[np.ndarray], island: int, island_size: int
) -> list[Individual]:
    """The population of ``island`` (copies with their active flags) after all logged events.

    ``current`` is reduced modulo ``island_size`` so a run resumed on fewer or more workers
    still has exactly one worker responsible for each individual.
    """
    by_uid = {ind.uid: ind for ind in individuals}
    present: dict[tuple, Individual] = {}
    retired: set[tuple] = set()
    for ind in individuals:
        if ind.island == island:
            present[ind.handle] = ind.copy()
    for kind, s, r, g, steps, src, dst, current in (
        row for block in events for row in block.tolist()
    ):
        uid = (s, r, g)
        if kind in (EVENT_MOVE, EVENT_RETIRE) and src == island:
            retired.add((uid, steps))
        if kind in (EVENT_MOVE, EVENT_COPY) and dst == island and uid in by_uid:
            twin = by_uid[uid].copy()
            twin.island, twin.migration_steps, twin.current = island, steps + 1, current
            present.setdefault(twin.handle, twin)
    out = []
    for handle, ind in present.items():
        ind.active = handle not in retired and not ind.failed
        ind.current %= island_size
        out.append(ind)
    return out


def finite(value: Any) -> bool:
    """True for an int or float (a subclass such as bool or numpy.float64 too) that is neither
    infinite nor NaN."""
    return isinstance(value, float | int) and math.isfinite(value)
