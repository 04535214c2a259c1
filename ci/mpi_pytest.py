"""Run pytest on one rank of an MPI job: rank 0 prints, the others log to a file.

Usage: mpiexec -n N python ci/mpi_pytest.py REPORT_NAME [pytest args...]
Each rank writes .test-reports/REPORT_NAME-rank<r>.xml (JUnit); a rank that fails prints the tail of
its log, so a failure seen by one rank only is not hidden.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

REPORTS = Path(".test-reports")


def world_rank() -> int:
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "RANK"):
        if var in os.environ:
            return int(os.environ[var])
    return 0


def main(argv: list[str]) -> int:
    import pytest

    name, args = argv[0], argv[1:]
    rank = world_rank()
    REPORTS.mkdir(exist_ok=True)
    args = [*args, f"--junitxml={REPORTS / f'{name}-rank{rank}.xml'}", "-p", "no:cacheprovider"]
    if rank == 0:
        return int(pytest.main(args))
    log = REPORTS / "logs" / f"{name}-rank{rank}.log"
    log.parent.mkdir(exist_ok=True)
    with open(log, "w") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = int(pytest.main([*args, "-q"]))
    if code != 0:
        tail = log.read_text().splitlines()[-80:]
        print(
            f"---- rank {rank} failed ({name}); last lines of {log}:",
            *tail,
            sep="\n",
            file=sys.stderr,
        )
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
