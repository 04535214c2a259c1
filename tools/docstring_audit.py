"""List the public functions, classes, methods and properties of the suite that lack a docstring.

Public: defined in a module whose dotted path has no part starting with "_" (the CLI modules and
``__main__`` are documented by their ``--help``), with a name not starting with "_". A method
inherits its base class's docstring (``inspect.getdoc``), as the API site shows it.

    python tools/docstring_audit.py            # every package
    python tools/docstring_audit.py daso f3    # some
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the import name of every package: the one folder under packages/<dist>/src/
PACKAGES = [
    src.name
    for dist in sorted((ROOT / "packages").iterdir())
    for src in sorted((dist / "src").glob("*"))
    if (src / "__init__.py").exists()
]
SKIP_MODULES = ("cli", "__main__")


def public_modules(package: str) -> list:
    root = importlib.import_module(package)
    modules = [root]
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        parts = info.name.split(".")[1:]
        if any(p.startswith("_") for p in parts) or parts[-1] in SKIP_MODULES:
            continue
        modules.append(importlib.import_module(info.name))
    return modules


def _members(cls) -> list[tuple[str, object]]:
    out = []
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            out.append((name, member))
        elif isinstance(member, (staticmethod, classmethod)):
            out.append((name, member.__func__))
        elif inspect.isfunction(member):
            out.append((name, member))
    return out


def _doc(cls, name, member) -> str | None:
    if isinstance(member, property):
        if member.__doc__:
            return member.__doc__
        for base in cls.__mro__[1:]:
            inherited = vars(base).get(name)
            if isinstance(inherited, property) and inherited.__doc__:
                return inherited.__doc__
        return None
    return inspect.getdoc(getattr(cls, name))


def undocumented(package: str) -> list[str]:
    missing = []
    for module in public_modules(package):
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            where = f"{module.__name__}.{name}"
            if not (obj.__doc__ or "").strip():
                missing.append(where)
            if inspect.isclass(obj):
                missing += [f"{where}.{m}" for m, f in _members(obj) if not _doc(obj, m, f)]
    return missing


def main(argv: list[str]) -> int:
    names = argv or PACKAGES
    total = 0
    for package in names:
        missing = undocumented(package)
        total += len(missing)
        for where in missing:
            print(where)
    print(f"{total} public objects without a docstring", file=sys.stderr)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
