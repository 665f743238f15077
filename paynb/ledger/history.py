"""What happened, from the chain: one row per run and per apply (``paynb runs list``), one apply or run in
full (``paynb runs show``).

A run is its ``run-started`` entry plus its record; an apply is ``apply-started`` plus ``apply-finished``
or ``apply-failed``. Something that started and never ended is ``running`` while its process lives on
this host, ``killed`` when it does not, and ``unknown`` when it ran on another host.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from paynb.errors import InputError
from paynb.ledger.entries import run_state
from paynb.ledger.store import Ledger, LedgerEntry

_AGO = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class Activity:
    """One run or apply as ``runs list`` shows it (``to_dict`` is its JSON)."""

    id: str
    type: str  # run | apply
    started_at: str
    what: str  # notebook path, or the fix kind
    status: str
    rows_affected: int | None
    duration_ms: int | None
    by: str
    run_id: str | None
    detail: str
    entries: tuple[LedgerEntry, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "started_at": self.started_at,
            "what": self.what,
            "status": self.status,
            "rows_affected": self.rows_affected,
            "duration_ms": self.duration_ms,
            "by": self.by,
            "run_id": self.run_id,
            "detail": self.detail,
            "seqs": [e.seq for e in self.entries],
        }


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``2026-03-01``, ``2026-03-01T08:00`` (UTC unless it says otherwise) or ``30m`` / ``12h`` / ``7d`` /
    ``2w`` ago."""
    now = now or datetime.now(UTC)
    raw = text.strip()
    ago = _AGO.match(raw)
    if ago:
        return now - timedelta(**{_UNITS[ago[2]]: int(ago[1])})
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise InputError(
            "give a date (2026-03-01), a time (2026-03-01T08:00) or an age (12h, 7d)", field="since"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def activities(ledger: Ledger) -> list[Activity]:
    """Every run and apply in the ledger, newest first."""
    grouped: dict[str, list[LedgerEntry]] = {}
    for entry in ledger.entries():
        if entry.kind in ("run", "apply"):
            grouped.setdefault(entry.ref, []).append(entry)
    notebooks = {ref: group[0].subject for ref, group in grouped.items() if group[0].kind == "run"}
    found = [_activity(ref, group, notebooks) for ref, group in grouped.items()]
    return sorted(found, key=lambda a: (a.started_at, a.entries[0].seq), reverse=True)


def select(
    found: Iterable[Activity],
    *,
    kind: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    notebook: str | None = None,
    applies_only: bool = False,
    limit: int | None = None,
    notebooks: dict[str, str] | None = None,
    until: datetime | None = None,
    by: str | None = None,
    runs_only: bool = False,
) -> list[Activity]:
    """Filter ``activities``. ``kind``: ``run``, ``apply`` or a fix kind; ``notebook``: part of the
    notebook path (an apply matches through the run it happened in); ``until``: started before it;
    ``by``: part of the operator's name (case-insensitive)."""
    out = []
    for item in found:
        if applies_only and item.type != "apply":
            continue
        if runs_only and item.type != "run":
            continue
        if kind and kind not in (item.type, item.what):
            continue
        if status and item.status != status:
            continue
        if since and _when(item.started_at) < since:
            continue
        if until and _when(item.started_at) >= until:
            continue
        if by and by.lower() not in item.by.lower():
            continue
        if notebook:
            path = item.what if item.type == "run" else (notebooks or {}).get(item.run_id or "", "")
            if notebook not in path:
                continue
        out.append(item)
        if limit and len(out) >= limit:
            break
    return out


def notebooks_by_run(found: Iterable[Activity]) -> dict[str, str]:
    return {a.id: a.what for a in found if a.type == "run"}


def _when(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _activity(ref: str, group: list[LedgerEntry], notebooks: dict[str, str]) -> Activity:
    first, last = group[0], group[-1]
    if first.kind == "run":
        return _run(ref, first, last)
    rec = last.record
    begun = first.record
    if last.event == "started":
        status = run_state({**begun, "host": (begun.get("operator") or {}).get("host")})
        detail = "started, never finished"
    elif last.event == "failed":
        status = "failed"
        error = rec.get("error") or {}
        committed = rec.get("committed") or []
        detail = f"{error.get('type')}: {error.get('message')}" + (
            f" (after committing: {'; '.join(str(c.get('what')) for c in committed)})" if committed else ""
        )
    else:
        status = str(rec.get("outcome"))
        detail = f"ticket {rec.get('ticket') or '-'}: {rec.get('reason') or ''}".strip()
    operator = begun.get("operator") or {}
    return Activity(
        id=ref,
        type="apply",
        started_at=str(begun.get("started_at", first.created_at)),
        what=first.subject,
        status=status,
        rows_affected=rec.get("rows_affected") if last.event == "finished" else None,
        duration_ms=rec.get("duration_ms"),
        by=str(operator.get("name", "")),
        run_id=first.run_id,
        detail=detail,
        entries=tuple(group),
    )


def _run(ref: str, first: LedgerEntry, last: LedgerEntry) -> Activity:
    rec = last.record
    if last.event == "started":
        return Activity(
            ref,
            "run",
            str(rec.get("started_at")),
            first.subject,
            run_state(rec),
            None,
            None,
            str(rec.get("actor", "")),
            ref,
            "started, never finished",
            (first,),
        )
    failure = rec.get("failure_detail") or {}
    archive = (rec.get("archive") or {}).get("state", "none")
    detail = failure.get("message") or f"archive {archive}"
    entries = (first, last) if first is not last else (last,)
    return Activity(
        ref,
        "run",
        str(rec.get("started_at")),
        first.subject,
        str(rec.get("status")),
        rec.get("rows_affected"),
        rec.get("duration_ms"),
        str(rec.get("actor", "")),
        ref,
        detail,
        entries,
    )


def find_activity(ledger: Ledger, prefix: str) -> Activity:
    """The run or apply an id (or 8+ character prefix) names."""
    group = ledger.find(prefix)
    ref = group[0].ref
    found = [e for e in ledger.entries(ref=ref) if e.kind in ("run", "apply")]
    runs = {ref: found[0].subject} if found[0].kind == "run" else {}
    return _activity(ref, found, runs)
