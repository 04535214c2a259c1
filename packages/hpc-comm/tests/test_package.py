"""Packaging contract of hpc-comm: lockstep version, CLI entry point, no eager mpi4py import."""

from pathlib import Path

from hpc_comm.package_checks import PackageContract


class TestPackage(PackageContract):
    dist = "hpc-comm"
    import_name = "hpc_comm"
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
