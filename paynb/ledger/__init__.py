"""paynb's audit backbone: one hash chain for runs, applies and exactly-once intents, anchored in the archive.

Every write paynb makes goes through :func:`paynb.fixes.apply_fix`, which records here:

* ``record_apply_started(kind, plan, env=, ticket=, reason=)`` before the first write,
* ``record_apply_finished(started, outcome, verification)`` or ``record_apply_failed(started, exc)``;

each also writes the chain head to the archive as a write-once anchor (:mod:`paynb.ledger.anchors`).
Calls out to other systems are journalled as intents (``record_intent`` / ``mark_intent`` /
``get_intent``); each intent step is a chain entry too. ``paynb run`` records ``run-started`` before its
kernel starts and the run record when it ends. ``paynb audit verify`` checks it all
(:func:`paynb.ledger.check.check_ledger`).

Example::

    from paynb import ledger
    ledger.record_intent("pcr-1a2b", {"invoice_id": 10, "amount": "1.00"})
    ledger.mark_intent("pcr-1a2b", ledger.SENT, credit_memo_number="900001")
    ledger.get_intent("pcr-1a2b").state        # 'sent'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from paynb.ledger.anchors import Anchor, archive_url, newest_anchor, write_anchor
from paynb.ledger.entries import (
    AnchoredEntry,
    ApplyStarted,
    current_run_id,
    record_apply_failed,
    record_apply_finished,
    record_apply_started,
    record_run_started,
    rows_affected_by_run,
    run_state,
)
from paynb.ledger.store import (
    FINAL_STATES,
    INTENT_STATES,
    ArchivedObject,
    Intent,
    Ledger,
    LedgerEntry,
    ledger_url,
    missing_local_ledger,
    open_ledger,
    scrub_secrets,
)
from paynb.settings import Settings

if TYPE_CHECKING:
    from paynb.context import Env

PENDING, SENT, CONFIRMED, FAILED, ABANDONED = INTENT_STATES


def _settings(settings: Settings | None, env: Env | None) -> Settings | None:
    return settings or (env.settings if env is not None else None)


def record_intent(
    key: str,
    payload: Any,
    *,
    run_id: str | None = None,
    apply_id: str | None = None,
    settings: Settings | None = None,
    env: Env | None = None,
) -> Intent:
    """Note that ``key`` is about to happen (``pending``). Same key and payload again returns the
    existing intent; a different payload under the same key is refused (InputError)."""
    return open_ledger(_settings(settings, env)).record_intent(key, payload, run_id=run_id, apply_id=apply_id)


def get_intent(key: str, *, settings: Settings | None = None, env: Env | None = None) -> Intent | None:
    return open_ledger(_settings(settings, env)).get_intent(key)


def mark_intent(
    key: str,
    state: str,
    *,
    settings: Settings | None = None,
    env: Env | None = None,
    apply_id: str | None = None,
    **evidence: Any,
) -> Intent:
    """Move the intent to ``state`` and append ``evidence`` to its history (and to the chain)."""
    return open_ledger(_settings(settings, env)).mark_intent(key, state, apply_id=apply_id, **evidence)


__all__ = [
    "ABANDONED",
    "CONFIRMED",
    "FAILED",
    "FINAL_STATES",
    "INTENT_STATES",
    "PENDING",
    "SENT",
    "Anchor",
    "AnchoredEntry",
    "ApplyStarted",
    "ArchivedObject",
    "Intent",
    "Ledger",
    "LedgerEntry",
    "archive_url",
    "current_run_id",
    "get_intent",
    "ledger_url",
    "mark_intent",
    "missing_local_ledger",
    "newest_anchor",
    "open_ledger",
    "record_apply_failed",
    "record_apply_finished",
    "record_apply_started",
    "record_intent",
    "record_run_started",
    "rows_affected_by_run",
    "run_state",
    "scrub_secrets",
    "write_anchor",
]
