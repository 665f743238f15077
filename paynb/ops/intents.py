"""Intents for the writes a fix makes outside pay-db (object stores), recorded before the write.

A fix wraps each store write in :func:`record_intent`; the intent goes to the apply's ledger journal
(``FixRun.intent``) before the write and is closed after it, so a killed apply leaves a trace of what it
was about to do and a resumed one can tell "written" from "not written" by looking at the object.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def record_intent(run: Any, action: str, target: str, **detail: Any) -> Iterator[Any]:
    """Record ``action`` on ``target`` in the apply's intent journal around the block."""
    hook = getattr(run, "intent", None)
    if hook is None:  # a FixRun without a journal (the protocol skeleton): nothing to record
        yield None
        return
    with hook(action, target, **detail) as intent:
        yield intent
