"""Intents of the PAD credit flow in paynb's ledger: what an apply is about to do and how far it got.
States: ``pending`` (about to post) -> ``sent`` (the memo exists in CFS) -> ``confirmed`` (pay-db
committed); ``failed``/``abandoned`` are final states (``abandoned`` is what ``paynb pad credit resolve``
sets for a credit that never reached CFS).

The credit flow never depends on the ledger alone for safety: the memo is also found in CFS by its key,
and the pay-db rows by ``credits.details``. The ledger says how far a run got and keeps the evidence,
and an unfinished intent on an invoice blocks every other credit plan on that invoice.

The intents live in :mod:`paynb.ledger` (each step is a chain entry). This module adds what the credit
flow needs on top: the credit's states, and the unfinished intents of one invoice.

Example::

    record_intent("pcr-1a2b", {"invoice_id": 10, "amount": "1.00"})
    mark_intent("pcr-1a2b", SENT, credit_memo_number="900001")
    get_intent("pcr-1a2b").state               # 'sent'
    open_intents_for_invoice(10)               # [Intent(...)] while it is pending or sent
"""

from __future__ import annotations

import json
from typing import Any

from paynb import ledger
from paynb.ledger import Intent
from paynb.settings import Settings, get_settings

PENDING, SENT, CONFIRMED, ABANDONED = ledger.PENDING, ledger.SENT, ledger.CONFIRMED, ledger.ABANDONED
UNFINISHED = (PENDING, SENT)

__all__ = [
    "ABANDONED",
    "CONFIRMED",
    "PENDING",
    "SENT",
    "UNFINISHED",
    "Intent",
    "get_intent",
    "mark_intent",
    "open_intents_for_invoice",
    "record_intent",
]


def record_intent(
    key: str,
    payload: Any,
    *,
    settings: Settings | None = None,
    run_id: str | None = None,
    apply_id: str | None = None,
) -> Intent:
    """Note that ``key`` is about to happen (``pending``). Same key and payload again returns the existing
    intent; a different payload under the same key is refused (InputError)."""
    return ledger.record_intent(key, payload, run_id=run_id, apply_id=apply_id, settings=settings)


def get_intent(key: str, *, settings: Settings | None = None) -> Intent | None:
    return ledger.get_intent(key, settings=settings)


def mark_intent(
    key: str, state: str, *, settings: Settings | None = None, apply_id: str | None = None, **evidence: Any
) -> Intent:
    """Move the intent to ``state`` and append ``evidence`` to its history (and to the chain)."""
    return ledger.mark_intent(key, state, settings=settings, apply_id=apply_id, **evidence)


def open_intents_for_invoice(invoice_id: int, *, settings: Settings | None = None) -> list[Intent]:
    """PAD credit intents on ``invoice_id`` that are still ``pending`` or ``sent`` (a run stopped half-way).
    An absent ledger file means no intent was ever recorded here."""
    settings = settings or get_settings()
    if ledger.missing_local_ledger(settings) is not None:
        return []
    found = []
    for intent in ledger.open_ledger(settings).all_intents():
        payload = intent.payload
        if isinstance(payload, str):
            payload = json.loads(payload)
        if (
            intent.state in UNFINISHED
            and intent.key.startswith("pcr-")
            and isinstance(payload, dict)
            and payload.get("invoice_id") == int(invoice_id)
        ):
            found.append(intent)
    return found
