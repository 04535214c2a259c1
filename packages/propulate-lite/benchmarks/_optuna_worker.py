"""One Optuna run: 2 processes under mpiexec sharing a journal-file storage; rank 0 prints JSON.

mpi4py is used only to start the processes together and to collect the result.
"""

import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import optuna
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).parent))
from _objectives import LIMITS, Objective


def main(sampler_name, name, evals, seed, sleep_ms, dim=2):
    comm = MPI.COMM_WORLD
    optuna.logging.set_verbosity(logging.ERROR)
    objective = Objective(name, sleep_ms)
    lo, hi = LIMITS[name]
    folder = comm.bcast(tempfile.mkdtemp(prefix="bench-optuna-") if comm.rank == 0 else None)
    backend = optuna.storages.journal.JournalFileBackend(os.path.join(folder, "journal.log"))
    storage = optuna.storages.JournalStorage(backend)
    sampler = (
        optuna.samplers.TPESampler(seed=seed * 1000 + comm.rank)
        if sampler_name == "tpe"
        else optuna.samplers.CmaEsSampler(seed=seed * 1000 + comm.rank)
    )
    if comm.rank == 0:
        optuna.create_study(study_name="bench", storage=storage)
    comm.barrier()
    study = optuna.load_study(study_name="bench", storage=storage, sampler=sampler)

    def trial_loss(trial):
        return objective([trial.suggest_float(f"x{i}", lo, hi) for i in range(dim)])

    comm.barrier()
    start = time.perf_counter()
    study.optimize(trial_loss, n_trials=evals // comm.size)
    comm.barrier()
    wall = time.perf_counter() - start
    loss_seconds = max(comm.allgather(objective.seconds))
    if comm.rank == 0:
        print(json.dumps({"wall": wall, "best": study.best_value, "loss_seconds": loss_seconds}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
