"""Import direction: every import in paynb/ (module level or inside a function; not ``TYPE_CHECKING``) points
down the layers, and the sandbox and the ops areas never import each other.

    core (settings, errors, enums, ...) <- adapters (db, cfs, store, formats, output) <- context
        <- ledger <- fixes <- ops/<area>, jobs, sandbox <- cli
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "paynb"

CORE = 0
ADAPTERS = 1
CONTEXT = 2
LEDGER = 3
FIXES = 4
AREAS = 5
CLI = 6

# the first matching prefix decides; a module under no prefix is a failure (add it here, at its layer)
LAYERS: tuple[tuple[str, int], ...] = (
    ("paynb.cli", CLI),
    ("paynb.ops", AREAS),
    ("paynb.jobs", AREAS),
    ("paynb.sandbox.generator", AREAS),  # core + one module per scenario family
    ("paynb.sandbox", AREAS),
    ("paynb.fixes", FIXES),
    ("paynb.ledger", LEDGER),
    ("paynb.context", CONTEXT),
    ("paynb.db", ADAPTERS),
    ("paynb.dw", ADAPTERS),
    ("paynb.cfs", ADAPTERS),
    ("paynb.store", ADAPTERS),
    ("paynb.formats", ADAPTERS),
    ("paynb.output", ADAPTERS),
    ("paynb.exports", ADAPTERS),
    ("paynb.settings", CORE),
    ("paynb.secrets", CORE),
    ("paynb.errors", CORE),
    ("paynb.enums", CORE),
    ("paynb.ids", CORE),
    ("paynb.timez", CORE),
    ("paynb.aging", CORE),
    ("paynb.plan", CORE),
    ("paynb.canonical", CORE),
    ("paynb.files", CORE),
    ("paynb.extras", CORE),
    ("paynb.bundled", CORE),
    ("paynb.headless", CORE),
    ("paynb", CORE),  # the package itself (its version)
)
NAMES = dict(enumerate(("core", "adapters", "context", "ledger", "fixes", "ops/jobs/sandbox", "cli")))
APART = ("paynb.sandbox", "paynb.ops")  # same layer, but neither may import the other

# imports known to point the wrong way, each with who removes it; a fixed one may simply be deleted here
KNOWN: set[tuple[str, str]] = set()


def layer_of(module: str) -> int | None:
    for prefix, layer in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def imports(path: Path) -> Iterator[tuple[str, int]]:
    """(imported paynb module, line) for every runtime import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = _type_checking_only(tree)
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            # `from paynb import db` imports the module paynb.db
            targets = [f"{base}.{a.name}" for a in node.names] if base == "paynb" else [base]
        else:
            continue
        for target in targets:
            if target == "paynb" or target.startswith("paynb."):
                yield target, node.lineno


def violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = module_name(path)
        mine = layer_of(source)
        if mine is None:
            found.append(f"{source}: not placed in a layer (add it to LAYERS in tests/test_layers.py)")
            continue
        for target, line in imports(path):
            theirs = layer_of(target)
            if (source, target) in KNOWN:
                continue
            where = f"{path.relative_to(PACKAGE.parent)}:{line}"
            if theirs is not None and theirs > mine:
                found.append(f"{where}: {source} ({NAMES[mine]}) imports {target} ({NAMES[theirs]})")
            a, b = (layer_of_apart(source), layer_of_apart(target))
            if a and b and a != b:
                found.append(
                    f"{where}: {source} imports {target} (the sandbox and ops never import each other)"
                )
    return found


def layer_of_apart(module: str) -> str | None:
    return next((p for p in APART if module == p or module.startswith(p + ".")), None)


def test_imports_point_down_the_layers() -> None:
    assert violations() == []


def test_the_walker_sees_upward_and_sideways_imports(tmp_path: Path, monkeypatch) -> None:
    fake = tmp_path / "paynb"
    (fake / "ops").mkdir(parents=True)
    (fake / "sandbox").mkdir()
    (fake / "db.py").write_text("def f():\n    from paynb.ops import stale\n")
    (fake / "sandbox" / "x.py").write_text("from paynb.ops.stale import age_buckets\n")
    (fake / "ops" / "y.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from paynb.cli import main\nfrom .. import db\n"
    )
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    found = violations()
    assert any("paynb/db.py:2" in v and "(adapters) imports paynb.ops" in v for v in found)
    assert any("paynb/sandbox/x.py:1" in v and "never import each other" in v for v in found)
    assert not any("paynb/ops/y.py" in v for v in found)  # TYPE_CHECKING and a downward relative import
