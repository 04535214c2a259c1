"""Packaging contract of heatlike: lockstep version, hpc-comm pin, CLI entry point."""

from pathlib import Path

from hpc_comm.package_checks import PackageContract


class TestPackage(PackageContract):
    dist = "heatlike"
    import_name = "heatlike"
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
