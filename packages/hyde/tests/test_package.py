"""Packaging contract of hyde: lockstep version, hpc-comm pin, CLI entry point."""

from pathlib import Path

from hpc_comm.package_checks import PackageContract


class TestPackage(PackageContract):
    dist = "hyde"
    import_name = "hyde"
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
