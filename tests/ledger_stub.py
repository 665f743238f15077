"""Until ``paynb.ledger`` (the ledger-protocol branch) is merged, :func:`paynb.fixes.apply_fix` has no ledger
to write to. The ``fix_ledger`` fixture records the apply entries in a list instead, and steps aside as soon
as the real module provides ``record_apply_started``."""

from __future__ import annotations

import importlib
import itertools
import sys
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class _Started:
    kind: str
    plan_sha256: str
    apply_id: str
    seq: int


@dataclass
class StubLedger:
    entries: list[dict[str, Any]] = field(default_factory=list)
    real: bool = False

    def kinds(self) -> list[tuple[str, str]]:
        return [(e["event"], e["kind"]) for e in self.entries]


def _real_ledger() -> Any | None:
    try:
        module = importlib.import_module("paynb.ledger")
    except ImportError:
        return None
    if getattr(module, "PAYNB_TEST_STUB", False):
        return None
    return module if hasattr(module, "record_apply_started") else None


def has_real_ledger() -> bool:
    return _real_ledger() is not None


@pytest.fixture
def fix_ledger(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubLedger]:
    if _real_ledger() is not None:
        yield StubLedger(real=True)
        return
    book = StubLedger()
    seq = itertools.count(1)
    stub = types.ModuleType("paynb.ledger")

    def record_apply_started(kind: str, plan: Any, *, env: Any = None, ticket: str = "", reason: str = ""):
        started = _Started(kind, plan.sha256, f"apply-{uuid.uuid4().hex[:12]}", next(seq))
        book.entries.append({"event": "apply-started", "kind": kind, "apply_id": started.apply_id,
                             "plan_sha256": plan.sha256, "ticket": ticket, "reason": reason})  # fmt: skip
        return started

    def record_apply_finished(started: _Started, outcome: Any, verification: Any, *, env: Any = None):
        entry = types.SimpleNamespace(seq=next(seq))
        book.entries.append({"event": "apply-finished", "kind": started.kind, "apply_id": started.apply_id,
                             "status": outcome.status, "rows_affected": outcome.rows_affected})  # fmt: skip
        return entry

    def record_apply_failed(started: _Started, exc: BaseException, *, env: Any = None):
        book.entries.append({"event": "apply-failed", "kind": started.kind, "apply_id": started.apply_id,
                             "error": type(exc).__name__})  # fmt: skip

    stub.PAYNB_TEST_STUB = True
    stub.record_apply_started = record_apply_started
    stub.record_apply_finished = record_apply_finished
    stub.record_apply_failed = record_apply_failed
    monkeypatch.setitem(sys.modules, "paynb.ledger", stub)
    import paynb

    monkeypatch.setattr(paynb, "ledger", stub, raising=False)
    yield book


@pytest.fixture(autouse=True)
def _ledger_until_merged(request: pytest.FixtureRequest) -> None:
    """Every apply goes through ``apply_fix``; until ``paynb.ledger`` exists, give each test the stub."""
    if _real_ledger() is None:
        request.getfixturevalue("fix_ledger")
