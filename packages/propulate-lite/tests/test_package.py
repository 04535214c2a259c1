"""Packaging contract of propulate-lite: lockstep version, hpc-comm pin, CLI entry point."""

from pathlib import Path

from hpc_comm.package_checks import PackageContract


class TestPackage(PackageContract):
    dist = "propulate-lite"
    import_name = "propulate_lite"
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
