"""The contract every package of the suite keeps, as a pytest base class its tests inherit.

    class TestPackage(PackageContract):
        dist, import_name = "daso", "daso"
        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"

checks: installed version == pyproject version == ``__version__``; the hpc-comm pin admits
exactly this minor; one console script named after the distribution; ``--version``, ``--help``,
exit code 2 on a bad flag, ``python -m``; importing the package does not import mpi4py.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

_REQUIREMENT = re.compile(r"^\s*(?P<name>[A-Za-z0-9._-]+)\s*(?:\[[^\]]*\])?\s*(?P<spec>[^;]*)")
_SPECIFIER = re.compile(r"^\s*(?P<op>~=|===|==|!=|<=|>=|<|>)\s*(?P<version>[0-9.]+)\s*$")


def release(version: str) -> tuple[int, int, int]:
    """(major, minor, patch) of a version string, padded: "0.2" -> (0, 2, 0)."""
    parts = [int(p) for p in re.match(r"[0-9.]+", version)[0].strip(".").split(".")]
    return (*parts, 0, 0, 0)[:3]


def hpc_comm_pins(dist: str) -> list[dict[str, str]]:
    """Every requirement of ``dist`` on hpc-comm as {operator: version}."""
    pins = []
    for line in metadata.requires(dist) or []:
        match = _REQUIREMENT.match(line)
        if not match or re.sub(r"[-_.]+", "-", match["name"]).lower() != "hpc-comm":
            continue
        clauses = [_SPECIFIER.match(c) for c in match["spec"].split(",") if c.strip()]
        assert all(clauses), f"cannot parse the hpc-comm requirement {line!r}"
        pins.append({m["op"]: m["version"] for m in clauses})
    return pins


class PackageContract:
    """Inherit in a class named ``Test...`` and set ``dist``, ``import_name``, ``pyproject``."""

    dist: str
    import_name: str
    pyproject: Path

    def pyproject_version(self) -> str:
        """The ``[project] version`` written in ``pyproject``."""
        with self.pyproject.open("rb") as f:
            return tomllib.load(f)["project"]["version"]

    def cli_main(self):
        """The package's CLI entry point, ``<import_name>.cli.main``."""
        return importlib.import_module(f"{self.import_name}.cli").main

    def test_installed_version_matches_pyproject(self):
        """The installed metadata, pyproject.toml and ``__version__`` name the same version."""
        package = importlib.import_module(self.import_name)
        assert metadata.version(self.dist) == self.pyproject_version() == package.__version__

    def test_hpc_comm_requirement_admits_exactly_our_minor(self):
        """Every hpc-comm requirement reads ``>=X.Y.Z,<X.(Y+1).0`` for this package's X.Y.

        Not applicable to hpc-comm itself, which passes trivially.
        """
        if self.dist == "hpc-comm":
            return
        major, minor, _ = release(metadata.version(self.dist))
        pins = hpc_comm_pins(self.dist)
        assert pins, f"{self.dist} does not depend on hpc-comm"
        for pin in pins:
            assert set(pin) == {">=", "<"}, f"expected '>=X.Y.Z,<X.Y+1', got {pin}"
            assert release(pin[">="])[:2] == (major, minor)
            assert release(pin["<"]) == (major, minor + 1, 0)

    def test_one_console_script_named_after_the_distribution(self):
        """Exactly one console script, named ``dist``, pointing at ``<import_name>.cli:main``."""
        scripts = [
            ep
            for ep in metadata.distribution(self.dist).entry_points
            if ep.group == "console_scripts"
        ]
        assert [(ep.name, ep.value) for ep in scripts] == [
            (self.dist, f"{self.import_name}.cli:main")
        ]

    def test_version_flag_prints_name_and_version(self, capsys):
        """``--version`` prints ``<dist> <version>`` and exits with code 0."""
        with pytest.raises(SystemExit) as exit_info:
            self.cli_main()(["--version"])
        assert exit_info.value.code == 0
        assert capsys.readouterr().out == f"{self.dist} {self.pyproject_version()}\n"

    def test_unknown_flag_exits_with_code_2(self, capsys):
        """An unknown flag exits with code 2 and names the flag on stderr."""
        with pytest.raises(SystemExit) as exit_info:
            self.cli_main()(["--no-such-flag"])
        assert exit_info.value.code == 2
        assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err

    def test_no_subcommand_prints_help(self, capsys):
        """Called with no arguments, the CLI prints its usage and returns 0."""
        assert self.cli_main()([]) == 0
        assert capsys.readouterr().out.startswith(f"usage: {self.dist} ")

    def test_python_dash_m_runs_the_cli(self):
        """``python -m <import_name> --version`` runs the same CLI."""
        result = subprocess.run(
            [sys.executable, "-m", self.import_name, "--version"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"{self.dist} {self.pyproject_version()}\n"

    def test_import_does_not_load_mpi4py(self):
        """Importing the package's CLI module in a fresh interpreter leaves mpi4py unimported."""
        # A fresh interpreter: in this one another test may have imported mpi4py already.
        code = f"import sys, {self.import_name}.cli; sys.exit('mpi4py' in sys.modules)"
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr or "mpi4py was imported"
