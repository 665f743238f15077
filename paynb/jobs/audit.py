"""``verify``: re-read every archived object of a run, recompute hashes, check the ledger chain.

States, worst first:

``tampered``
    a ledger row does not hash to its ``record_hash`` or breaks the schema; or an archived object's
    bytes do not match the sha256 in the record (including a newer version written over the key).
``chain_broken``
    ``previous_record_hash`` does not name the run before it, or a ``seq`` is missing (a row was
    deleted or inserted), or a run is in the archive but not in the ledger.
``missing``
    an archived object is gone, is still in the local spool, or its store cannot be reached.
``ok``
    none of the above.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from paynb.canonical import sha256_hex
from paynb.errors import InputError, JobError, StoreError
from paynb.jobs.archive import RECORD, default_archive_url, spooled_runs
from paynb.jobs.ledger import Ledger, LedgerEntry, open_ledger
from paynb.jobs.run_record import validate_record
from paynb.settings import Settings, get_settings
from paynb.store import Store, open_store

STATES = ("ok", "missing", "chain_broken", "tampered")  # in rising severity


@dataclass
class VerifyResult:
    run_id: str
    state: str
    detail: str
    problems: list[tuple[str, str]] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "state": self.state, "detail": self.detail}


class _Check:
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.problems: list[tuple[str, str]] = []
        self.notes: list[str] = []

    def add(self, state: str, detail: str) -> None:
        self.problems.append((state, detail))

    def result(self) -> VerifyResult:
        if not self.problems:
            return VerifyResult(self.run_id, "ok", "; ".join(self.notes) or "all hashes match")
        state = max((s for s, _ in self.problems), key=STATES.index)
        return VerifyResult(self.run_id, state, "; ".join(d for _, d in self.problems), list(self.problems))


def verify(
    run_id: str | None = None,
    all: bool = False,  # mirrors `paynb audit verify --all` (shadows the builtin here only)
    *,
    settings: Settings | None = None,
    ledger: Ledger | None = None,
) -> list[VerifyResult]:
    """Verify one run (id or 8+ character prefix) or, with ``all=True``, every run in the ledger plus
    the archive's runs that the ledger does not know."""
    settings = settings or get_settings()
    ledger = ledger or open_ledger(settings)
    if not run_id and not all:
        raise InputError("give a run id, or all=True (`--all`) to check every run", field="run_id")
    entries = ledger.entries()
    previous: dict[str, LedgerEntry | None] = {}
    before: LedgerEntry | None = None
    for entry in entries:
        previous[entry.run_id] = before
        before = entry
    if run_id and not all:
        targets = [ledger.find_run(run_id)]
    else:
        targets = entries
    spooled = {m["run_id"]: m for m in spooled_runs(settings)}
    stores: dict[str, Store | StoreError] = {}
    results = [_verify_entry(e, previous.get(e.run_id), ledger, settings, spooled, stores) for e in targets]
    if all:
        known = {e.run_id for e in entries}
        urls = {default_archive_url(settings)} | {
            e.record["archive"]["url"] for e in entries if isinstance(e.record.get("archive"), dict)
        }
        results += _orphans(urls, known, settings, stores)
    return results


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


def _verify_entry(
    entry: LedgerEntry,
    prev: LedgerEntry | None,
    ledger: Ledger,
    settings: Settings,
    spooled: dict[str, dict[str, Any]],
    stores: dict[str, Store | StoreError],
) -> VerifyResult:
    check = _Check(entry.run_id)
    record = entry.record
    if sha256_hex(entry.raw_record) != entry.record_hash:
        check.add("tampered", "the ledger row's record does not match its record_hash")
    try:
        validate_record(record, complete=True)
    except JobError as err:
        check.add("tampered", f"the ledger record is invalid: {err}")
    if record.get("run_id") != entry.run_id:
        check.add("tampered", "the record names another run id than its ledger row")
    if record.get("previous_record_hash") != entry.previous_record_hash:
        check.add("tampered", "the row's previous_record_hash differs from the one inside its record")
    expected = prev.record_hash if prev else None
    if entry.previous_record_hash != expected:
        what = f"the run before it ({prev.run_id})" if prev else "nothing (it is the first row)"
        check.add(
            "chain_broken", f"previous_record_hash does not match {what}: a ledger row was deleted or altered"
        )
    elif prev is not None and entry.seq != prev.seq + 1:
        check.add("chain_broken", f"ledger positions {prev.seq + 1}..{entry.seq - 1} are missing")
    archive = record.get("archive")
    if not isinstance(archive, dict):
        check.notes.append(f"nothing archived ({record.get('failure_kind') or 'no archive'})")
        return check.result()
    _check_objects(check, entry, archive, ledger, settings, spooled, stores)
    return check.result()


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
    wanted[RECORD] = (f"{archive['prefix']}/{RECORD}", entry.record_hash, None)
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
