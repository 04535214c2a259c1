"""mkdocs hook: one API reference page per package, generated from the source tree at build time.

Each page lists the package's public modules (no part of the dotted path starts with "_"; the
CLI modules are documented by their ``--help``), so a module added to a package appears on the
site without anyone editing the docs.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
# distribution name -> import name, from the layout packages/<dist>/src/<import>/
PACKAGES = {
    dist.name: src.name
    for dist in sorted((ROOT / "packages").iterdir())
    for src in sorted((dist / "src").glob("*"))
    if (src / "__init__.py").exists()
}
SKIP = {"cli", "__main__"}


def public_modules(dist: str, package: str) -> list[str]:
    """Dotted names of the public modules of ``package``, the package itself first."""
    src = ROOT / "packages" / dist / "src"
    names = []
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts[-1] in SKIP or any(p.startswith("_") for p in parts[1:]):
            continue
        if not all(
            (d / "__init__.py").exists() for d in path.parents if d.is_relative_to(src / package)
        ):
            continue  # not importable: a folder without __init__.py
        names.append(".".join(parts))
    return sorted(names, key=lambda n: (n != package, n))


def page(dist: str, package: str) -> str:
    lines = [
        f"# `{package}` API reference",
        "",
        f"Every public module of the `{dist}` distribution, from its docstrings. "
        f"The guide is [{dist}](../{dist}.md).",
        "",
    ]
    for name in public_modules(dist, package):
        lines += [f"::: {name}", "    options:", "      show_submodules: false", ""]
    return "\n".join(lines)


def on_files(files, config):
    for dist, package in PACKAGES.items():
        files.append(File.generated(config, f"api/{dist}.md", content=page(dist, package)))
    return files
