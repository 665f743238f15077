"""One object for what an ops function needs from the outside world: settings, pay-db, CFS, stores.

Everything is built lazily, on first use, so a report that never calls CFS never needs CFS settings.
Ops functions take ``env: Env | None = None`` and call :func:`resolve_env`; notebooks and the CLI build
one ``Env`` and pass it along instead of a pack of ``settings=, engine=, cfs=, store=`` arguments.

Example::

    from paynb.context import Env
    env = Env.from_environment()
    with env.read() as conn:
        ...
    env.cfs.get_invoice(...)
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from paynb.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from paynb.cfs import CfsClient
    from paynb.store.base import Store


def current_operator() -> str:
    """Who is acting: ``PAYNB_OPERATOR`` when set, else the OS user."""
    explicit = os.environ.get("PAYNB_OPERATOR", "").strip()
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        return f"uid:{os.getuid()}"


@dataclass
class Env:
    """Settings plus lazily built connections. Pass ready-made parts to override (tests, benchmarks)."""

    settings: Settings = field(default_factory=get_settings)
    run_id: str | None = None
    operator: str = field(default_factory=current_operator)
    overrides: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_environment(cls, **overrides: Any) -> Env:
        return cls(settings=get_settings(), overrides=overrides)

    def _override(self, name: str) -> Any:
        return self.overrides.get(name)

    @cached_property
    def engine(self) -> Engine:
        """The read-only pay-db engine (the reader role)."""
        from paynb import db

        return self._override("engine") or db.create_engine(self.settings, run_id=self.run_id)

    @cached_property
    def write_engine(self) -> Engine:
        """The pay-db engine for applies (the writer role). Only :mod:`paynb.fixes` should use it."""
        from paynb import db

        return self._override("write_engine") or db.create_write_engine(self.settings, run_id=self.run_id)

    @cached_property
    def dw_engine(self) -> Engine:
        """The read-only data-warehouse engine (``PAYNB_DW_URL``)."""
        from paynb import dw

        return self._override("dw_engine") or dw.create_engine(self.settings, run_id=self.run_id or "adhoc")

    @cached_property
    def cfs(self) -> CfsClient:
        from paynb.cfs import CfsClient

        return self._override("cfs") or CfsClient(self.settings)

    @cached_property
    def cfs_fas(self) -> CfsClient:
        from paynb.cfs import CfsClient

        return self._override("cfs_fas") or CfsClient(self.settings, credential="FAS")

    def store(self, url: str) -> Store:
        """Any store by URL (``file://``, ``s3://``, ``gs://``)."""
        from paynb.store import open_store

        return open_store(url, self.settings)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        from paynb import db

        with db.read_connection(self.engine) as conn:
            yield conn


def resolve_env(env: Env | None = None, **overrides: Any) -> Env:
    """``env`` itself, or a fresh one from the environment. ``overrides`` that are not None win."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if env is None:
        settings = given.pop("settings", None) or get_settings()
        return Env(settings=settings, overrides=given)
    if given:
        settings = given.pop("settings", None) or env.settings
        return Env(
            settings=settings, run_id=env.run_id, operator=env.operator, overrides={**env.overrides, **given}
        )
    return env
