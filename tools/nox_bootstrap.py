"""Run nox from a private virtual environment it creates on first use (only Python and pip needed).

    python3 tools/nox_bootstrap.py -s demo
    python3 tools/nox_bootstrap.py -s lint tests isolated mpich openmpi

The nine `isolated` sessions run two at a time (each in its own venv, with one thread per
process; a session's output is printed whole when it ends), the others one after the other.
`--serial` runs everything one after the other.

After sessions that ran tests it prints one line, "N passed, N failed", merged over all sessions
and ranks, and exits non-zero if anything failed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS_VENV = ROOT / ".venv-nox"
REPORTS = ROOT / ".test-reports"
NOX_REQUIREMENT = "nox>=2024.10"
# the packages of the monorepo (noxfile.py's PACKAGES, which nox alone can import)
PACKAGES = sorted(p.parent.name for p in (ROOT / "packages").glob("*/pyproject.toml"))
PARALLEL = 2  # isolated sessions at once: installs are single-threaded, the machine has 2 cores


def nox_executable() -> Path:
    bindir = TOOLS_VENV / ("Scripts" if os.name == "nt" else "bin")
    nox = bindir / "nox"
    if not nox.exists():
        print(f"bootstrap: creating {TOOLS_VENV.name} with {NOX_REQUIREMENT}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(TOOLS_VENV)
        subprocess.run(
            [str(bindir / "python"), "-m", "pip", "install", "-q", NOX_REQUIREMENT], check=True
        )
    return nox


def plan(argv: list[str]) -> list[tuple[list[str], list[str]]] | None:
    """The nox runs for ``argv`` as (sessions, other arguments), with "isolated" expanded to
    its nine sessions in a run of their own; None when ``argv`` does not name sessions with
    ``-s`` or does not include "isolated" (then nox gets ``argv`` as it is)."""
    flags = [i for i, a in enumerate(argv) if a in ("-s", "--sessions", "--session")]
    if len(flags) != 1:
        return None
    start = flags[0] + 1
    stop = start
    while stop < len(argv) and not argv[stop].startswith("-"):
        stop += 1
    sessions, rest = argv[start:stop], argv[: flags[0]] + argv[stop:]
    if "isolated" not in sessions:
        return None
    runs: list[tuple[list[str], list[str]]] = []
    for name in sessions:
        if name == "isolated":
            runs.append(([f"isolated(package='{p}')" for p in PACKAGES], rest))
        elif runs and not _isolated(runs[-1][0]):
            runs[-1][0].append(name)
        else:
            runs.append(([name], rest))
    return runs


def _isolated(sessions: list[str]) -> bool:
    return sessions[0].startswith("isolated(")


def _args(sessions: list[str], rest: list[str]) -> list[str]:
    """nox's arguments: the options, ``-s`` and the sessions, then ``--`` and its arguments."""
    cut = rest.index("--") if "--" in rest else len(rest)
    return [*rest[:cut], "-s", *sessions, *rest[cut:]]


def run_nox(nox: Path, args: list[str], report: str, log=None) -> int:
    """One nox process; its output goes to ``log`` (with one thread per process) if given."""
    cmd = [str(nox), "--report", str(REPORTS / report), *args]
    if log is None:
        return subprocess.call(cmd)
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(name, "1")
    return subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def run_parallel(nox: Path, sessions: list[str], rest: list[str], tag: int) -> int:
    """``sessions`` on ``PARALLEL`` nox processes at once, each printed whole when it ends."""
    pending = list(enumerate(sessions))
    codes: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                index, session = pending.pop(0)
            log_path = REPORTS / f"nox-{tag}-{index}.log"
            with open(log_path, "w") as log:
                code = run_nox(nox, _args([session], rest), f"nox-{tag}-{index}.json", log)
            with lock:
                codes.append(code)
                sys.stdout.write(log_path.read_text())
                sys.stdout.flush()

    threads = [threading.Thread(target=worker) for _ in range(PARALLEL)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return max(codes, default=0)


def main(argv: list[str]) -> int:
    os.chdir(ROOT)
    nox = nox_executable()
    shutil.rmtree(REPORTS, ignore_errors=True)
    REPORTS.mkdir()
    serial = "--serial" in argv
    argv = [a for a in argv if a != "--serial"]
    runs = None if serial else plan(argv)
    if runs is None:
        code = run_nox(nox, argv, "nox.json")
    else:
        code = 0
        for tag, (sessions, rest) in enumerate(runs):
            if _isolated(sessions):
                code = max(code, run_parallel(nox, sessions, rest, tag))
            else:
                code = max(code, run_nox(nox, _args(sessions, rest), f"nox-{tag}.json"))
    if any(REPORTS.glob("*.xml")):
        sys.path.insert(0, str(ROOT / "ci"))
        from summarize import summary

        text, failed = summary(REPORTS)
        print(text, flush=True)
        return code or (1 if failed else 0)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
