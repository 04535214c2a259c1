"""Packaging contract of f3: lockstep version, hpc-comm pin, CLI entry point."""

from pathlib import Path

from hpc_comm.package_checks import PackageContract


class TestPackage(PackageContract):
    dist = "f3"
    import_name = "f3"
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
