"""Packaging contract of oialr: lockstep version, hpc-comm pin, CLI entry point."""

from pathlib import Path

from hpc_comm.package_checks import PackageContract


class TestPackage(PackageContract):
    dist = "oialr"
    import_name = "oialr"
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
