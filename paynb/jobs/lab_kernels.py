"""JupyterLab's kernels get what ``paynb run`` gives them: report kernels see the reader only.

``paynb lab`` starts the server with this kernel manager. When the server builds it (before any kernel or
terminal exists) it takes the writer URL out of the server's own environment and keeps it in memory, and
drops the admin URL. Each kernel then starts from that cleaned environment. A notebook whose metadata
says it is a data fix (``metadata.paynb.kind == "datafix"``, read from the file when its kernel starts)
gets the writer URL back. Every other kernel (reports, new notebooks, consoles) gets
``PAYNB_READ_ONLY_KERNEL=1``, so a writer URL in a ``.env`` file is ignored too. No kernel gets the admin
URL. Lab's terminals start from the cleaned environment as well. PostgreSQL's reader role is still what
stops a report from writing (docs/roles.md); this keeps the writer's password out of report kernels.

Lab loads this module by name (``--ServerApp.kernel_manager_class``); nothing else in paynb imports it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, MutableMapping
from typing import Any

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

from paynb.jobs.kernel_env import DATAFIX, notebook_kind, variables_holding
from paynb.settings import ADMIN_NAMES, NO_ADMIN_KERNEL, READ_ONLY_KERNEL, WRITER_NAMES

SESSION_NAME = "JPY_SESSION_NAME"  # jupyter_server puts the notebook's OS path here for each session


def take_writer_settings(environ: MutableMapping[str, str]) -> dict[str, str]:
    """Remove the writer and admin URLs from ``environ``; return the writer's variables (by name, and any
    other variable whose value holds the writer URL)."""
    writer = next((environ[name] for name in WRITER_NAMES if environ.get(name)), "")
    held = {name: environ[name] for name in variables_holding(environ, WRITER_NAMES, writer)}
    for name in (*held, *ADMIN_NAMES):
        environ.pop(name, None)
    return held


def read_notebook_kind(path: str | None) -> str:
    """``datafix`` or ``report``; anything unreadable is a report (the safe side)."""
    if not path or not path.endswith(".ipynb"):
        return "report"
    try:
        with open(path, encoding="utf-8") as fh:
            return notebook_kind(json.load(fh))
    except (OSError, ValueError, AttributeError):
        return "report"


def kernel_environment_for(
    environ: Mapping[str, str], held: Mapping[str, str], notebook: str | None
) -> dict[str, str]:
    """The environment for the kernel of ``notebook``: ``environ`` less the writer and admin URLs, plus
    the writer's variables (``held``) for a data fix, or the read-only flag for anything else."""
    env = {
        k: v for k, v in environ.items() if k not in held and k not in ADMIN_NAMES and k not in WRITER_NAMES
    }
    env[NO_ADMIN_KERNEL] = "1"
    if read_notebook_kind(notebook) == DATAFIX:
        env.pop(READ_ONLY_KERNEL, None)
        env.update(held)
    else:
        env[READ_ONLY_KERNEL] = "1"
    return env


class PaynbKernelManager(AsyncMappingKernelManager):
    """Lab's kernel manager under ``paynb lab``: per-notebook environments (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._writer_settings = take_writer_settings(os.environ)

    async def start_kernel(self, *, kernel_id: str | None = None, path: Any = None, **kwargs: Any) -> str:  # type: ignore[override]
        environ = kwargs.get("env") or dict(os.environ)
        kwargs["env"] = kernel_environment_for(environ, self._writer_settings, environ.get(SESSION_NAME))
        return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)


__all__ = ["PaynbKernelManager", "kernel_environment_for", "read_notebook_kind", "take_writer_settings"]
