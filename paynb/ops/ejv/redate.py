"""Re-send INBOX files whose FEEDBACK never came: a re-dated copy under a new name, uploaded once.

CGI rejects journal lines whose effective date is not in an open or future period ("0703 GL Effective Date on
the JV Detail is not within an open or future period", docs/runbook.md#ejv-feedback), so an INBOX that CAS never
answered is re-sent with today's date (FAQ Q18). For each file the plan makes:

* a new name ``INBOX.F<feeder>.<YYYYMMDDHHMMSS>``: the new date with the original time of day, moved on by one
  second while it collides with an ``ejv_files.file_ref``, an object in the EJV folders or another file of
  the plan (as payment-jobs' ``get_file_name`` does);
* the same bytes with every JD effective date set to the new date (field-level diff in the plan; the plan is
  refused if anything else would change);
* the empty ``<name>.TRG`` trigger.

Names and dates follow sbc-pay's EJV jobs (``docs/business-days.md``): the name's timestamp is UTC, and the
default date is today's UTC date, moved on to the next business day (weekends and BC statutory holidays).

The plan refuses when FEEDBACK exists for the batch (``ejv_files.feedback_file_ref`` or a FEEDBACK record
found by :func:`paynb.ops.ejv.search.search_feedback`), when a FEEDBACK shows the same line already
succeeded in another batch, when the batch is unknown to pay-db, when the file still waits in
``cgi_processing/``, and when a copy of the batch already sits in ``cgi_processing/`` or ``cgi_processed/``
under another name (an earlier re-send that CAS has not answered yet) unless ``resend_anyway`` with a
``reason``. Apply is the ``ejv.inbox_redate`` fix on :mod:`paynb.fixes`: it re-plans, refuses if anything
changed, and uploads to ``cgi_processing/`` (where the SFTP poller picks files up), each upload recorded as
an intent first. An object already there, or already moved on to ``cgi_processed/``, with the same sha256 is
reported, not rewritten; a different object at the key is refused. pay-db is not changed: the FEEDBACK for
the copy names the same batch (``ejv_files.id``), which pay-queue reconciles as usual.

Example::

    from paynb.fixes import apply_fix
    plan = plan_redate(["cgi_processed/INBOX.F3505.20261102200107"])
    print(plan.summary, plan.sha256)
    apply_fix(REDATE_FIX, plan, confirm=plan.sha256, ticket="OPS-1", reason="no FEEDBACK after 3 days")
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy.engine import Engine

from paynb import db
from paynb.errors import InputError, ParseError, PlanError, StoreError
from paynb.fixes import Fix, FixRun, Outcome, register_fix
from paynb.formats.inbox import (
    InboxFile,
    diff_inbox,
    fiscal_year,
    format_inbox_name,
    parse_inbox,
    parse_inbox_name,
    redate_inbox,
    trigger_name,
)
from paynb.ops.ejv.scan import FEEDBACK, INBOX
from paynb.ops.ejv.search import (
    EJV_FOLDERS,
    PROCESSED_FOLDER,
    PROCESSING_FOLDER,
    Source,
    search_feedback,
)
from paynb.ops.intents import write_object_once
from paynb.plan import Plan, check_fresh
from paynb.settings import Settings, get_settings
from paynb.store import Store, legacy_bucket, pay_bucket, sha256_bytes
from paynb.timez import holiday_name, is_business_day, nearest_business_day, utc_today

if TYPE_CHECKING:
    from paynb.context import Env

PLAN_KIND = "ejv.inbox_redate"
OUTBOUND_FOLDER = PROCESSING_FOLDER
MAX_BUMPS = 3600
ALLOWED_CHANGES = frozenset({"effective_date"})


@dataclass(frozen=True)
class _Located:
    url: str
    key: str
    store: Store
    legacy: bool


@dataclass(frozen=True)
class _Built:
    plan: Plan
    payloads: dict[str, bytes]  # target key -> bytes, in upload order


@dataclass(frozen=True)
class RedateResult:
    plan_sha256: str
    uploaded: tuple[str, ...]
    already_present: tuple[str, ...]
    target: str
    files: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    apply_id: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.uploaded)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "report": "ejv_redate_apply",
            "plan_sha256": self.plan_sha256,
            "target": self.target,
            "uploaded": list(self.uploaded),
            "already_present": list(self.already_present),
            "files": list(self.files),
            "apply_id": self.apply_id,
        }

    def message(self) -> str:
        if not self.uploaded:
            return (
                f"nothing to do: all {len(self.already_present)} object(s) are already in {self.target}"
                " with the planned sha256"
            )
        extra = f"; {len(self.already_present)} were already there" if self.already_present else ""
        return f"uploaded {len(self.uploaded)} object(s) to {self.target}{extra}"


def default_redate_date(today: date | None = None) -> date:
    """Today (UTC, as payment-jobs dates its files) if it is a business day, else the next one: payment-jobs'
    ``get_nearest_business_day`` (weekends and BC statutory holidays, ``docs/business-days.md``)."""
    return nearest_business_day(today or utc_today())


def plan_redate(
    file_keys: Iterable[str],
    *,
    new_date: date | str | None = None,
    resend_anyway: bool = False,
    reason: str = "",
    env: Env | None = None,
    settings: Settings | None = None,
    engine: Engine | None = None,
    store: Store | None = None,
    legacy_store: Store | None = None,
    search_stores: Sequence[Source | Store] | None = None,
    index_path: str | None = None,
    progress: bool = False,
    today: date | None = None,
) -> Plan:
    """The re-dating plan for these INBOX files (keys like ``cgi_processed/INBOX.F3505.…``, bare names or
    ``s3://`` URLs). Reads the store and pay-db; writes nothing (the search index is local).

    ``resend_anyway`` (with a ``reason``) lets a batch go out again although a copy of it already sits in
    ``cgi_processing/`` or ``cgi_processed/`` without FEEDBACK; the reason is part of the plan."""
    return _build(
        list(file_keys),
        new_date=new_date,
        resend_anyway=resend_anyway,
        reason=reason,
        **_parts(env, settings, engine, store, legacy_store),
        search_stores=search_stores,
        index_path=index_path,
        progress=progress,
        today=today,
    ).plan


def apply_redate(
    plan: Plan,
    confirm: str | None,
    *,
    env: Env | None = None,
    ticket: str = "",
    reason: str = "",
    settings: Settings | None = None,
    engine: Engine | None = None,
    store: Store | None = None,
    legacy_store: Store | None = None,
    search_stores: Sequence[Source | Store] | None = None,
    index_path: str | None = None,
    progress: bool = False,
    today: date | None = None,
) -> RedateResult:
    """Upload the re-dated copies of a confirmed plan to ``cgi_processing/``, once, through
    :func:`paynb.fixes.apply_fix` (so the apply is recorded in the ledger)."""
    from paynb.context import resolve_env
    from paynb.fixes import apply_fix

    env = resolve_env(env, settings=settings, engine=engine)
    fix = RedateFix(
        store=store,
        legacy_store=legacy_store,
        search_stores=search_stores,
        index_path=index_path,
        progress=progress,
        today=today,
    )
    result = apply_fix(
        fix, plan, confirm, env=env, ticket=ticket, reason=reason or plan.body.get("reason", "")
    )
    return redate_result(plan, result.outcome, apply_id=result.apply_id)


def redate_result(plan: Plan, outcome: Any, *, apply_id: str | None = None) -> RedateResult:
    """The :class:`RedateResult` of an apply's outcome (CLI, notebook)."""
    detail = dict(outcome.detail)
    return RedateResult(
        plan_sha256=plan.sha256,
        uploaded=tuple(detail.get("uploaded", ())),
        already_present=tuple(detail.get("already_present", ())),
        target=plan.body.get("target_folder", ""),
        files=tuple(
            {"source": f["source"]["name"], "new_name": f["target"]["name"]} for f in plan.body["files"]
        ),
        apply_id=apply_id,
    )


def _parts(
    env: Env | None,
    settings: Settings | None,
    engine: Engine | None,
    store: Store | None,
    legacy_store: Store | None,
) -> dict[str, Any]:
    """The pieces ``_build`` reads, from ``env`` unless given one by one (old keyword arguments)."""
    if env is not None:
        settings = settings or env.settings
        engine = engine or env.engine
    return {"settings": settings, "engine": engine, "store": store, "legacy_store": legacy_store}


class RedateFix(Fix):
    """``ejv.inbox_redate``: upload re-dated INBOX copies (and their ``.TRG``) to ``cgi_processing/``, once.

    Store parts given here (tests, the notebook) win over the ``Env``'s bucket. Re-planning for an apply
    accepts this plan's own copies, so a killed apply resumes instead of being refused for them."""

    kind = PLAN_KIND
    title = "re-send an EJV INBOX whose FEEDBACK never came, re-dated, under a new name"

    def __init__(
        self,
        *,
        store: Store | None = None,
        legacy_store: Store | None = None,
        search_stores: Sequence[Source | Store] | None = None,
        index_path: str | None = None,
        progress: bool = False,
        today: date | None = None,
    ) -> None:
        self.store = store
        self.legacy_store = legacy_store
        self.search_stores = search_stores
        self.index_path = index_path
        self.progress = progress
        self.today = today

    def _build_for(self, env: Env, params: dict[str, Any], own: Plan | None = None) -> _Built:
        return _build(
            list(params.get("files") or ()),
            new_date=params.get("new_date"),
            resend_anyway=bool(params.get("resend_anyway")),
            reason=str(params.get("reason") or ""),
            settings=env.settings,
            engine=env.engine,
            store=self.store,
            legacy_store=self.legacy_store,
            search_stores=self.search_stores,
            index_path=self.index_path,
            progress=self.progress,
            today=self.today,
            own=own,
        )

    def plan(self, env: Env, **params: Any) -> Plan:
        return self._build_for(env, params).plan

    def replan(self, env: Env, plan: Plan) -> Plan:
        # checked before re-planning too, so the refusal names the object that is in the way
        target_store = self.store or _main_store(env.settings)
        for f in plan.body.get("files") or []:
            for t in (f["target"], f["trigger"]):
                _already_sent(target_store, t["key"], t["sha256"])
        return self._build_for(env, _params_of(plan), own=plan).plan

    def execute(self, env: Env, plan: Plan, run: FixRun) -> Outcome:
        built = self._build_for(env, _params_of(plan), own=plan)
        check_fresh(plan, built.plan)
        target_store = self.store or _main_store(env.settings)
        expected = {t["key"]: t["sha256"] for f in plan.body["files"] for t in (f["target"], f["trigger"])}
        uploaded: list[str] = []
        present: list[str] = []
        meta = {"paynb-plan": plan.sha256[:16], "paynb-apply": run.apply_id}
        # INBOX before its trigger: CGI takes an INBOX once the TRG is there
        for key, data in built.payloads.items():
            # always through the journal: a killed apply's pending intent is confirmed by what is there
            wrote = write_object_once(
                run,
                target_store.url_for(key),
                expected[key],
                present=lambda k=key: _already_sent(target_store, k, expected[k]),
                write=lambda k=key, d=data: target_store.put(k, d, content_type="text/plain", metadata=meta),
            )
            (uploaded if wrote else present).append(key)
        objects = [{"store": target_store.url_for(k), "key": k, "sha256": expected[k]} for k in expected]
        return Outcome(
            status="applied" if uploaded else "already_applied",
            rows_affected=0,
            before={"present": sorted(present)},
            after={"present": sorted(expected)},
            touched={"objects": objects, "rows": [], "cfs": []},
            detail={
                "uploaded": uploaded,
                "already_present": present,
                "target": plan.body.get("target_folder"),
            },
        )

    def verify(self, env: Env, plan: Plan, outcome: Outcome) -> dict[str, Any]:
        target_store = self.store or _main_store(env.settings)
        for f in plan.body["files"]:
            for t in (f["target"], f["trigger"]):
                if not _already_sent(target_store, t["key"], t["sha256"]):
                    raise PlanError(f"{t['url']} is not there after the upload (nor in {PROCESSED_FOLDER})")
        return {"objects_verified": 2 * len(plan.body["files"])}


REDATE_FIX = register_fix(RedateFix())


def _params_of(plan: Plan) -> dict[str, Any]:
    params = plan.body.get("params")
    if not isinstance(params, dict):
        raise InputError(
            "the plan has no params to re-plan from (made by an older paynb?)", field="body.params"
        )
    return dict(params)


def _already_sent(store: Store, key: str, digest: str) -> bool:
    """The planned bytes are at ``key``, or the poller already moved them on to ``cgi_processed/``. Anything
    else at either key is refused: that object is not this plan's."""
    if _present_targets(store, {key: digest}):
        return True
    moved = PROCESSED_FOLDER + key.removeprefix(OUTBOUND_FOLDER)
    return bool(_present_targets(store, {moved: digest}))


def plan_files_frame(plan: Plan) -> pd.DataFrame:
    """One row per file of a re-dating plan: source, new name, batch, invoices, dates, name notes."""
    rows = [
        {
            "source": f["source"]["url"],
            "new_name": f["target"]["name"],
            "batch": ", ".join(str(b) for b in f["batch_numbers"]),
            "invoices": len(f["invoice_ids"]),
            "detail_lines": f["detail_lines"],
            "old_dates": ", ".join(f["old_effective_dates"]),
            "new_date": f["new_effective_date"],
            "notes": "; ".join(f["name_notes"]),
        }
        for f in plan.body.get("files", [])
    ]
    columns = ["source", "new_name", "batch", "invoices", "detail_lines", "old_dates", "new_date", "notes"]
    return pd.DataFrame.from_records(rows, columns=columns)


def plan_diff_frame(plan: Plan) -> pd.DataFrame:
    """The field-level diff of every file (only ``effective_date`` rows, by construction)."""
    rows = [
        {"file": f["source"]["name"], **change} for f in plan.body.get("files", []) for change in f["diff"]
    ]
    return pd.DataFrame.from_records(rows, columns=["file", "line", "field", "old", "new"])


def _present_targets(store: Store, expected: dict[str, str]) -> list[str]:
    """Target keys already holding the planned bytes; a key holding anything else is refused."""
    present: list[str] = []
    for key, digest in expected.items():
        info = store.stat(key)
        if info is None:
            continue
        actual = info.sha256 or sha256_bytes(store.get(key, verify=False))
        if actual != digest:
            raise PlanError(
                f"{store.url_for(key)} already exists with other content (sha256 {actual[:12]}…, planned"
                f" {digest[:12]}…); refusing to overwrite it",
                hint="find out who wrote it; re-plan (another --date) if the name must change",
            )
        present.append(key)
    return present


# --- building the plan -----------------------------------------------------------------------------------------


def _main_store(settings: Settings) -> Store:
    return pay_bucket(settings)


def _legacy(settings: Settings) -> Store | None:
    return legacy_bucket(settings, settings.legacy_ejv_bucket)


def _resolve_date(value: date | str | None, today: date) -> date:
    if value is None or value == "":
        return default_redate_date(today)
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            raise InputError(f"expected a date YYYY-MM-DD, got {value!r}", field="date") from None
    if value < today:
        raise InputError(
            f"{value} is in the past (today is {today}): CGI rejects effective dates outside the open period",
            field="date",
        )
    if not is_business_day(value):
        why = holiday_name(value) or value.strftime("%A")
        raise InputError(f"{value} is not a business day ({why}; see docs/business-days.md)", field="date")
    return value


def _locate(name: str, main: Store, legacy: Store | None) -> _Located:
    text = name.strip()
    if not text:
        raise InputError("empty file name", field="files")
    if "://" in text:
        for store, is_legacy in ((main, False), (legacy, True)):
            if store is None:
                continue
            root = store.url_for("x")[:-1]
            if text.startswith(root):
                key = text[len(root) :]
                if store.stat(key) is None:
                    raise InputError("no such object", field="files", file=text)
                return _Located(store.url_for(key), key, store, is_legacy)
        raise InputError(
            "the URL is in neither the EJV bucket nor the legacy cgi-ejv bucket", field="files", file=text
        )
    candidates = [text] if "/" in text else [f"{PROCESSED_FOLDER}{text}", f"{PROCESSING_FOLDER}{text}"]
    for key in candidates:
        if main.stat(key) is not None:
            return _Located(main.url_for(key), key, main, False)
    if "/" not in text and legacy is not None:
        try:
            found = legacy.stat(text)
        except StoreError:  # a missing legacy bucket is not this file's problem
            found = None
        if found is not None:
            return _Located(legacy.url_for(text), text, legacy, True)
    where = ", ".join(candidates) + (" or the legacy bucket" if "/" not in text else "")
    raise InputError(f"no INBOX object found (looked in {where})", field="files", file=text)


def _build(
    names: list[str],
    *,
    new_date: date | str | None,
    resend_anyway: bool = False,
    reason: str = "",
    own: Plan | None = None,
    settings: Settings | None,
    engine: Engine | None,
    store: Store | None,
    legacy_store: Store | None,
    search_stores: Sequence[Source | Store] | None,
    index_path: str | None,
    progress: bool,
    today: date | None,
) -> _Built:
    if not names:
        raise InputError("give at least one INBOX file", field="files")
    settings = settings or get_settings()
    today = today or utc_today()
    day = _resolve_date(new_date, today)
    reason = reason.strip()
    if resend_anyway and not reason:
        raise InputError("--resend-anyway needs --reason (why the batch must go out again)", field="reason")
    main = store or _main_store(settings)
    legacy = legacy_store if legacy_store is not None else (None if store is not None else _legacy(settings))
    if search_stores is None and store is not None:
        search_stores = [Source(main, folder, True, folder.rstrip("/")) for folder in EJV_FOLDERS]
        if legacy is not None:
            search_stores.append(Source(legacy, "", False, "legacy"))

    located: list[_Located] = []
    for name in names:
        loc = _locate(name, main, legacy)
        if loc.url in {x.url for x in located}:
            raise InputError("the same file is listed twice", field="files", file=loc.url)
        if not loc.legacy and loc.key.startswith(PROCESSING_FOLDER):
            raise PlanError(
                f"{loc.url} is still in {PROCESSING_FOLDER}: the SFTP poller has not sent it yet, so CAS cannot have"
                " answered. A re-dated copy would be sent next to it (a double charge).",
                hint="check the GOOGLE_BUCKET_POLLER job; re-date only files that reached cgi_processed/",
            )
        located.append(loc)

    parsed: list[tuple[_Located, InboxFile, bytes, str, datetime]] = []
    for loc in located:
        data = loc.store.get(loc.key, verify=False)
        name = PurePosixPath(loc.key).name
        try:
            feeder, stamp = parse_inbox_name(name)
        except ParseError as err:
            raise InputError(f"not an INBOX file name: {err}", field="files", file=loc.url) from None
        inbox = parse_inbox(data, file=loc.url)
        if not inbox.batch_numbers:
            raise InputError("the INBOX holds no batch", field="files", file=loc.url)
        parsed.append((loc, inbox, data, feeder, stamp))

    all_batches = sorted({b for _, inbox, *_ in parsed for b in inbox.batch_numbers})
    with db.read_connection(engine) as conn:
        ejv_rows = {
            r["id"]: r
            for r in db.fetch_all(
                conn,
                "SELECT id, file_ref, feedback_file_ref, disbursement_status_code, file_type, created_on"
                " FROM ejv_files WHERE id = ANY(:ids)",
                {"ids": all_batches},
            )
        }
        # names that would collide with a file payment-jobs already wrote (any feeder, that day)
        refs = {
            r["file_ref"]
            for r in db.fetch_all(
                conn,
                "SELECT file_ref FROM ejv_files WHERE file_ref LIKE :p",
                {"p": f"INBOX.F%.{day:%Y%m%d}%"},
            )
        }
    invoice_ids = sorted({i for _, inbox, *_ in parsed for i in inbox.invoice_ids()})
    found = (
        search_feedback(
            invoice_ids, settings=settings, stores=search_stores, index_path=index_path, progress=progress
        )
        if invoice_ids
        else None
    )

    warnings: list[str] = []
    taken_in_plan: set[str] = set()
    file_bodies: list[dict[str, Any]] = []
    payloads: dict[str, bytes] = {}
    own_names = {f["target"]["name"]: f["target"]["sha256"] for f in (own.body["files"] if own else [])}
    for loc, inbox, data, feeder, stamp in parsed:
        _check_batches(loc, inbox, ejv_rows, warnings)
        new_inbox = redate_inbox(inbox, day, file=loc.url)
        new_bytes = new_inbox.to_bytes()
        changes = diff_inbox(inbox, new_inbox)
        unexpected = sorted({c.field for c in changes} - ALLOWED_CHANGES)
        if unexpected:  # pragma: no cover - redate_inbox only touches effective dates
            raise PlanError(f"re-dating {loc.url} would also change {', '.join(unexpected)}; refusing")
        new_name, notes = _new_name(
            feeder, stamp, day, new_bytes, main, legacy, taken_in_plan, refs, own_names
        )
        taken_in_plan.add(new_name)
        target_urls = {
            main.url_for(OUTBOUND_FOLDER + new_name),
            main.url_for(OUTBOUND_FOLDER + trigger_name(new_name)),
        }
        if new_name in own_names:  # re-planning a confirmed plan: its copy may have moved on already
            target_urls.add(main.url_for(PROCESSED_FOLDER + new_name))
        if found is not None:
            _check_feedback(loc, inbox, found, target_urls, warnings)
            _check_in_flight(loc, inbox, found, target_urls, resend_anyway, reason, warnings)
        if fiscal_year(day) not in {r.fiscal_year for r in inbox.records if r.fiscal_year}:
            warnings.append(
                f"{PurePosixPath(loc.key).name}: {day} is in fiscal year {fiscal_year(day)}, the batch header says"
                f" {sorted({r.fiscal_year for r in inbox.records if r.fiscal_year})}; the header is left unchanged"
            )
        key = OUTBOUND_FOLDER + new_name
        trg = OUTBOUND_FOLDER + trigger_name(new_name)
        payloads[key] = new_bytes
        payloads[trg] = b""
        file_bodies.append(
            {
                "source": {
                    "url": loc.url,
                    "key": loc.key,
                    "name": PurePosixPath(loc.key).name,
                    "legacy_bucket": loc.legacy,
                    "sha256": sha256_bytes(data),
                    "size": len(data),
                },
                "batch_numbers": list(inbox.batch_numbers),
                "batch_types": list(inbox.batch_types),
                "ejv_files": [_jsonable_row(ejv_rows[b]) for b in inbox.batch_numbers if b in ejv_rows],
                "invoice_ids": sorted(inbox.invoice_ids()),
                "detail_lines": len(inbox.details()),
                "old_effective_dates": sorted(d.isoformat() for d in inbox.effective_dates()),
                "new_effective_date": day.isoformat(),
                "target": {
                    "name": new_name,
                    "key": key,
                    "url": main.url_for(key),
                    "sha256": sha256_bytes(new_bytes),
                    "size": len(new_bytes),
                },
                "trigger": {
                    "name": trigger_name(new_name),
                    "key": trg,
                    "url": main.url_for(trg),
                    "sha256": sha256_bytes(b""),
                    "size": 0,
                },
                "name_notes": notes,
                "diff": [c.to_dict() for c in changes],
            }
        )

    body = {
        "params": {
            "files": [f["source"]["url"] for f in file_bodies],
            "new_date": day.isoformat(),
            "resend_anyway": resend_anyway,
            "reason": reason,
        },
        "new_date": day.isoformat(),
        "target_folder": main.url_for(OUTBOUND_FOLDER + "x")[:-1],
        "files": file_bodies,
        "checks": {
            "invoices_searched": len(invoice_ids),
            "feedback_records_found": len(found.feedback()) if found else 0,
            "unparseable_files": [p.file for p in found.problems] if found else [],
        },
    }
    n = len(file_bodies)
    lines = sum(f["detail_lines"] for f in file_bodies)
    summary = (
        f"re-date {n} INBOX file(s) ({lines} detail line(s), {len(invoice_ids)} invoice(s)) to {day}: "
        + ", ".join(f"{f['source']['name']} -> {f['target']['name']}" for f in file_bodies)
    )
    plan = Plan(kind=PLAN_KIND, body=body, summary=summary, warnings=tuple(warnings))
    return _Built(plan, payloads)


def _jsonable_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date | datetime) else v) for k, v in row.items()}


def _check_batches(
    loc: Any, inbox: InboxFile, ejv_rows: dict[int, dict[str, Any]], warnings: list[str]
) -> None:
    name = PurePosixPath(loc.key).name
    for batch in inbox.batch_numbers:
        row = ejv_rows.get(batch)
        if row is None:
            raise PlanError(
                f"{name}: batch {batch} is not in ejv_files, so pay-queue could not reconcile its FEEDBACK; refusing",
                hint="check that this INBOX belongs to this pay-db (environment) before re-sending anything",
            )
        if row["feedback_file_ref"]:
            raise PlanError(
                f"{name}: pay-queue already processed FEEDBACK {row['feedback_file_ref']} for batch {batch}"
                " (ejv_files.feedback_file_ref); re-sending would journal it twice. Refusing.",
                hint="look at the FEEDBACK's return codes (`paynb ejv health`, `paynb ejv search`) instead",
            )
        if row["file_ref"] != name:
            warnings.append(
                f"{name}: ejv_files {batch} names {row['file_ref']} (this file is already a re-dated copy?)"
            )


def _check_feedback(
    loc: Any, inbox: InboxFile, found: Any, own_targets: set[str], warnings: list[str]
) -> None:
    name = PurePosixPath(loc.key).name
    batches = set(inbox.batch_numbers)
    lines = {(r.flowthrough, r.debit_credit, r.amount) for r in inbox.details()}
    ids = inbox.invoice_ids()
    for m in found.mentions:
        if m.invoice_id not in ids or m.file == loc.url or m.file in own_targets:
            continue
        if m.kind == FEEDBACK and m.batch_number in batches:
            raise PlanError(
                f"{name}: FEEDBACK for batch {m.batch_number} exists: {m.name} line {m.line} (return code"
                f" {m.return_code}). pay-queue has not processed it (ejv_files.feedback_file_ref is empty); replay"
                " that FEEDBACK instead of re-sending the INBOX. Refusing.",
                hint="re-publish bc.registry.payment.cgi.FEEDBACKReceived for that file (docs/files.md#feedback)",
            )
        if m.kind == FEEDBACK and m.is_success and (m.flowthrough, m.debit_credit, m.amount) in lines:
            raise PlanError(
                f"{name}: {m.flowthrough} {m.debit_credit} {m.amount} already succeeded in batch {m.batch_number}"
                f" ({m.name} line {m.line}); re-sending would charge it twice. Refusing."
            )
        if m.kind == INBOX and not _in_flight(m, batches):
            warnings.append(
                f"{name}: invoice {m.invoice_id} is also in {m.location}/{m.name} (batch {m.batch_number})"
            )
    for problem in found.problems:
        warnings.append(f"could not parse {problem.file}: FEEDBACK in it may be missed ({problem.error})")


_IN_FLIGHT_LOCATIONS = frozenset({PROCESSING_FOLDER.rstrip("/"), PROCESSED_FOLDER.rstrip("/")})


def _in_flight(m: Any, batches: set[int]) -> bool:
    return m.kind == INBOX and m.batch_number in batches and m.location in _IN_FLIGHT_LOCATIONS


def _check_in_flight(
    loc: Any,
    inbox: InboxFile,
    found: Any,
    own_targets: set[str],
    resend_anyway: bool,
    reason: str,
    warnings: list[str],
) -> None:
    """Refuse when another copy of the batch waits in, or was sent from, the EJV folders (#10: a second
    re-send of a batch CAS has not answered yet is a double charge), unless ``resend_anyway``."""
    batches = set(inbox.batch_numbers)
    copies = sorted(
        {
            (m.location, m.name, m.batch_number)
            for m in found.mentions
            if _in_flight(m, batches) and m.file != loc.url and m.file not in own_targets
        }
    )
    if not copies:
        return
    listed = ", ".join(f"{where}/{name} (batch {batch})" for where, name, batch in copies)
    name = PurePosixPath(loc.key).name
    if resend_anyway:
        warnings.append(f"{name}: RESENT ANYWAY although the batch is already in {listed}: {reason}")
        return
    raise PlanError(
        f"{name}: the batch is already in {listed} and no FEEDBACK has come for it. Another copy would be"
        " sent to CAS a second time. Refusing.",
        hint="wait for the FEEDBACK of that copy (`paynb ejv search`), or, if CAS confirmed it never arrived,"
        " plan again with --resend-anyway --reason '<ticket: what CAS said>'",
    )


def _new_name(
    feeder: str,
    stamp: datetime,
    day: date,
    content: bytes,
    main: Store,
    legacy: Store | None,
    taken_in_plan: set[str],
    refs: set[str],
    own: dict[str, str] | None = None,
) -> tuple[str, list[str]]:
    """The first free ``INBOX.F<feeder>.<day><time>`` from the original time of day (both UTC, as
    payment-jobs names files), +1 s per collision. A name in ``own`` (the confirmed plan being re-planned)
    holding the same bytes is this plan's own copy, also after the poller moved it to ``cgi_processed/``."""
    start = datetime.combine(day, stamp.time())
    digest = sha256_bytes(content)
    notes: list[str] = []
    for bump in range(MAX_BUMPS):
        name = format_inbox_name(feeder, start + timedelta(seconds=bump))
        if own and own.get(name) == digest:
            return name, notes
        reason = _collision(name, digest, main, legacy, taken_in_plan, refs)
        if reason is None:
            return name, notes
        notes.append(f"{name} is taken ({reason}); trying one second later")
    raise PlanError(f"no free INBOX name on {day} after {MAX_BUMPS} tries", hint="pass another --date")


def _collision(
    name: str, digest: str, main: Store, legacy: Store | None, taken_in_plan: set[str], refs: set[str]
) -> str | None:
    if name in taken_in_plan:
        return "another file of this plan"
    if name in refs:
        return "ejv_files.file_ref"
    outbound = main.stat(OUTBOUND_FOLDER + name)
    if outbound is not None:
        existing = outbound.sha256 or sha256_bytes(main.get(OUTBOUND_FOLDER + name, verify=False))
        if existing != digest:
            return f"{OUTBOUND_FOLDER}{name} holds other content"
    if main.stat(PROCESSED_FOLDER + name) is not None:
        return f"{PROCESSED_FOLDER}{name} exists (already sent)"
    if legacy is not None:
        try:
            if legacy.stat(name) is not None:
                return "the legacy bucket has it"
        except StoreError:  # a missing legacy bucket cannot collide
            return None
    return None
