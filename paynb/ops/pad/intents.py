"""Intents of the PAD credit flow in paynb's ledger (:mod:`paynb.jobs.ledger`): what an apply is about to
do and how far it got. States: ``pending`` (about to post) -> ``sent`` (the memo exists in CFS) ->
``confirmed`` (pay-db committed); ``failed``/``abandoned`` are final states set by hand.

The credit flow never depends on the ledger alone for safety: the memo is also found in CFS by its key,
and the pay-db rows by ``credits.details``. The ledger says how far a run got and keeps the evidence.

Example::

    record_intent("pcr-1a2b", {"invoice_id": 10, "amount": "1.00"})
    mark_intent("pcr-1a2b", SENT, credit_memo_number="900001")
    get_intent("pcr-1a2b").state               # 'sent'
"""

from __future__ import annotations

from typing import Any

from paynb.jobs import ledger
from paynb.jobs.ledger import Intent
from paynb.settings import Settings

PENDING, SENT, CONFIRMED = "pending", "sent", "confirmed"

__all__ = ["CONFIRMED", "PENDING", "SENT", "Intent", "get_intent", "mark_intent", "record_intent"]


def record_intent(
    key: str, payload: Any, *, settings: Settings | None = None, run_id: str | None = None
) -> Intent:
    """Note that ``key`` is about to happen (``pending``). Same key and payload again returns the existing
    intent; a different payload under the same key is refused (InputError)."""
    return ledger.record_intent(key, payload, run_id=run_id, settings=settings)


def get_intent(key: str, *, settings: Settings | None = None) -> Intent | None:
    return ledger.get_intent(key, settings=settings)


def mark_intent(key: str, state: str, *, settings: Settings | None = None, **evidence: Any) -> Intent:
    """Move the intent to ``state`` and append ``evidence`` to its history."""
    return ledger.mark_intent(key, state, settings=settings, **evidence)
