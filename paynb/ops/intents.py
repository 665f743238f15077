"""Exactly-once writes outside pay-db (object stores), journalled as ledger intents.

:func:`write_object_once` records the intent (``pending``) before the write and marks it ``confirmed``
after, both in the hash chain (``FixRun.intent`` / ``FixRun.mark``). The key names the object and its
sha256, so a killed apply that is run again finds the intent, looks at the object, and either confirms
what the first attempt wrote or writes it then: never twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paynb.ledger import CONFIRMED, FINAL_STATES


def write_object_once(
    run: Any, url: str, digest: str, *, present: Callable[[], bool], write: Callable[[], None]
) -> bool:
    """Write the object at ``url`` (planned ``digest``) unless it is there already. True if this call wrote."""
    key = f"store.put:{url}#{digest[:16]}"
    intent = run.intent(key, {"action": "store.put", "object": url, "sha256": digest})
    if present():
        if intent.state not in FINAL_STATES:
            run.mark(key, CONFIRMED, found_by=run.apply_id)
        return False
    write()
    run.committed(f"wrote {url} (sha256 {digest[:12]}…)")
    if intent.state not in FINAL_STATES:
        run.mark(key, CONFIRMED, written_by=run.apply_id)
    return True
