"""One Propulate 1.2.2 run under mpiexec (in the anchor's own venv); rank 0 prints JSON."""

import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).parent))
import propulate
from _objectives import LIMITS, Objective
from propulate.utils import get_default_propagator, set_logger_config


def main(name, evals, seed, sleep_ms, dim=2):
    comm = MPI.COMM_WORLD
    set_logger_config(level=logging.ERROR, log_to_stdout=False, colors=False)
    objective = Objective(name, sleep_ms)
    limits = {f"x{i}": LIMITS[name] for i in range(dim)}
    rng = random.Random(seed * 1000 + comm.rank)
    propagator = get_default_propagator(2 * comm.size, limits, rng=rng)
    folder = comm.bcast(tempfile.mkdtemp(prefix="bench-propulate-") if comm.rank == 0 else None)
    prop = propulate.Propulator(
        lambda p: objective(list(p.values())),
        propagator,
        rng=rng,
        island_comm=comm,
        generations=evals // comm.size,
        checkpoint_path=folder,
    )
    comm.barrier()
    start = time.perf_counter()
    prop.propulate(logging_interval=10**9, debug=-1)
    comm.barrier()
    wall = time.perf_counter() - start
    best = min(ind.loss for ind in prop.population)
    loss_seconds = max(comm.allgather(objective.seconds))
    if comm.rank == 0:
        print(json.dumps({"wall": wall, "best": best, "loss_seconds": loss_seconds}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
