"""Packaging contract of daso: version in lockstep, CLI entry point, hpc-comm pinned to our minor."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import daso
from daso import cli

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

DIST = "daso"
IMPORT_NAME = "daso"
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

# "name[extras] specifiers ; marker", as importlib.metadata.requires() returns it.
REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9._-]+)\s*(?:\[[^\]]*\])?\s*(?P<spec>[^;]*)(?:;.*)?$"
)
SPECIFIER = re.compile(r"^\s*(?P<op>~=|===|==|!=|<=|>=|<|>)\s*(?P<version>[0-9]+(?:\.[0-9]+)*)\s*$")


def pyproject_version() -> str:
    with PYPROJECT.open("rb") as f:
        return tomllib.load(f)["project"]["version"]


def release(version: str) -> tuple[int, int, int]:
    """Numeric release of a version, padded to (major, minor, patch): "0.2" -> (0, 2, 0)."""
    parts = [int(part) for part in version.split(".")]
    return (*parts, 0, 0, 0)[:3]


def hpc_comm_specifiers() -> list[set[tuple[str, str]]]:
    """The specifier set of every requirement on hpc-comm, as {(operator, version), ...}."""
    found = []
    for line in metadata.requires(DIST) or []:
        match = REQUIREMENT.match(line)
        assert match, f"cannot parse requirement {line!r}"
        if re.sub(r"[-_.]+", "-", match["name"]).lower() != "hpc-comm":
            continue
        clauses = [clause for clause in match["spec"].split(",") if clause.strip()]
        parsed = [SPECIFIER.match(clause) for clause in clauses]
        assert all(parsed), f"cannot parse the specifiers of {line!r}"
        found.append({(m["op"], m["version"]) for m in parsed})
    return found


def test_installed_version_matches_pyproject():
    assert metadata.version(DIST) == pyproject_version()
    assert daso.__version__ == pyproject_version()


def test_version_flag_prints_distribution_name_and_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"{DIST} {pyproject_version()}\n"


def test_unknown_flag_exits_with_code_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--no-such-flag"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_no_subcommand_prints_help_saying_not_implemented_and_returns_0(capsys):
    assert cli.main([]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith(f"usage: {DIST} ")
    assert "Not yet implemented; see the issue tracker." in out


def test_hpc_comm_requirement_is_pinned_to_own_minor():
    major, minor, _ = release(metadata.version(DIST))
    pins = hpc_comm_specifiers()
    assert pins, f"{DIST} does not depend on hpc-comm"
    for pin in pins:
        assert len(pin) == 2, f"expected '>=X.Y.Z,<X.Y+1', got {sorted(pin)}"
        (lower,) = [version for op, version in pin if op == ">="]
        (upper,) = [version for op, version in pin if op == "<"]
        assert release(lower)[:2] == (major, minor)
        assert release(lower) <= release(metadata.version(DIST))
        assert release(upper) == (major, minor + 1, 0)


def test_console_script_is_named_after_the_distribution_and_runs_cli_main():
    scripts = [
        ep for ep in metadata.distribution(DIST).entry_points if ep.group == "console_scripts"
    ]
    assert [(ep.name, ep.value) for ep in scripts] == [(DIST, f"{IMPORT_NAME}.cli:main")]


def test_python_dash_m_prints_the_version():
    result = subprocess.run(
        [sys.executable, "-m", IMPORT_NAME, "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{DIST} {pyproject_version()}\n"


def test_importing_package_and_cli_does_not_import_mpi4py():
    # A fresh interpreter: in this one, another test or plugin may have imported mpi4py already.
    code = f"import sys, {IMPORT_NAME}.cli; sys.exit('mpi4py' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr or "mpi4py was imported"
