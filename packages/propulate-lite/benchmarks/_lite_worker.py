"""One propulate-lite run under mpiexec; rank 0 prints a JSON line with the measurements."""

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _objectives import LIMITS, Objective

import hpc_comm as hc
import propulate_lite as pl


def main(name, evals, seed, sleep_ms, kind="ga", dim=2):
    comm = hc.world()
    objective = Objective(name, sleep_ms)
    limits = {f"x{i}": LIMITS[name] for i in range(dim)}
    rng = np.random.default_rng([seed, comm.rank])
    if kind == "ga":
        propagator = pl.get_default_propagator(2 * comm.size, limits, rng=rng)
    else:
        propagator = pl.propagators.CMAES(limits, rng=rng)
    folder = comm.bcast_obj(tempfile.mkdtemp(prefix="bench-lite-") if comm.rank == 0 else None)
    prop = pl.Propulator(
        lambda p: objective(list(p.values())),
        propagator,
        comm=comm,
        generations=evals // comm.size,
        checkpoint_path=folder,
        rng=rng,
    )
    comm.allgather_obj(None)
    start = time.perf_counter()
    prop.propulate()
    comm.allgather_obj(None)
    wall = time.perf_counter() - start
    best = prop.summarize(1)[0][0].loss
    loss_seconds = max(comm.allgather_obj(objective.seconds))
    if comm.rank == 0:
        print(json.dumps({"wall": wall, "best": best, "loss_seconds": loss_seconds}))
        shutil.rmtree(folder, ignore_errors=True)  # after the last read of the checkpoint


if __name__ == "__main__":
    kind = sys.argv[5] if len(sys.argv) > 5 else "ga"
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), kind)
