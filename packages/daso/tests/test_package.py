"""Packaging contract of daso: lockstep version, hpc-comm pin, CLI entry point."""

from pathlib import Path

from hpc_comm.package_checks import PackageContract


class TestPackage(PackageContract):
    dist = "daso"
    import_name = "daso"
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
