"""``verify``: check the ledger's one chain, then re-read every archived object of each run.

One result per run, per apply, per intent that has a problem, plus one for the ledger itself (its hash
mode and the newest anchor). States, worst last:

``tampered``
    an entry does not hash to its ``record_hash`` (or HMAC under ``PAYNB_LEDGER_KEY``), breaks its
    schema, or differs from its anchor; an intent row differs from its chain entries; an archived
    object's bytes do not match the sha256 in the record (including a newer version over the key).
``chain_broken``
    ``previous_record_hash`` does not name the entry before it, a ``seq`` is missing (an entry was
    deleted or inserted), the ledger ends before the newest anchor (its tail was cut), or a run is in
    the archive but not in the ledger.
``missing``
    an archived object or anchor is gone, still in the local spool, or its store cannot be reached; or
    keyed entries cannot be checked because ``PAYNB_LEDGER_KEY`` is not set.
``ok``
    none of the above.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from paynb.canonical import sha256_hex
from paynb.errors import InputError, StoreError
from paynb.jobs.archive import RECORD, default_archive_url, spooled_runs
from paynb.jobs.run_record import validate_record
from paynb.ledger import Ledger, LedgerEntry, open_ledger, run_state
from paynb.ledger.check import STATES, ChainReport, check_ledger
from paynb.settings import Settings, get_settings
from paynb.store import Store, open_store


@dataclass
class VerifyResult:
    run_id: str  # the run id, apply id, intent key, or "ledger"
    state: str
    detail: str
    problems: list[tuple[str, str]] = field(default_factory=list, repr=False)
    kind: str = "run"

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.run_id, "state": self.state, "detail": self.detail}


class _Check:
    def __init__(self, run_id: str, kind: str = "run") -> None:
        self.run_id = run_id
        self.kind = kind
        self.problems: list[tuple[str, str]] = []
        self.notes: list[str] = []

    def add(self, state: str, detail: str) -> None:
        self.problems.append((state, detail))

    def result(self) -> VerifyResult:
        if not self.problems:
            detail = "; ".join(self.notes) or "all hashes match"
            return VerifyResult(self.run_id, "ok", detail, kind=self.kind)
        state = max((s for s, _ in self.problems), key=STATES.index)
        detail = "; ".join(d for _, d in self.problems)
        return VerifyResult(self.run_id, state, detail, list(self.problems), kind=self.kind)


def verify(
    run_id: str | None = None,
    all: bool = False,  # mirrors `paynb audit verify --all` (shadows the builtin here only)
    *,
    settings: Settings | None = None,
    ledger: Ledger | None = None,
) -> list[VerifyResult]:
    """Verify one run or apply (id or 8+ character prefix) or, with ``all=True``, the whole chain: every
    entry, every intent, the newest anchor, and the archive's runs that the ledger does not know."""
    settings = settings or get_settings()
    ledger = ledger or open_ledger(settings)
    if not run_id and not all:
        raise InputError("give a run id, or all=True (`--all`) to check every run", field="run_id")
    report = check_ledger(ledger, settings, validate_run=validate_record)
    by_ref: dict[str, list[LedgerEntry]] = {}
    for entry in report.entries:
        if entry.kind in ("run", "apply"):
            by_ref.setdefault(entry.ref, []).append(entry)
    if run_id and not all:
        refs = [ledger.find(run_id)[0].ref]
    else:
        refs = list(by_ref)
    spooled = {m["run_id"]: m for m in spooled_runs(settings)}
    stores: dict[str, Store | StoreError] = {}
    results = [_verify_ref(ref, by_ref[ref], report, ledger, settings, spooled, stores) for ref in refs]
    # a deleted tail or an edited intent concerns every run: a single-run check reports it too
    results.append(_ledger_result(report))
    if all:
        results += [
            VerifyResult(
                key,
                max((s for s, _ in found), key=STATES.index),
                "; ".join(d for _, d in found),
                list(found),
                kind="intent",
            )
            for key, found in sorted(report.by_intent.items())
            if found
        ]
        known = {ref for ref, group in by_ref.items() if group[-1].event != "started"}
        urls = {default_archive_url(settings)} | {
            e.record["archive"]["url"] for e in ledger.runs() if isinstance(e.record.get("archive"), dict)
        }
        listed = {r.run_id: i for i, r in enumerate(results) if r.kind == "run"}
        for orphan in _orphans(urls, known, settings, stores):
            if orphan.run_id in listed:  # it started, and its record is gone: that result turns bad
                orphan.detail = f"its run-started entry is in the ledger, its record is not; {orphan.detail}"
                results[listed[orphan.run_id]] = orphan
            else:
                results.append(orphan)
    return results


def _ledger_result(report: ChainReport) -> VerifyResult:
    check = _Check("ledger", kind="ledger")
    for state, detail in report.overall:
        check.add(state, detail)
    check.notes.append(f"{len(report.entries)} entries, {report.mode}; newest anchor: {report.anchor}")
    result = check.result()
    if not result.ok:
        result.detail += f" ({report.mode}; newest anchor: {report.anchor})"
    return result


def _verify_ref(
    ref: str,
    entries: list[LedgerEntry],
    report: ChainReport,
    ledger: Ledger,
    settings: Settings,
    spooled: dict[str, dict[str, Any]],
    stores: dict[str, Store | StoreError],
) -> VerifyResult:
    kind = entries[0].kind
    check = _Check(ref, kind=kind)
    for entry in entries:
        for state, detail in report.by_seq.get(entry.seq, []):
            check.add(state, detail)
    finished = [e for e in entries if e.event != "started"]
    if kind == "apply":
        last = entries[-1]
        check.notes.append(
            f"apply {last.event} ({last.status})" if finished else "apply started, never finished"
        )
        return check.result()
    if not finished:
        check.notes.append(f"run started, never finished ({run_state(entries[0].record)})")
        return check.result()
    entry = finished[-1]
    archive = entry.record.get("archive")
    if not isinstance(archive, dict):
        check.notes.append(f"nothing archived ({entry.record.get('failure_kind') or 'no archive'})")
        return check.result()
    _check_objects(check, entry, archive, ledger, settings, spooled, stores)
    return check.result()


def _store(url: str, settings: Settings, stores: dict[str, Store | StoreError]) -> Store:
    if url not in stores:
        try:
            stores[url] = open_store(url, settings)
        except StoreError as err:
            stores[url] = err
    found = stores[url]
    if isinstance(found, StoreError):
        raise found
    return found


def _check_objects(
    check: _Check,
    entry: LedgerEntry,
    archive: dict[str, Any],
    ledger: Ledger,
    settings: Settings,
    spooled: dict[str, dict[str, Any]],
    stores: dict[str, Store | StoreError],
) -> None:
    wanted: dict[str, tuple[str, str, str | None]] = {
        name: (o["key"], o["sha256"], o.get("version_id")) for name, o in archive["objects"].items()
    }
    wanted[RECORD] = (f"{archive['prefix']}/{RECORD}", sha256_hex(entry.raw_record), None)
    delivered = ledger.objects(entry.run_id)
    manifest = spooled.get(entry.run_id, {})
    waiting = {
        o["name"] for o in manifest.get("objects", []) if o["name"] not in manifest.get("delivered", {})
    }
    spooled_here = sorted(waiting & set(wanted))
    if spooled_here:
        check.add("missing", f"{', '.join(spooled_here)} still in the local spool; run `paynb archive flush`")
    for name in spooled_here:
        del wanted[name]
    if not wanted:
        return
    try:
        store = _store(archive["url"], settings, stores)
    except StoreError as err:
        check.add("missing", f"cannot reach {archive['url']}: {str(err).splitlines()[0]}")
        return
    for name, (key, digest, version) in wanted.items():
        if name in delivered:
            version = delivered[name].version_id
            if delivered[name].sha256 != digest:
                check.add("tampered", f"{name}: the delivery row's sha256 differs from the record")
        try:
            _check_object(check, store, name, key, digest, version)
        except StoreError as err:
            check.add("missing", f"{name}: {str(err).splitlines()[0]}")


def _check_object(check: _Check, store: Store, name: str, key: str, digest: str, version: str | None) -> None:
    info = store.stat(key, version_id=version) if version else store.stat(key)
    if info is None:
        if version:
            check.add("missing", f"{name} version {version} is gone from {store.url_for(key)}")
        else:
            check.add("missing", f"{name} is gone from {store.url_for(key)}")
        return
    data = store.get(key, version_id=version, verify=False) if version else store.get(key, verify=False)
    if sha256_hex(data) != digest:
        check.add("tampered", f"{name} does not match its sha256 in the run record")
        return
    if version:
        latest = store.stat(key)
        if latest is not None and latest.version_id != version:
            newer = store.get(key, verify=False)
            if sha256_hex(newer) != digest:
                check.add(
                    "tampered", f"{name} was overwritten by a newer version (the recorded one is intact)"
                )


def _orphans(
    urls: set[str], known: set[str], settings: Settings, stores: dict[str, Store | StoreError]
) -> list[VerifyResult]:
    """Runs whose record.json is in an archive but whose ledger row is gone (e.g. the newest row)."""
    out = []
    for url in sorted(urls):
        try:
            store = _store(url, settings, stores)
            keys = [o.key for o in store.list("runs/") if o.key.endswith(f"/{RECORD}")]
        except StoreError:
            continue
        for key in keys:
            run_id = key.rsplit("/", 2)[-2]
            if run_id in known:
                continue
            try:
                record = json.loads(store.get(key, verify=False))
                claimed = record.get("run_id")
            except (StoreError, ValueError):
                claimed = None
            if claimed == run_id:
                out.append(
                    VerifyResult(
                        run_id,
                        "chain_broken",
                        f"archived at {store.url_for(key)} but missing from the ledger",
                    )
                )
    return out
