"""The Python examples of the migration guide run as they stand (one process, no launcher)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["docs/migration.md"]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def snippets():
    for page in PAGES:
        for i, match in enumerate(FENCE.finditer((ROOT / page).read_text())):
            yield pytest.param(match.group(1), id=f"{page}#{i}")


@pytest.mark.parametrize("code", list(snippets()))
def test_snippet_runs(code, tmp_path):
    script = tmp_path / "snippet.py"
    script.write_text(code)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HPC_COMM_BACKEND": "self"}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip(), "every example prints its result"
