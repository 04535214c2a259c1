"""Packaging contract of fwdgrad: lockstep version, hpc-comm pin, CLI entry point."""

from pathlib import Path

from hpc_comm.package_checks import PackageContract


class TestPackage(PackageContract):
    dist = "fwdgrad"
    import_name = "fwdgrad"
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
