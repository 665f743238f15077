"""The notebooks and templates that ship with paynb, wherever paynb is installed.

In the repository they live at the top of the checkout (``notebooks/``, ``templates/``: the source of truth);
a wheel carries them as the data packages ``paynb.notebooks`` and ``paynb.templates`` (see ``setup.py``),
read here through importlib.resources. An editable install or a plain checkout reads the checkout's folders.

Example::

    from paynb.bundled import packaged_notebook
    path = packaged_notebook("reports/stale_invoices.ipynb")
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path, PurePosixPath

from paynb.errors import InputError, PaynbError

KINDS = ("notebooks", "templates")
_CHECKOUT = Path(__file__).resolve().parent.parent


def bundled_root(kind: str) -> Path:
    """The folder holding the shipped ``notebooks`` or ``templates``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    try:
        # a wheel install is a real folder, so the Traversable is a Path (joinpath of a MultiplexedPath)
        root = importlib.resources.files(f"paynb.{kind}")
        marker = next(iter(root.iterdir()))
        return Path(str(marker)).parent
    except (ModuleNotFoundError, StopIteration):
        pass
    checkout = _CHECKOUT / kind
    if checkout.is_dir():
        return checkout
    raise PaynbError(
        f"the shipped {kind} are missing from this paynb install",
        hint="reinstall paynb from its wheel (pip install --force-reinstall paynb)",
    )


def list_notebooks() -> list[str]:
    """Every shipped notebook as ``area/name.ipynb``."""
    root = bundled_root("notebooks")
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.ipynb") if _visible(p, root))


def packaged_notebook(name: str) -> Path:
    """A shipped notebook by ``area/name[.ipynb]`` (a leading ``notebooks/`` is allowed)."""
    rel = PurePosixPath(name)
    if rel.parts and rel.parts[0] == "notebooks":
        rel = PurePosixPath(*rel.parts[1:])
    if rel.suffix != ".ipynb":
        rel = rel.with_name(rel.name + ".ipynb")
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise InputError("not a shipped notebook name", field="notebook")
    path = bundled_root("notebooks") / rel
    if not path.is_file():
        shipped = ", ".join(list_notebooks())
        raise InputError(f"no shipped notebook {rel} (shipped: {shipped})", field="notebook")
    return path


def template(kind: str) -> Path:
    """A shipped notebook template (``report``, ``datafix``)."""
    path = bundled_root("templates") / f"{kind}.ipynb"
    if not path.is_file():
        raise InputError(f"no template {kind!r}", field="kind")
    return path


def resolve_notebook(path: Path) -> Path:
    """``path`` when it exists here; else the shipped notebook of that name, so an installed paynb runs
    ``paynb run notebooks/reports/stale_invoices.ipynb`` from any folder."""
    if path.exists() or path.is_absolute():
        return path
    try:
        return packaged_notebook(path.as_posix())
    except InputError:
        return path  # the runner reports the missing file by its given name


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith((".", "_")) for part in path.relative_to(root).parts)
