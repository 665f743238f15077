"""Keep ``import jsonschema`` from compiling rfc3987-syntax's IRI grammars until one is needed.

When rfc3987-syntax is installed (JupyterLab's extras bring it), ``jsonschema._format`` imports it at
once, and that module builds some 35 Lark parsers at import: 0.7-0.9 s on the CI machine. No schema
paynb (or nbformat) validates uses the ``iri`` formats, yet every ``paynb run`` (nbformat imports
jsonschema), every CLI apply and the first ledger write in a kernel paid for it. Upstream knows
(python-jsonschema/jsonschema#1428); until a release loads it lazily, :func:`defer_iri_grammar`
puts a stand-in under the module's name. jsonschema's ``from rfc3987_syntax import is_valid_syntax``
gets a function that imports the real module on its first call; any other attribute imports it at
once. Either way the real module replaces the stand-in, so behaviour is unchanged, only later.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import Any

IRI_MODULE = "rfc3987_syntax"
_lock = threading.Lock()


class _DeferredModule(types.ModuleType):
    """Stands in for the IRI module until something reads from it."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):  # dunder probes (copy, pickle, inspect) must not trigger the import
            raise AttributeError(attr)
        return getattr(load_iri_module(), attr)


def load_iri_module() -> types.ModuleType:
    """The real IRI module, imported now if only the stand-in was there."""
    with _lock:
        current = sys.modules.get(IRI_MODULE)
        if isinstance(current, _DeferredModule):
            del sys.modules[IRI_MODULE]
            try:
                return importlib.import_module(IRI_MODULE)
            except BaseException:
                sys.modules[IRI_MODULE] = current
                raise
    return importlib.import_module(IRI_MODULE)


def _is_valid_syntax(*args: Any, **kwargs: Any) -> Any:
    return load_iri_module().is_valid_syntax(*args, **kwargs)


def defer_iri_grammar() -> bool:
    """Install the stand-in; True if it was installed.

    Does nothing when the module is not installed, or when it or jsonschema is already imported (then
    the cost is paid or someone relies on the module as it is)."""
    if IRI_MODULE in sys.modules or "jsonschema" in sys.modules:
        return False
    try:
        spec = importlib.util.find_spec(IRI_MODULE)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    stand_in = _DeferredModule(IRI_MODULE, "deferred by paynb.importcost until first use")
    stand_in.__spec__ = spec
    stand_in.is_valid_syntax = _is_valid_syntax  # type: ignore[attr-defined]
    sys.modules[IRI_MODULE] = stand_in
    return True
