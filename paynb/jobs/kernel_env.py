"""What a notebook's kernel may see of pay-db: report kernels get the reader only.

A notebook is a data fix when its metadata says so (``metadata.paynb.kind == "datafix"``); only then does
its kernel inherit the writer URL (``PAYNB_DATABASE_WRITE_URL`` and its aliases). Every other kernel
loses those names, any other variable that holds the writer URL, and gets ``PAYNB_READ_ONLY_KERNEL=1``
so that paynb's settings ignore a writer URL found in a ``.env`` file too. PostgreSQL is what enforces
read-only (the reader role has no DML, docs/roles.md); this keeps the writer's password out of reports.
No kernel, data fix or not, gets the admin URL (``PAYNB_DATABASE_ADMIN_URL``, a table owner for ``paynb db``
maintenance on the command line only): it is removed the same way and ignored in ``.env``.

Example::

    env, drop = kernel_environment(nb, run_id, settings)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from paynb.settings import ADMIN_NAMES, NO_ADMIN_KERNEL, READ_ONLY_KERNEL, WRITER_NAMES, Settings

DATAFIX = "datafix"


def notebook_kind(nb: Mapping[str, Any]) -> str:
    """``datafix`` or ``report`` (the default), from ``metadata.paynb.kind``."""
    meta = (nb.get("metadata") or {}).get("paynb") or {}
    kind = meta.get("kind") if isinstance(meta, Mapping) else None
    return DATAFIX if kind == DATAFIX else "report"


def kernel_environment(
    nb: Mapping[str, Any], run_id: str, settings: Settings, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, str], set[str]]:
    """(variables to add, names to remove) for the kernel that runs ``nb``."""
    from paynb.jobs.runner import RUN_ID_ENV

    environ = os.environ if environ is None else environ
    add = {RUN_ID_ENV: run_id, NO_ADMIN_KERNEL: "1"}
    # by name only: where the reader URL is the admin's (a test cluster), a report must still get its reader
    drop = variables_holding(environ, ADMIN_NAMES, "")
    if notebook_kind(nb) == DATAFIX:
        return add, drop
    writer = settings.database_write_url.reveal() if settings.database_write_url else ""
    add[READ_ONLY_KERNEL] = "1"
    return add, drop | variables_holding(environ, WRITER_NAMES, writer)


def variables_holding(environ: Mapping[str, str], names: tuple[str, ...], url: str) -> set[str]:
    """The variables among ``names`` that are set, and any other variable whose value holds ``url``."""
    found = {name for name in names if name in environ}
    if url:
        found |= {name for name, value in environ.items() if url in value}
    return found
