"""Run nox from a private virtual environment it creates on first use (only Python and pip needed).

    python3 tools/nox_bootstrap.py -s demo
    python3 tools/nox_bootstrap.py -s lint tests isolated mpich openmpi

After sessions that ran tests it prints one line, "N passed, N failed", merged over all sessions
and ranks, and exits non-zero if anything failed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS_VENV = ROOT / ".venv-nox"
REPORTS = ROOT / ".test-reports"
NOX_REQUIREMENT = "nox>=2024.10"


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


def main(argv: list[str]) -> int:
    os.chdir(ROOT)
    nox = nox_executable()
    shutil.rmtree(REPORTS, ignore_errors=True)
    REPORTS.mkdir()
    code = subprocess.call([str(nox), "--report", str(REPORTS / "nox.json"), *argv])
    if any(REPORTS.glob("*.xml")):
        sys.path.insert(0, str(ROOT / "ci"))
        from summarize import summary

        text, failed = summary(REPORTS)
        print(text, flush=True)
        return code or (1 if failed else 0)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
