"""Packaging glue that pyproject.toml cannot express: ``notebooks/`` and ``templates/`` stay at the top of the
checkout (their source of truth) and ship inside the wheel as the data packages ``paynb.notebooks`` and
``paynb.templates``, which :mod:`paynb.bundled` reads through importlib.resources. Everything else about
the project is in pyproject.toml."""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
BUNDLED = ("notebooks", "templates")
DATA_FILES = ["*.ipynb", "*.yaml", "*.md"]
PAYNB_DATA = ["**/*.sql", "**/*.csv", "**/*.json", "**/*.yaml", "**/*.ipynb", "**/*.md", "py.typed"]


def bundled_packages() -> dict[str, str]:
    """``paynb.notebooks.reports`` -> ``notebooks/reports`` for every folder under the bundled roots."""
    mapping = {}
    for top in BUNDLED:
        for folder in sorted([ROOT / top, *(ROOT / top).rglob("*")]):
            rel = folder.relative_to(ROOT)
            if folder.is_dir() and not any(p.startswith((".", "_")) for p in rel.parts):
                mapping["paynb." + ".".join(rel.parts)] = rel.as_posix()
    return mapping


bundled = bundled_packages()
setup(
    packages=[*find_packages(include=["paynb", "paynb.*"]), *bundled],
    package_dir=bundled,
    package_data={"paynb": PAYNB_DATA, **{name: DATA_FILES for name in bundled}},
)
