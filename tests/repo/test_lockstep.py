"""Lockstep versions: every package shares hpc-comm's version and pins in-repo requirements to its minor."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES_DIR = REPO_ROOT / "packages"
TOOL = REPO_ROOT / "tools" / "bump_version.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("bump_version", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bump_version = load_tool()


def project(path: Path) -> dict:
    with path.open("rb") as f:
        return tomllib.load(f)["project"]


def current_version() -> str:
    return project(PACKAGES_DIR / "hpc-comm" / "pyproject.toml")["version"]


def next_minor(version: str) -> str:
    major, minor, _ = bump_version.parse_version(version)
    return f"{major}.{minor + 1}.0"


def requirements_on(name: str, path: Path) -> list[str]:
    data = project(path)
    every = [*data.get("dependencies", [])]
    for group in data.get("optional-dependencies", {}).values():
        every += group
    return [r for r in every if re.match(rf"{re.escape(name)}\s*[\[<>=!~;]", r)]


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), *args], capture_output=True, text=True, check=False
    )


def copy_packages(names: list[str], dest: Path) -> Path:
    """Copy the pyproject.toml of the named packages into dest/packages/<name>/."""
    for name in names:
        (dest / "packages" / name).mkdir(parents=True)
        shutil.copy2(PACKAGES_DIR / name / "pyproject.toml", dest / "packages" / name)
    return dest / "packages"


def test_real_repo_has_no_version_drift():
    assert bump_version.check(PACKAGES_DIR) == []


def test_real_repo_check_exits_0():
    result = run_tool("--check")
    assert result.returncode == 0, result.stderr
    assert "in lockstep" in result.stdout


def test_every_package_other_than_hpc_comm_pins_hpc_comm():
    for path in bump_version.find_pyprojects(PACKAGES_DIR):
        if path.parent.name != "hpc-comm":
            assert requirements_on("hpc-comm", path), f"{path} has no requirement on hpc-comm"


def _version_drift(text: str, version: str) -> str:
    major, minor, patch = bump_version.parse_version(version)
    return text.replace(f'version = "{version}"', f'version = "{major}.{minor}.{patch + 1}"')


def _upper_bound_widened(text: str, version: str) -> str:
    major, minor, _ = bump_version.parse_version(version)
    return text.replace(f",<{major}.{minor + 1}", f",<{major}.{minor + 2}")


def _lower_bound_dropped(text: str, version: str) -> str:
    return text.replace(f">={version},", "")


def _pin_removed(text: str, version: str) -> str:
    major, minor, _ = bump_version.parse_version(version)
    return text.replace(f">={version},<{major}.{minor + 1}", "")


@pytest.mark.parametrize(
    ("package", "make_drift", "reported"),
    [
        ("daso", _version_drift, "version"),
        ("daso", _upper_bound_widened, "does not admit exactly"),
        ("daso", _lower_bound_dropped, "does not admit exactly"),
        ("propulate-lite", _upper_bound_widened, "hpc-comm[mpi]"),
        ("propulate-lite", _pin_removed, "does not admit exactly"),
    ],
    ids=["version", "upper-bound-widened", "lower-bound-dropped", "extras-pin-widened", "unpinned"],
)
def test_check_reports_a_drifted_copy(tmp_path, package, make_drift, reported):
    packages_dir = copy_packages(["hpc-comm", package], tmp_path)
    assert bump_version.check(packages_dir) == [], "the untouched copy must be clean"
    path = packages_dir / package / "pyproject.toml"
    original = path.read_text()
    drifted = make_drift(original, current_version())
    assert drifted != original, "the drift recipe did not change the file"
    path.write_text(drifted)

    drift = bump_version.check(packages_dir)

    assert len(drift) == 1
    assert drift[0].startswith(f"packages/{package}/pyproject.toml: ")
    assert reported in drift[0]
    result = run_tool("--check", "--packages-dir", str(packages_dir))
    assert result.returncode == 1
    assert f"packages/{package}/pyproject.toml" in result.stderr


def test_bump_then_check_on_a_copy_sets_every_version(tmp_path):
    packages_dir = tmp_path / "packages"
    shutil.copytree(
        PACKAGES_DIR,
        packages_dir,
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache"),
    )
    before = {p: p.read_text() for p in bump_version.find_pyprojects(packages_dir)}
    new = next_minor(current_version())
    major, minor, _ = bump_version.parse_version(new)

    result = run_tool(new, "--packages-dir", str(packages_dir))

    assert result.returncode == 0, result.stderr
    assert bump_version.check(packages_dir) == []
    assert bump_version.check(packages_dir, expected=new) == []
    for path, old_text in before.items():
        assert project(path)["version"] == new
        for requirement in requirements_on("hpc-comm", path):
            assert re.fullmatch(
                rf"hpc-comm(\[\w+\])?>={re.escape(new)},<{major}\.{minor + 1}", requirement
            )
        changed = [
            (old, line)
            for old, line in zip(old_text.splitlines(), path.read_text().splitlines(), strict=True)
            if old != line
        ]
        assert all(line.startswith("version = ") or "hpc-comm" in line for _, line in changed), (
            changed
        )
    assert not list(packages_dir.rglob("*.tmp")), "a temporary file was left behind"
    assert bump_version.bump(packages_dir, new) == [], (
        "a second bump to the same version changes nothing"
    )


def test_bump_keeps_extras_and_markers_of_a_pin(tmp_path):
    packages_dir = copy_packages(["hpc-comm", "daso"], tmp_path)
    path = packages_dir / "daso" / "pyproject.toml"
    version = current_version()
    major, minor, _ = bump_version.parse_version(version)
    old_pin = f">={version},<{major}.{minor + 1}"
    path.write_text(
        path.read_text().replace(
            "plot = [",
            f"""cluster = ["hpc-comm[mpi,torch]{old_pin}; python_version >= '3.10'"]\nplot = [""",
        )
    )
    new = next_minor(version)

    bump_version.bump(packages_dir, new)

    (requirement,) = project(path)["optional-dependencies"]["cluster"]
    assert requirement == (
        f"hpc-comm[mpi,torch]>={new},<{major}.{minor + 2}; python_version >= '3.10'"
    )


def test_bump_leaves_name_and_entry_point_of_hpc_comm_alone(tmp_path):
    packages_dir = copy_packages(["hpc-comm"], tmp_path)
    path = packages_dir / "hpc-comm" / "pyproject.toml"

    bump_version.bump(packages_dir, next_minor(current_version()))

    data = tomllib.loads(path.read_text())
    assert data["project"]["name"] == "hpc-comm"
    assert data["project"]["scripts"] == {"hpc-comm": "hpc_comm.cli:main"}


@pytest.mark.parametrize("bad", ["0.2", "v0.2.0", "0.2.0rc1", "01.2.0", "0.2.0.1", ""])
def test_bump_rejects_a_version_that_is_not_x_y_z_with_exit_2(bad):
    result = run_tool(bad)
    assert result.returncode == 2
    assert "invalid version" in result.stderr


def test_tool_without_version_or_check_exits_2():
    result = run_tool()
    assert result.returncode == 2
    assert "give the VERSION" in result.stderr


@pytest.mark.parametrize(
    ("spec", "admitted"),
    [
        (">=0.1.0,<0.2", True),
        ("<0.2,>=0.1.0", True),
        (">=0.1.0,<0.2.0", True),
        ("~=0.1.0", True),
        ("==0.1.*", True),
        (">=0.1.0,<=0.1.99", True),
        (">=0.1.0,<0.3", False),
        (">=0.1.0,<=0.2.0", False),
        (">=0.0.9,<0.2", False),
        ("<0.2", False),
        (">=0.1.0", False),
        ("", False),
        ("~=0.1", False),
        ("==0.*", False),
        (">=0.1.1,<0.2", False),
        (">=0.1.0,<0.2,!=0.1.0", False),
    ],
)
def test_admits_exactly_minor_for_version_0_1_0(spec, admitted):
    assert bump_version.admits_exactly_minor(spec, "0.1.0") is admitted
