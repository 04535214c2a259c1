#!/usr/bin/env python3
"""Keep every package in lockstep: bump all versions and in-repo pins at once, or check for drift.

Usage: `python tools/bump_version.py 0.2.0` sets every packages/*/pyproject.toml to 0.2.0 and every
in-repo pin to >=0.2.0,<0.3; `python tools/bump_version.py --check` exits 1 listing drift, else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser is the tomli package
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        sys.exit("bump_version.py needs Python >= 3.11 (tomllib) or the tomli package")

DEFAULT_PACKAGES_DIR = Path(__file__).resolve().parents[1] / "packages"
REFERENCE = "hpc-comm"  # the package whose version every other one must share

VERSION = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
# "name[extras] specifiers ; marker", the PEP 508 subset used in pyproject dependency lists.
REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?P<extras>\[[^\]]*\])?"
    r"\s*(?P<spec>[^;]*?)\s*(?P<marker>;.*)?$"
)
SPECIFIER = re.compile(
    r"^\s*(?P<op>===|~=|==|!=|<=|>=|<|>)\s*(?P<release>[0-9]+(?:\.[0-9]+)*)(?P<wildcard>\.\*)?\s*$"
)
TABLE_HEADER = re.compile(r"^\s*\[\[?\s*(?P<table>[^\]]+?)\s*\]\]?\s*(?:#.*)?$")
VERSION_LINE = re.compile(r"""^(?P<head>\s*version\s*=\s*)(?P<q>["'])[^"'\r\n]*(?P=q)""")
RELEASE_FIELDS = 6  # versions are compared as release tuples padded with zeros to this length


class DriftError(Exception):
    """A pyproject.toml cannot be bumped safely (no static version, unreadable TOML, ...)."""


def parse_version(text: str) -> tuple[int, int, int]:
    """Parse "0.2.0" into (0, 2, 0); anything but X.Y.Z of non-negative integers is a ValueError."""
    match = VERSION.match(text)
    if not match:
        raise ValueError(
            f"invalid version {text!r}: expected X.Y.Z with non-negative integers, e.g. 0.2.0"
        )
    return int(match[1]), int(match[2]), int(match[3])


def pin(version: str) -> str:
    """The specifier that admits exactly the minor series of `version`: ">=0.2.0,<0.3"."""
    major, minor, _ = parse_version(version)
    return f">={version},<{major}.{minor + 1}"


def canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _release(text: str) -> tuple[int, ...]:
    parts = tuple(int(part) for part in text.split("."))
    if len(parts) > RELEASE_FIELDS:
        raise ValueError(f"version {text!r} has more than {RELEASE_FIELDS} fields")
    return parts + (0,) * (RELEASE_FIELDS - len(parts))


def _prefix_end(parts: Sequence[int]) -> tuple[int, ...]:
    """First release after every version that starts with `parts`: (0, 1) -> 0.2.0..."""
    return _release(".".join(str(p) for p in (*parts[:-1], parts[-1] + 1)))


def _clause_admits(op: str, release: str, wildcard: bool, version: tuple[int, ...]) -> bool:
    bound = _release(release)
    if wildcard:  # "==0.1.*" / "!=0.1.*": a prefix match
        parts = [int(p) for p in release.split(".")]
        inside = _release(release) <= version < _prefix_end(parts)
        return inside if op == "==" else not inside
    if op == "~=":
        parts = [int(p) for p in release.split(".")]
        return len(parts) >= 2 and bound <= version < _prefix_end(parts[:-1])
    return {
        "===": version == bound,
        "==": version == bound,
        "!=": version != bound,
        "<=": version <= bound,
        ">=": version >= bound,
        "<": version < bound,
        ">": version > bound,
    }[op]


def admits_exactly_minor(spec: str, version: str) -> bool:
    """True if `spec` admits `version` and no release outside its X.Y series.

    Works on the interval the specifiers describe: the largest lower bound must lie in X.Y and the
    smallest upper bound must shut out X.(Y+1).0; "!=" clauses only have to spare `version` itself.
    """
    major, minor, _ = parse_version(version)
    own = _release(version)
    series_start, series_end = _release(f"{major}.{minor}"), _release(f"{major}.{minor + 1}")
    lower: tuple[int, ...] | None = None
    upper: tuple[tuple[int, ...], bool] | None = None  # (bound, inclusive)

    def tighten_upper(bound: tuple[int, ...], inclusive: bool) -> None:
        nonlocal upper
        if upper is None or bound < upper[0] or (bound == upper[0] and not inclusive):
            upper = (bound, inclusive)

    clauses = [clause for clause in spec.split(",") if clause.strip()]
    if not clauses:
        return False
    for clause in clauses:
        match = SPECIFIER.match(clause)
        if not match:
            return False
        op, release, wildcard = match["op"], match["release"], bool(match["wildcard"])
        if (wildcard and op not in ("==", "!=")) or (op == "~=" and "." not in release):
            return False  # not a valid specifier
        if not _clause_admits(op, release, wildcard, own):
            return False
        parts = [int(p) for p in release.split(".")]
        if op in (">=", ">", "~=", "==", "===") or (wildcard and op == "=="):
            lower = max(lower or _release(release), _release(release))
        if op == "~=":
            tighten_upper(_prefix_end(parts[:-1]), inclusive=False)
        elif op == "==" and wildcard:
            tighten_upper(_prefix_end(parts), inclusive=False)
        elif op in ("==", "===", "<="):
            tighten_upper(_release(release), inclusive=True)
        elif op == "<":
            tighten_upper(_release(release), inclusive=False)
    if lower is None or upper is None or lower < series_start:
        return False
    bound, inclusive = upper
    return bound < series_end if inclusive else bound <= series_end


def find_pyprojects(packages_dir: Path) -> list[Path]:
    return sorted(packages_dir.glob("*/pyproject.toml"))


def _load(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as error:
        raise DriftError(f"{path}: not valid TOML ({error})") from error


def _requirements(project: dict) -> Iterator[str]:
    """Every requirement string of [project] dependencies and optional-dependencies."""
    yield from project.get("dependencies", [])
    for group in project.get("optional-dependencies", {}).values():
        yield from group


def _repo_dists(pyprojects: dict[Path, dict]) -> set[str]:
    names = (data.get("project", {}).get("name") for data in pyprojects.values())
    return {canonical_name(name) for name in names if name}


def _display(path: Path, packages_dir: Path) -> str:
    try:
        return str(path.relative_to(packages_dir.parent))
    except ValueError:
        return str(path)


def check(packages_dir: Path = DEFAULT_PACKAGES_DIR, expected: str | None = None) -> list[str]:
    """One line per drift: a version that differs from hpc-comm's (or from `expected`), or a
    requirement on an in-repo package (hpc-comm, or a sibling through an extra) whose pin does not
    admit exactly that minor. An empty list means the packages are in lockstep."""
    pyprojects = {path: _load(path) for path in find_pyprojects(packages_dir)}
    if not pyprojects:
        return [f"{packages_dir}: no */pyproject.toml found"]
    by_name = {
        canonical_name(d.get("project", {}).get("name", "")): p for p, d in pyprojects.items()
    }
    if REFERENCE not in by_name:
        return [f"{packages_dir}: no package named {REFERENCE!r}, whose version the others follow"]
    reference = pyprojects[by_name[REFERENCE]]["project"].get("version")
    target = expected if expected is not None else reference
    try:
        parse_version(str(target))
    except ValueError as error:
        return [f"{_display(by_name[REFERENCE], packages_dir)}: {error}"]
    repo_dists = _repo_dists(pyprojects)
    drift = []
    for path, data in pyprojects.items():
        where = _display(path, packages_dir)
        project = data.get("project")
        if project is None:
            drift.append(f"{where}: no [project] table")
            continue
        version = project.get("version")
        if version != target:
            whose = (
                f"expected {expected}" if expected is not None else f"{REFERENCE} is at {reference}"
            )
            drift.append(f"{where}: version {version!r} ({whose})")
        for requirement in _requirements(project):
            match = REQUIREMENT.match(requirement)
            if not match or canonical_name(match["name"]) not in repo_dists:
                continue
            if not admits_exactly_minor(match["spec"], target):
                wanted = f"{match['name']}{match['extras'] or ''}{pin(target)}"
                drift.append(
                    f"{where}: requirement {requirement!r} does not admit exactly {target}'s minor "
                    f"series; expected {wanted!r}"
                )
    return drift


def _rewrite_version_line(text: str, version: str, path: Path) -> str:
    """Replace the value of `version = "..."` in the [project] table, keeping everything else."""
    lines = text.splitlines(keepends=True)
    table, hits = None, 0
    for index, line in enumerate(lines):
        header = TABLE_HEADER.match(line)
        if header:
            table = header["table"]
            continue
        if table == "project" and VERSION_LINE.match(line):
            lines[index] = VERSION_LINE.sub(lambda m: f"{m['head']}{m['q']}{version}{m['q']}", line)
            hits += 1
    if hits != 1:
        raise DriftError(f'{path}: expected one `version = "..."` line in [project], found {hits}')
    return "".join(lines)


def _rewrite_pins(text: str, version: str, repo_dists: set[str]) -> str:
    """Rewrite the specifiers of every quoted requirement on an in-repo package that has some."""
    for quote in ('"', "'"):
        literal = re.compile(
            rf"{quote}(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?P<extras>\[[^\]{quote}]*\])?"
            rf"\s*(?P<spec>(?:===|~=|==|!=|<=|>=|<|>)[^;{quote}]*?)\s*(?P<marker>;[^{quote}]*)?{quote}"
        )

        def replace(match: re.Match[str]) -> str:
            if canonical_name(match["name"]) not in repo_dists:
                return match[0]
            start, end = match.span("spec")
            offset = match.start()
            whole = match[0]
            return whole[: start - offset] + pin(version) + whole[end - offset :]

        text = literal.sub(replace, text)
    return text


def _read(path: Path) -> str:
    with path.open(encoding="utf-8", newline="") as f:  # keep the file's line endings
        return f.read()


def write_atomically(path: Path, text: str) -> None:
    """Write via a temp file in the same directory and os.replace, so no reader sees half a file."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def bump(packages_dir: Path, version: str) -> list[Path]:
    """Set every package's version and every in-repo pin to `version`; returns the changed files.

    All new texts are computed and parsed before the first file is written, so a file that cannot
    be bumped leaves the whole tree untouched.
    """
    parse_version(version)
    paths = find_pyprojects(packages_dir)
    if not paths:
        raise DriftError(f"{packages_dir}: no */pyproject.toml found")
    repo_dists = _repo_dists({path: _load(path) for path in paths})
    updates = {}
    for path in paths:
        old = _read(path)
        new = _rewrite_pins(_rewrite_version_line(old, version, path), version, repo_dists)
        try:
            parsed = tomllib.loads(new)
        except tomllib.TOMLDecodeError as error:  # a bug of this tool; never write such a file
            raise DriftError(f"{path}: rewriting would produce invalid TOML ({error})") from error
        if parsed["project"]["version"] != version:
            raise DriftError(f"{path}: rewriting did not set the [project] version")
        if new != old:
            updates[path] = new
    for path, new in updates.items():
        write_atomically(path, new)
    return list(updates)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bump_version.py",
        description=(
            "All packages share one version (lockstep), and every requirement on an in-repo\n"
            "package (hpc-comm, or a sibling through an extra) is pinned to that minor:\n"
            ">=X.Y.Z,<X.(Y+1). Given VERSION, rewrite the `version` line of every\n"
            "packages/*/pyproject.toml and every such pin. With --check, change nothing:\n"
            "list the drift and exit 1, or exit 0 when there is none."
        ),
        epilog=(
            "examples:\n"
            "  python tools/bump_version.py 0.2.0       bump every package to 0.2.0\n"
            "  python tools/bump_version.py --check     exit 1 and list drift, exit 0 if none\n"
            "  python tools/bump_version.py --check 0.2.0   also require version 0.2.0"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "version", nargs="?", metavar="VERSION", type=_version_arg, help="new version, X.Y.Z"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="report drift from hpc-comm's version (or from VERSION, if given) instead of bumping",
    )
    parser.add_argument(
        "--packages-dir",
        type=Path,
        default=DEFAULT_PACKAGES_DIR,
        metavar="DIR",
        help="folder holding one folder per package (default: %(default)s)",
    )
    return parser


def _version_arg(text: str) -> str:
    try:
        parse_version(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.check and args.version is None:
        parser.error("give the VERSION to bump to, or --check")
    if not args.packages_dir.is_dir():
        parser.error(f"--packages-dir {args.packages_dir}: not a directory")
    try:
        if not args.check:
            for path in bump(args.packages_dir, args.version):
                print(f"updated {_display(path, args.packages_dir)}")
        drift = check(args.packages_dir, expected=args.version)
    except DriftError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if drift:
        print(f"version drift in {len(drift)} place(s):", file=sys.stderr)
        for line in drift:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"{len(find_pyprojects(args.packages_dir))} packages in lockstep with {REFERENCE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
