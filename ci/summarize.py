"""One closing line for all test runs: merge the JUnit reports of every session and rank.

A test of an MPI run counts once: failed if it failed on any rank. A nox session that failed
without a failing test (lint, an install) counts as one failure.
"""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path


def outcomes(report_dir: Path) -> dict[str, str]:
    """test id -> 'passed' | 'failed' | 'skipped', merged over the ranks of each run."""
    merged: dict[str, str] = {}
    for path in sorted(report_dir.glob("*.xml")):
        run = re.sub(r"-rank\d+$", "", path.stem)
        for case in ET.parse(path).getroot().iter("testcase"):
            test_id = f"{run}::{case.get('classname')}::{case.get('name')}"
            if case.find("failure") is not None or case.find("error") is not None:
                state = "failed"
            elif case.find("skipped") is not None:
                state = "skipped"
            else:
                state = "passed"
            if test_id not in merged or state == "failed":
                merged[test_id] = state
    return merged


def failed_sessions(report_dir: Path) -> list[str]:
    """The failed sessions of every nox run that wrote a report here (nox*.json)."""
    sessions = []
    for path in sorted(report_dir.glob("nox*.json")):
        sessions += json.loads(path.read_text()).get("sessions", [])
    return [
        s["signatures"][0] if s.get("signatures") else s["name"]
        for s in sessions
        if s.get("result") == "failed"
    ]


def summary(report_dir: Path) -> tuple[str, int]:
    counts: dict[str, int] = defaultdict(int)
    per_run: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for test_id, state in outcomes(report_dir).items():
        counts[state] += 1
        per_run[test_id.split("::")[0]][state] += 1
    lines = [
        f"  {run:<28} {c['passed']:>5} passed {c['failed']:>3} failed {c['skipped']:>3} skipped"
        for run, c in sorted(per_run.items())
    ]
    sessions = failed_sessions(report_dir)
    failing_runs = {run for run, c in per_run.items() if c["failed"]}
    extra = [
        s for s in sessions if not any(run.startswith(s.split("(")[0]) for run in failing_runs)
    ]
    if sessions:
        lines.append("failed nox sessions: " + ", ".join(sessions))
    failed = counts["failed"] + len(extra)
    line = f"{counts['passed']} passed, {failed} failed"
    if counts["skipped"]:
        line += f", {counts['skipped']} skipped"
    return "\n".join([*lines, line]), failed


if __name__ == "__main__":
    text, failed = summary(Path(sys.argv[1] if len(sys.argv) > 1 else ".test-reports"))
    print(text)
    sys.exit(1 if failed else 0)
