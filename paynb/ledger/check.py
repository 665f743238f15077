"""Check the chain itself: every entry's hash, its link to the one before, the intents table against the
intent entries, and the tail against the newest anchor in the archive.

States, worst last (the same scale as ``paynb audit verify``): ``ok``, ``missing`` (something cannot be
checked: no anchor, no key), ``chain_broken`` (an entry is gone or out of place), ``tampered`` (an
entry or intent row does not match its hash or the chain).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from paynb.canonical import sha256_hex
from paynb.errors import PaynbError
from paynb.ledger.anchors import archive_url, newest_anchor
from paynb.ledger.entries import validate_entry
from paynb.ledger.store import KEYED_MODE, PLAIN_MODE, ChainKey, Ledger, LedgerEntry, chain_key
from paynb.settings import Settings

STATES = ("ok", "missing", "chain_broken", "tampered")  # in rising severity


def worst(states: list[str]) -> str:
    return max(states, key=STATES.index) if states else "ok"


@dataclass
class ChainReport:
    """Problems found, by the chain position they concern (``None``: the ledger as a whole)."""

    mode: str
    anchor: str
    entries: list[LedgerEntry] = field(default_factory=list, repr=False)
    by_seq: dict[int, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    by_intent: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    overall: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.overall or any(self.by_seq.values()) or any(self.by_intent.values()))

    def state(self) -> str:
        every = [s for s, _ in self.overall]
        every += [s for found in self.by_seq.values() for s, _ in found]
        every += [s for found in self.by_intent.values() for s, _ in found]
        return worst(every)


def check_ledger(
    ledger: Ledger,
    settings: Settings,
    *,
    validate_run: Callable[[dict[str, Any]], Any] | None = None,
    anchors: bool = True,
) -> ChainReport:
    """Check every entry, the intents and the newest anchor. ``validate_run`` checks a finished run's
    record against its schema (it lives with the runner)."""
    entries = ledger.entries()
    key = chain_key(settings)
    report = ChainReport(mode=_mode(entries, key), anchor="not checked", entries=entries)
    previous: LedgerEntry | None = None
    keyed_seen = False
    for entry in entries:
        found = report.by_seq[entry.seq]
        keyed_seen = _check_hash(entry, key, keyed_seen, found)
        _check_link(entry, previous, found)
        _check_record(entry, validate_run, found)
        previous = entry
    _check_intents(ledger, entries, report)
    if anchors:
        _check_anchor(ledger, settings, entries, report)
    return report


def _mode(entries: list[LedgerEntry], key: ChainKey) -> str:
    modes = {e.hash_mode for e in entries}
    keyed = sorted(m for m in modes if m.startswith(KEYED_MODE))
    if not keyed:
        text = "sha256 (unkeyed: whoever can edit the ledger could re-chain it; anchors still catch that)"
    elif PLAIN_MODE in modes:
        text = f"mixed: sha256 entries, then HMAC-SHA256 (key id {', '.join(m.split(':')[1] for m in keyed)})"
    else:
        text = f"HMAC-SHA256 (key id {', '.join(m.split(':')[1] for m in keyed)})"
    if keyed and not key.secret:
        text += "; PAYNB_LEDGER_KEY is not set, so keyed hashes cannot be checked"
    return text


def _check_hash(entry: LedgerEntry, key: ChainKey, keyed_seen: bool, found: list[tuple[str, str]]) -> bool:
    mode = entry.hash_mode
    if mode == PLAIN_MODE:
        if keyed_seen:
            found.append(
                ("tampered", f"entry {entry.seq} is unkeyed after keyed entries (a re-chained tail)")
            )
        elif sha256_hex(entry.raw_record) != entry.record_hash:
            found.append(("tampered", f"entry {entry.seq}'s record does not match its hash"))
        return keyed_seen
    if not mode.startswith(f"{KEYED_MODE}:"):
        found.append(("tampered", f"entry {entry.seq} names an unknown hash mode"))
        return keyed_seen
    key_id = mode.split(":", 1)[1]
    if not key.secret:
        found.append(
            ("missing", f"entry {entry.seq} is keyed (key id {key_id}); set PAYNB_LEDGER_KEY to check it")
        )
    elif key.key_id != key_id:
        found.append(
            ("missing", f"entry {entry.seq} is keyed with key id {key_id}, not the configured {key.key_id}")
        )
    elif key.digest(entry.raw_record) != entry.record_hash:
        found.append(("tampered", f"entry {entry.seq}'s record does not match its keyed hash"))
    return True


def _check_link(entry: LedgerEntry, prev: LedgerEntry | None, found: list[tuple[str, str]]) -> None:
    inside = entry.record.get("previous_record_hash") if isinstance(entry.record, dict) else None
    if inside != entry.previous_record_hash:
        found.append(
            ("tampered", f"entry {entry.seq}'s previous_record_hash differs from the one in its record")
        )
    expected = prev.record_hash if prev else None
    if entry.previous_record_hash != expected:
        what = f"entry {prev.seq}" if prev else "nothing (it is the first entry)"
        found.append(
            ("chain_broken", f"entry {entry.seq} does not follow {what}: an entry was deleted or altered")
        )
    elif prev is not None and entry.seq != prev.seq + 1:
        found.append(("chain_broken", f"ledger positions {prev.seq + 1}..{entry.seq - 1} are missing"))
    elif prev is None and entry.seq != 1:
        found.append(("chain_broken", f"ledger positions 1..{entry.seq - 1} are missing"))


def _check_record(
    entry: LedgerEntry, validate_run: Callable[[dict[str, Any]], Any] | None, found: list[tuple[str, str]]
) -> None:
    rec = entry.record
    if not isinstance(rec, dict):
        found.append(("tampered", f"entry {entry.seq} is not a JSON object"))
        return
    if "entry" not in rec:  # a finished run's record
        if (entry.kind, entry.event) != ("run", "finished") or rec.get("run_id") != entry.ref:
            found.append(("tampered", f"entry {entry.seq}'s columns do not match its run record"))
        elif rec.get("status") != entry.status:
            found.append(("tampered", f"entry {entry.seq}'s status column differs from its record"))
        if validate_run is not None:
            try:
                validate_run(rec)
            except PaynbError as err:
                found.append(("tampered", f"entry {entry.seq}: {str(err).splitlines()[0]}"))
        return
    try:
        validate_entry(rec)
    except PaynbError as err:
        found.append(("tampered", f"entry {entry.seq}: {str(err).splitlines()[0]}"))
        return
    kind = rec["entry"]
    ref = {"run-started": rec.get("run_id"), "intent": rec.get("key")}.get(kind, rec.get("apply_id"))
    expected_event = rec.get("state") if kind == "intent" else kind.split("-", 1)[1]
    if kind.split("-")[0] != entry.kind or expected_event != entry.event or ref != entry.ref:
        found.append(("tampered", f"entry {entry.seq}'s columns do not match its record"))


def _check_intents(ledger: Ledger, entries: list[LedgerEntry], report: ChainReport) -> None:
    chained: dict[str, list[LedgerEntry]] = defaultdict(list)
    for entry in entries:
        if entry.kind == "intent" and isinstance(entry.record, dict):
            chained[str(entry.record.get("key"))].append(entry)
    rows = {intent.key: intent for intent in ledger.all_intents()}
    for key, intent in rows.items():
        found = report.by_intent[key]
        steps = chained.get(key, [])
        if not steps:
            found.append(
                ("tampered", f"intent {key} has no entry in the chain (added or rewritten outside it)")
            )
            continue
        payload = ledger.intent_payload_sha256(key)
        if any(s.record.get("payload_sha256") != payload for s in steps):
            found.append(("tampered", f"intent {key}'s payload differs from the one the chain recorded"))
        if intent.state != steps[-1].record.get("state"):
            found.append(
                (
                    "tampered",
                    f"intent {key} is {intent.state} but the chain last recorded {steps[-1].record.get('state')}",
                )
            )
        history = [(h.get("state"), _canon(h.get("evidence", {}))) for h in intent.history]
        recorded = [(s.record.get("state"), _canon(s.record.get("evidence", {}))) for s in steps]
        if history != recorded:
            found.append(("tampered", f"intent {key}'s history differs from its {len(steps)} chain entries"))
    for key in chained:
        if key not in rows:
            report.by_intent[key].append(
                ("tampered", f"intent {key} is in the chain but its row was deleted")
            )


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _check_anchor(
    ledger: Ledger, settings: Settings, entries: list[LedgerEntry], report: ChainReport
) -> None:
    newest = newest_anchor(ledger, settings)
    for problem in newest.problems:
        report.overall.append(("missing", problem))
    doc = newest.document
    anchored_kinds = any(e.event == "started" for e in entries)
    if doc is None:
        report.anchor = f"none in {archive_url(settings)}"
        if anchored_kinds and not newest.problems:
            report.overall.append(
                (
                    "missing",
                    f"no anchor of ledger {ledger.ledger_id} in {archive_url(settings)}: "
                    "the tail of the chain cannot be checked",
                )
            )
        return
    seq = int(doc.get("seq", 0))
    report.anchor = f"seq {seq} at {newest.source}"
    head = entries[-1].seq if entries else 0
    at = next((e for e in entries if e.seq == seq), None)
    if at is None:
        if head < seq:
            report.overall.append(
                (
                    "chain_broken",
                    f"the newest anchor ({newest.source}) names entry {seq}, but "
                    f"the ledger ends at {head}: entries {head + 1}..{seq} were deleted",
                )
            )
        else:
            report.overall.append(("chain_broken", f"entry {seq}, named by the newest anchor, is missing"))
    elif at.record_hash != doc.get("record_hash") or at.hash_mode != doc.get("hash_mode"):
        report.overall.append(("tampered", f"entry {seq} differs from its anchor in {newest.source}"))
