"""Why is this PAD invoice still APPROVED? The decision tree of docs/runbook.md#pad-decision-tree, for every stuck invoice.

For each PAD invoice APPROVED longer than ``days``:

1. **No ACTIVE reference**: the CFS invoice was never created. ``CREATE_INVOICES`` only rolls up accounts
   whose effective PAD ``cfs_accounts`` row is not ``FREEZE`` and is ``ACTIVE``/``INACTIVE``; the row says
   which of those stopped it (PAD activation pending, CFS account not created, NSF freeze) or, when the
   account was eligible, that the job errored for it.
2. **ACTIVE reference**: ask CFS for the invoice (one call per distinct CFS invoice, in parallel).
   ``amount_due > 0``: CAS has not debited it. ``amount_due == 0``: CAS was paid, so a settlement CSV was
   missed: search the CSVs in the store (``ar/`` and the legacy ``payment-sftp`` bucket) for the number and
   check ``cas_settlements``. A 404 means CAS never got the invoice; any other CFS failure is reported as
   "unknown, retry" with the error as evidence — one bad answer never stops the report.

Every row ends in one action code (:class:`Action`) and a sentence saying what to do.

Example::

    report = triage_stuck_pad(days=20)
    report.summary_by_action()
    report.to_frame().query("action == 'replay_settlement_csv'")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy.engine import Engine

from paynb import db
from paynb.canonical import to_jsonable
from paynb.cfs import CfsClient, CfsInvoiceRef, CfsResult
from paynb.context import Env, resolve_env
from paynb.errors import InputError, PaynbError
from paynb.extras import require
from paynb.formats.settlement_csv import SettlementFile, parse_settlement_csv
from paynb.headless import is_headless
from paynb.ops import settlements as st
from paynb.settings import Settings
from paynb.timez import MAX_DAYS, to_naive_utc, utcnow_naive

if TYPE_CHECKING:
    from paynb.store import Store

REPORT_SCHEMA_VERSION = 1
ZERO = Decimal("0.00")


class Action(StrEnum):
    """What the operator should do about a stuck PAD invoice."""

    WAIT_PAD_ACTIVATION = "wait_pad_activation"
    WAIT_CFS_ACCOUNT = "wait_cfs_account"
    ACCOUNT_FROZEN_NSF = "account_frozen_nsf"
    NO_PAD_CFS_ACCOUNT = "no_pad_cfs_account"
    CHECK_CREATE_INVOICES = "check_create_invoices"
    ESCALATE_CAS_NOT_DEBITED = "escalate_cas_not_debited"
    REPLAY_SETTLEMENT_CSV = "replay_settlement_csv"
    SETTLEMENT_FAILED_MIDWAY = "settlement_failed_midway"
    SETTLEMENT_ROW_NOT_APPLIED = "settlement_row_not_applied"
    ASK_CAS_FOR_CSV = "ask_cas_for_csv"
    CAS_INVOICE_MISSING = "cas_invoice_missing"
    UNKNOWN_RETRY = "unknown_retry"

    @property
    def meaning(self) -> str:
        return ACTION_MEANINGS[self]


ACTION_MEANINGS: dict[Action, str] = {
    Action.WAIT_PAD_ACTIVATION: "not in CFS yet: the account is in its PAD confirmation period",
    Action.WAIT_CFS_ACCOUNT: "not in CFS yet: the CFS account (party/account/site) is not created",
    Action.ACCOUNT_FROZEN_NSF: "not in CFS yet: the account is frozen by an NSF; the customer must pay the -C invoice",
    Action.NO_PAD_CFS_ACCOUNT: "not in CFS yet: the account has no PAD CFS account row",
    Action.CHECK_CREATE_INVOICES: "not in CFS yet although the account is eligible: CREATE_INVOICES errored",
    Action.ESCALATE_CAS_NOT_DEBITED: "in CFS, amount_due > 0: CAS has not debited the customer; escalate to CAS",
    Action.REPLAY_SETTLEMENT_CSV: "paid in CAS; the settlement CSV never reached pay-queue: replay it",
    Action.SETTLEMENT_FAILED_MIDWAY: "paid in CAS; the settlement CSV failed mid-way (processed_on NULL)",
    Action.SETTLEMENT_ROW_NOT_APPLIED: "paid in CAS; the CSV was processed but this invoice's row did not apply",
    Action.ASK_CAS_FOR_CSV: "paid in CAS; no settlement CSV mentions it: ask CAS for the file",
    Action.CAS_INVOICE_MISSING: "pay-db has an ACTIVE reference but CAS has no such invoice (404)",
    Action.UNKNOWN_RETRY: "could not be decided (CFS or store failure): retry",
}


@dataclass(frozen=True)
class TriageRow:
    """One stuck PAD invoice and what to do about it. ``cfs_invoice_number`` is the ACTIVE
    ``invoice_references.invoice_number`` (the rolled-up ``REG…`` number), if any."""

    invoice_id: int
    account: str | None  # payment_accounts.auth_account_id
    payment_account_id: int | None
    amount: Decimal
    created_on: datetime
    age_days: int
    cfs_invoice_number: str | None
    cfs_amount_due: Decimal | None
    action: Action
    action_text: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "invoice_id": self.invoice_id,
            "account": self.account,
            "payment_account_id": self.payment_account_id,
            "amount": self.amount,
            "created_on": self.created_on,
            "age_days": self.age_days,
            "cfs_invoice_number": self.cfs_invoice_number,
            "cfs_amount_due": self.cfs_amount_due,
            "action": self.action.value,
            "action_text": self.action_text,
            "evidence": to_jsonable(self.evidence),
        }


_INVOICE_COLUMNS = ["invoice_id", "account", "payment_account_id", "amount", "created_on", "age_days"]
COLUMNS = [*_INVOICE_COLUMNS, "cfs_invoice_number", "cfs_amount_due", "action", "action_text", "evidence"]


@dataclass(frozen=True)
class TriageReport:
    days: int
    account: str | None
    now_utc: datetime
    rows: tuple[TriageRow, ...]
    cfs_calls: int = 0  # distinct CFS invoices asked for
    files_searched: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.rows)

    def action_for(self, invoice_id: int) -> Action:
        return self.row(invoice_id).action

    def row(self, invoice_id: int) -> TriageRow:
        for r in self.rows:
            if r.invoice_id == invoice_id:
                return r
        raise KeyError(invoice_id)

    def actions(self) -> dict[int, str]:
        """invoice id -> action code."""
        return {r.invoice_id: r.action.value for r in self.rows}

    def to_frame(self) -> pd.DataFrame:
        if not self.rows:
            return pd.DataFrame(columns=COLUMNS)
        records = []
        for r in self.rows:
            rec = {c: getattr(r, c) for c in COLUMNS}
            rec["action"] = r.action.value
            records.append(rec)
        return pd.DataFrame.from_records(records, columns=COLUMNS)

    def summary_by_action(self) -> pd.DataFrame:
        """One line per action: invoices, distinct CFS invoices, amount, oldest age, what it means."""
        cols = ["action", "invoices", "cfs_invoices", "amount", "oldest_days", "meaning"]
        groups: dict[Action, list[TriageRow]] = {}
        for r in self.rows:
            groups.setdefault(r.action, []).append(r)
        records = [
            {
                "action": action.value,
                "invoices": len(rs),
                "cfs_invoices": len({r.cfs_invoice_number for r in rs if r.cfs_invoice_number}),
                "amount": sum((r.amount for r in rs), ZERO),
                "oldest_days": max(r.age_days for r in rs),
                "meaning": action.meaning,
            }
            for action, rs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0].value))
        ]
        return pd.DataFrame.from_records(records, columns=cols)

    def to_dict(self) -> dict[str, Any]:
        summary = self.summary_by_action()
        return {
            "schema_version": REPORT_SCHEMA_VERSION,
            "report": "pad_triage",
            "days": self.days,
            "account": self.account,
            "now_utc": self.now_utc,
            "total_count": len(self.rows),
            "total_amount": sum((r.amount for r in self.rows), ZERO),
            "cfs_calls": self.cfs_calls,
            "files_searched": list(self.files_searched),
            "warnings": list(self.warnings),
            "summary": to_jsonable(summary.to_dict(orient="records")),
            "rows": [r.to_dict() for r in self.rows],
        }


# -- queries ------------------------------------------------------------------------------------------------
_STUCK_SQL = """
SELECT i.id AS invoice_id, i.created_on, i.total, i.payment_account_id, i.cfs_account_id,
       pa.auth_account_id, pa.name AS account_name, pa.has_nsf_invoices, pa.pad_activation_date,
       floor(extract(epoch FROM (:now - i.created_on)) / 86400)::int AS age_days
  FROM invoices i
  LEFT JOIN payment_accounts pa ON pa.id = i.payment_account_id
 WHERE i.invoice_status_code = 'APPROVED'
   AND i.payment_method_code = 'PAD'
   AND i.created_on < :cutoff
   AND (CAST(:account AS varchar) IS NULL OR pa.auth_account_id = :account)
 ORDER BY i.id
"""
_REFS_SQL = """
SELECT id, invoice_id, invoice_number, reference_number, status_code, is_consolidated, created_on
  FROM invoice_references WHERE invoice_id = ANY(:ids) ORDER BY invoice_id, id
"""
# never select bank_account_number (encrypted bank details have no place in a report)
_CFS_ACCOUNTS_SQL = """
SELECT id, account_id, cfs_party, cfs_account, cfs_site, status, payment_method
  FROM cfs_accounts WHERE account_id = ANY(:accounts) OR id = ANY(:ids) ORDER BY id
"""


def effective_cfs_account(rows: Iterable[Mapping[str, Any]], payment_method: str = "PAD") -> dict | None:
    """pay-api's rule (docs/schema.md#cfs_accounts): the row with this payment method whose status is not INACTIVE
    (``find_effective_by_payment_method``), else the latest such row (``find_latest_by_payment_method``)."""
    same = [dict(r) for r in rows if r.get("payment_method") == payment_method]
    live = [r for r in same if r.get("status") != "INACTIVE"]
    pick = live or same
    return max(pick, key=lambda r: r["id"]) if pick else None


def _cfs_brief(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: row.get(k) for k in ("id", "status", "payment_method", "cfs_party", "cfs_account", "cfs_site")}


_REF_FIELDS = ("id", "invoice_number", "reference_number", "status_code", "is_consolidated", "created_on")


def _ref_brief(ref: Mapping[str, Any]) -> dict[str, Any]:
    return {k: ref.get(k) for k in _REF_FIELDS}


# -- the tree -----------------------------------------------------------------------------------------------
def _not_in_cfs(inv: Mapping[str, Any], eff: dict | None, now: datetime) -> tuple[Action, str, dict]:
    """Branch 1 of docs/runbook.md#pad-decision-tree: why CREATE_INVOICES has not rolled this invoice into a CFS invoice."""
    evidence: dict[str, Any] = {
        "cfs_account": _cfs_brief(eff),
        "has_nsf_invoices": inv["has_nsf_invoices"],
        "pad_activation_date": inv["pad_activation_date"],
    }
    if eff is None:
        evidence["skip_reason"] = "no PAD cfs_accounts row"
        text = "the account has no PAD CFS account: check the account's payment method setup in pay-db/auth"
        return Action.NO_PAD_CFS_ACCOUNT, text, evidence
    status = eff.get("status")
    if status == "FREEZE":
        evidence["skip_reason"] = "CFS account FREEZE"
        since = f" since {inv['has_nsf_invoices']:%Y-%m-%d}" if inv["has_nsf_invoices"] else ""
        text = (
            f"account frozen by NSF{since}: customer must pay the -C consolidated invoice (by credit card); "
            "CREATE_INVOICES skips FREEZE accounts until then"
        )
        return Action.ACCOUNT_FROZEN_NSF, text, evidence
    if status == "PENDING_PAD_ACTIVATION":
        evidence["skip_reason"] = "CFS account PENDING_PAD_ACTIVATION"
        when = inv["pad_activation_date"]
        if when is None:
            text = (
                "PAD activation pending with no activation date: check payment_accounts.pad_activation_date"
            )
        elif when > now:
            text = (
                f"wait for PAD activation on {when:%Y-%m-%d}; CREATE_INVOICES rolls it up the evening after"
            )
        else:
            text = (
                f"PAD activation date {when:%Y-%m-%d} has passed but the CFS account is still "
                "PENDING_PAD_ACTIVATION: check the ACTIVATE_PAD_ACCOUNTS job (daily 00:15)"
            )
        return Action.WAIT_PAD_ACTIVATION, text, evidence
    if status == "PENDING":
        evidence["skip_reason"] = "CFS account PENDING"
        text = (
            "the CFS party/account/site is not created yet: check the CREATE_CFS_ACCOUNTS job "
            "(every 5 minutes) and its error email"
        )
        return Action.WAIT_CFS_ACCOUNT, text, evidence
    if inv["has_nsf_invoices"] is not None:
        evidence["skip_reason"] = "payment account NSF lock (has_nsf_invoices)"
        text = (
            f"account locked by NSF since {inv['has_nsf_invoices']:%Y-%m-%d}: customer must pay the -C "
            f"consolidated invoice (CFS account status is {status})"
        )
        return Action.ACCOUNT_FROZEN_NSF, text, evidence
    if status in ("ACTIVE", "INACTIVE"):
        evidence["skip_reason"] = f"none: CFS account {status} is eligible"
        text = (
            "CREATE_INVOICES should have picked it up: check the job's error email "
            "('Error on creating PAD invoice') for this account"
        )
        return Action.CHECK_CREATE_INVOICES, text, evidence
    evidence["skip_reason"] = f"unexpected CFS account status {status!r}"
    return (
        Action.UNKNOWN_RETRY,
        f"unexpected PAD CFS account status {status!r}: look at cfs_accounts",
        evidence,
    )


@dataclass
class _CsvIndex:
    """Which settlement files mention which CFS invoice numbers (built once per run, lazily)."""

    hits: dict[str, list[dict]]
    files: list[str]
    problems: list[str]
    guards: dict[str, list[dict]]
    searched: bool


def _build_csv_index(
    numbers: set[str],
    *,
    settings: Settings | None,
    store: Store | None,
    legacy_store: Store | None,
    since: date | None,
    engine: Engine,
    progress: bool,
) -> _CsvIndex:
    sources, problems = st.settlement_sources(settings, store=store, legacy_store=legacy_store)
    refs, list_problems = st.list_settlement_files(sources, since=since)
    problems += list_problems
    hits: dict[str, list[dict]] = {}
    from tqdm.auto import tqdm

    for ref in tqdm(refs, desc="settlement CSVs", unit="file", disable=not progress, leave=False):
        try:
            parsed: SettlementFile = parse_settlement_csv(st.read_settlement_ref(ref, sources), file=ref.ref)
        except PaynbError as err:
            problems.append(str(err).splitlines()[0])  # names the file and line
            continue
        for row in parsed.rows:
            if row.target_transaction_number not in numbers:
                continue
            entry = next(
                (h for h in hits.setdefault(row.target_transaction_number, []) if h["ref"] == ref.ref), None
            )
            if entry is None:
                nsf_rows = sum(1 for r in parsed.rows if r.is_nsf_risk)
                entry = {**ref.to_dict(), "lines": [], "records": [], "file_nsf_risk_rows": nsf_rows}
                hits[row.target_transaction_number].append(entry)
            entry["lines"].append(row.line_number)
            record = {"line": row.line_number, "record_type": row.record_type}
            record |= {"status": row.target_transaction_status, "amount": row.application_amount}
            entry["records"].append({**record, "nsf_risk": row.is_nsf_risk})
    names = {h["file_name"] for hs in hits.values() for h in hs}
    with db.read_connection(engine) as conn:
        guards = st.guard_rows(conn, names)
    return _CsvIndex(hits, [r.ref for r in refs], problems, guards, searched=bool(sources))


def _settled_in_cas(number: str, index: _CsvIndex) -> tuple[Action, str, dict]:
    """Branch 2, amount_due == 0: find the CSV that should have paid it and its guard row."""
    files = []
    for hit in index.hits.get(number, []):
        rows = index.guards.get(hit["file_name"], [])
        paid = any(not r["nsf_risk"] and r["status"].lower() == "fully paid" for r in hit["records"])
        nsf_risk = any(r["nsf_risk"] for r in hit["records"])
        settlements = [
            {"id": g["id"], "received_on": g["received_on"], "processed_on": g["processed_on"]} for g in rows
        ]
        guard = st.guard_state(rows)
        files.append(
            {
                **hit,
                "pays_invoice": paid,
                "nsf_risk": nsf_risk,
                "cas_settlements": settlements,
                "guard_state": guard,
            }
        )
    evidence: dict[str, Any] = {"settlement_files": files}
    if not files:
        if not index.searched or (index.problems and not index.files):
            evidence["store_problems"] = index.problems
            text = "CAS shows it paid but the settlement CSVs could not be searched: fix the store settings and retry"
            return Action.UNKNOWN_RETRY, text, evidence
        text = f"no CSV found: ask CAS for the settlement file that paid {number} (searched {len(index.files)} files)"
        return Action.ASK_CAS_FOR_CSV, text, evidence
    # prefer the file that pays the invoice; among those, the one never processed, then a failed one
    order = {"absent": 0, "processing_failed": 1, "processed": 2}
    best = min(files, key=lambda f: (not f["pays_invoice"], order[f["guard_state"]], f["ref"]))
    nsf_note = (
        f" (the file has {best['file_nsf_risk_rows']} NSF-risk row(s): the plan excludes them)"
        if best["file_nsf_risk_rows"]
        else ""
    )
    evidence["file"] = best["ref"]
    if best["guard_state"] == "absent":
        text = f"replay {best['file_name']}: see `paynb settlement plan-replay {best['ref']}`{nsf_note}"
        return Action.REPLAY_SETTLEMENT_CSV, text, evidence
    if best["guard_state"] == "processing_failed":
        received = best["cas_settlements"][0]["received_on"]
        text = (
            f"file processing failed mid-way (processed_on NULL, received {received:%Y-%m-%d %H:%M} UTC): find the "
            f"cause in the reconciliation error email, then `paynb settlement plan-replay {best['ref']}`{nsf_note}"
        )
        return Action.SETTLEMENT_FAILED_MIDWAY, text, evidence
    processed = best["cas_settlements"][-1]["processed_on"]
    text = (
        f"{best['file_name']} was processed on {processed:%Y-%m-%d} but this invoice is still APPROVED: its row "
        f"failed (check the error email); `paynb settlement plan-replay {best['ref']}` shows what a replay does"
    )
    return Action.SETTLEMENT_ROW_NOT_APPLIED, text, evidence


def _cfs_failed(result: CfsResult, ref: CfsInvoiceRef) -> tuple[Action, str, dict]:
    evidence = {
        "cfs_site": {"party": ref.party, "account": ref.account, "site": ref.site},
        "http_status": result.http_status,
        "error_class": result.error_class,
        "message": result.message,
    }
    if result.status == "not_found":
        text = (
            f"CAS has no such invoice: {ref.invoice_number} on site {ref.party}/{ref.account}/{ref.site}; check the "
            "CREATE_INVOICES error email and ask CAS before cancelling and re-creating the reference"
        )
        return Action.CAS_INVOICE_MISSING, text, evidence
    text = (
        f"CFS did not answer for {ref.invoice_number} ({result.message or result.error_class}): retry later"
    )
    return Action.UNKNOWN_RETRY, text, evidence


def triage_stuck_pad(
    days: int = 20,
    account: str | None = None,
    *,
    env: Env | None = None,
    settings: Settings | None = None,
    engine: Engine | None = None,
    cfs: CfsClient | None = None,
    store: Store | None = None,
    legacy_store: Store | None = None,
    now: datetime | None = None,
    progress: bool = True,
) -> TriageReport:
    """Classify every PAD invoice APPROVED for more than ``days`` days (optionally one auth account).

    pay-db and CFS come from ``env`` (default: the environment's settings); ``settings``/``engine``/``cfs``
    still override it. The settlement CSVs are searched in the settings' buckets, or only in ``store`` and
    ``legacy_store`` when given. Read-only: pay-db through a read-only session, CFS GETs only.
    """
    if not 0 <= days <= MAX_DAYS:  # a larger one overflows the date arithmetic below
        raise InputError(f"must be 0 or more and at most {MAX_DAYS}, got {days}", field="days")
    progress = progress and not is_headless()  # tqdm.auto bars are widgets in a kernel
    account = (account or "").strip() or None
    owns_client = env is None and cfs is None  # a CFS client made here is closed here
    env = resolve_env(env, settings=settings, engine=engine, cfs=cfs)
    settings, engine = env.settings, env.engine
    now_utc = to_naive_utc(now) if now else utcnow_naive()
    cutoff = now_utc - timedelta(days=days)

    with db.read_connection(engine) as conn:
        invoices = db.fetch_all(conn, _STUCK_SQL, {"now": now_utc, "cutoff": cutoff, "account": account})
        ids = [r["invoice_id"] for r in invoices]
        refs: dict[int, list[dict]] = {}
        cfs_rows: list[dict] = []
        if ids:
            for r in db.fetch_all(conn, _REFS_SQL, {"ids": ids}):
                refs.setdefault(r["invoice_id"], []).append(r)
            accounts = sorted({r["payment_account_id"] for r in invoices if r["payment_account_id"]})
            cfs_ids = sorted({r["cfs_account_id"] for r in invoices if r["cfs_account_id"]})
            cfs_rows = db.fetch_all(conn, _CFS_ACCOUNTS_SQL, {"accounts": accounts, "ids": cfs_ids})
    by_id = {r["id"]: r for r in cfs_rows}
    by_account: dict[int, list[dict]] = {}
    for r in cfs_rows:
        if r["account_id"] is not None:
            by_account.setdefault(r["account_id"], []).append(r)

    decided: dict[int, tuple[Action, str, dict, str | None, Decimal | None]] = {}
    pending: dict[int, tuple[CfsInvoiceRef, dict]] = {}
    for inv in invoices:
        inv_refs = refs.get(inv["invoice_id"], [])
        active = [r for r in inv_refs if r["status_code"] == "ACTIVE"]
        eff = effective_cfs_account(by_account.get(inv["payment_account_id"], []))
        base = {"references": [_ref_brief(r) for r in inv_refs]}
        if not active:
            action, text, ev = _not_in_cfs(inv, eff, now_utc)
            decided[inv["invoice_id"]] = (action, text, {**base, **ev}, None, None)
            continue
        ref = active[-1]
        site = by_id.get(inv["cfs_account_id"]) or eff
        base["cfs_account"] = _cfs_brief(site)
        if len(active) > 1:
            base["note"] = f"{len(active)} ACTIVE references; using the latest"
        if site is None or not all(site.get(k) for k in ("cfs_party", "cfs_account", "cfs_site")):
            text = f"{ref['invoice_number']} has no CFS party/account/site in pay-db to ask CFS with: check cfs_accounts"
            decided[inv["invoice_id"]] = (Action.UNKNOWN_RETRY, text, base, ref["invoice_number"], None)
            continue
        where = (str(site["cfs_party"]), str(site["cfs_account"]), str(site["cfs_site"]))
        key = CfsInvoiceRef(*where, str(ref["invoice_number"]))
        pending[inv["invoice_id"]] = (key, base)

    results: dict[CfsInvoiceRef, CfsResult] = {}
    warnings: list[str] = []
    if pending:
        client = env.cfs
        try:
            results = client.get_invoices((k for k, _ in pending.values()), progress=progress)
        finally:
            if owns_client:
                client.close()

    # amount_due == 0 needs the CSV search; do it once for all of them
    settled = {k.invoice_number for k, _ in pending.values() if _is_settled(results.get(k))}
    index: _CsvIndex | None = None
    if settled:
        oldest = min(inv["created_on"] for inv in invoices if inv["invoice_id"] in pending)
        since = (oldest - timedelta(days=1)).date()
        stores = {"store": store, "legacy_store": legacy_store}
        index = _build_csv_index(
            settled, settings=settings, **stores, since=since, engine=engine, progress=progress
        )
        warnings += [f"store: {p}" for p in index.problems]

    for invoice_id, (key, base) in pending.items():
        result = results.get(key)
        if result is None:  # cannot happen with get_invoices, but never crash the report
            decided[invoice_id] = (
                Action.UNKNOWN_RETRY,
                "no CFS result: retry",
                base,
                key.invoice_number,
                None,
            )
            continue
        if not result.ok:
            action, text, ev = _cfs_failed(result, key)
            decided[invoice_id] = (action, text, {**base, **ev}, key.invoice_number, None)
            continue
        due = result.amount_due
        answer = result.data or {}
        cfs_ev = {
            "cfs_site": {"party": key.party, "account": key.account, "site": key.site},
            "cfs_total": answer.get("total"),
            "cfs_amount_due": due,
            "cfs_status": answer.get("status"),
        }
        if not isinstance(due, Decimal):
            text = f"CFS answered without a usable amount_due ({due!r}): retry"
            decided[invoice_id] = (Action.UNKNOWN_RETRY, text, {**base, **cfs_ev}, key.invoice_number, None)
        elif due > 0:
            text = (
                f"not yet debited by CAS (amount_due {due} of {cfs_ev['cfs_total']}); escalate to CAS "
                f"with CFS invoice {key.invoice_number}"
            )
            decided[invoice_id] = (
                Action.ESCALATE_CAS_NOT_DEBITED,
                text,
                {**base, **cfs_ev},
                key.invoice_number,
                due,
            )
        else:
            assert index is not None
            action, text, ev = _settled_in_cas(key.invoice_number, index)
            decided[invoice_id] = (action, text, {**base, **cfs_ev, **ev}, key.invoice_number, due)

    rows = []
    for inv in invoices:
        action, text, evidence, number, due = decided[inv["invoice_id"]]
        rows.append(
            TriageRow(
                invoice_id=int(inv["invoice_id"]),
                account=inv["auth_account_id"],
                payment_account_id=inv["payment_account_id"],
                amount=db.to_money(inv["total"]) or ZERO,
                created_on=inv["created_on"],
                age_days=int(inv["age_days"]),
                cfs_invoice_number=number,
                cfs_amount_due=due,
                action=action,
                action_text=text,
                evidence=evidence,
            )
        )
    failures = sum(1 for r in results.values() if not r.ok and r.status != "not_found")
    if failures:
        warnings.append(f"{failures} CFS invoice(s) could not be read: their rows say unknown_retry")
    return TriageReport(
        days=days,
        account=account,
        now_utc=now_utc,
        rows=tuple(rows),
        cfs_calls=len(results),
        files_searched=tuple(index.files) if index else (),
        warnings=tuple(warnings),
    )


def _is_settled(result: CfsResult | None) -> bool:
    return bool(result and result.ok and isinstance(result.amount_due, Decimal) and result.amount_due <= 0)


# -- notebook helpers ---------------------------------------------------------------------------------------
def invoice_picker(report: TriageReport, *, interactive: bool = True) -> Any | None:
    """An ipywidgets dropdown of the report's invoices showing the chosen row's action and evidence.
    Returns None (and builds nothing) when not ``interactive`` or when running headless, so a batch run
    never waits on a widget."""
    if not interactive or is_headless() or not report.rows:
        return None
    import json

    widgets = require("ipywidgets", "the invoice picker")

    options = [
        (f"{r.invoice_id} · {r.action.value} · {r.cfs_invoice_number or '-'}", r.invoice_id)
        for r in report.rows
    ]
    dropdown = widgets.Dropdown(options=options, description="Invoice", layout=widgets.Layout(width="70%"))
    out = widgets.Output()

    def show(invoice_id: int) -> None:
        row = report.row(invoice_id)
        out.clear_output()
        with out:
            print(f"{row.action.value}: {row.action_text}\n")
            print(json.dumps(row.to_dict(), indent=2, default=str))

    dropdown.observe(lambda change: show(change["new"]), names="value")
    show(report.rows[0].invoice_id)
    return widgets.VBox([dropdown, out])


def drill_down(report: TriageReport, action: str | None = None) -> pd.DataFrame:
    """The report as a readable table (no evidence column), optionally one action only."""
    df = report.to_frame().drop(columns=["evidence"])
    if action:
        df = df[df["action"] == action]
    return df.reset_index(drop=True)


_REPLAY_ACTIONS = (
    Action.REPLAY_SETTLEMENT_CSV,
    Action.SETTLEMENT_FAILED_MIDWAY,
    Action.SETTLEMENT_ROW_NOT_APPLIED,
)


def settlement_refs(report: TriageReport) -> Sequence[str]:
    """The settlement files the report says to replay (for ``plan_replay``), most invoices first."""
    counts: dict[str, int] = {}
    for r in report.rows:
        ref = r.evidence.get("file")
        if ref and r.action in _REPLAY_ACTIONS:
            counts[ref] = counts.get(ref, 0) + 1
    return [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def plot_summary(report: TriageReport) -> Any:
    """A horizontal bar chart of invoices per action (a matplotlib Figure), worst-first colours: red for
    data fixes (replay, missing in CAS), orange for waiting on someone else, grey for unknown."""
    plt = require("matplotlib.pyplot", "the triage chart")

    summary = report.summary_by_action()
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(summary), 1) + 1.4))
    if summary.empty:
        ax.text(0.5, 0.5, "No stuck PAD invoices", ha="center", va="center")
        ax.set_axis_off()
        return fig
    colours = {
        Action.REPLAY_SETTLEMENT_CSV: "#c0392b",
        Action.SETTLEMENT_FAILED_MIDWAY: "#c0392b",
        Action.SETTLEMENT_ROW_NOT_APPLIED: "#c0392b",
        Action.CAS_INVOICE_MISSING: "#c0392b",
        Action.CHECK_CREATE_INVOICES: "#e67e22",
        Action.ESCALATE_CAS_NOT_DEBITED: "#e67e22",
        Action.ASK_CAS_FOR_CSV: "#e67e22",
        Action.UNKNOWN_RETRY: "#7f8c8d",
    }
    ordered = summary.iloc[::-1]
    bar_colours = [colours.get(Action(a), "#2980b9") for a in ordered["action"]]
    ax.barh(ordered["action"], ordered["invoices"], color=bar_colours)
    for y, (n, amount) in enumerate(zip(ordered["invoices"], ordered["amount"], strict=True)):
        ax.text(n, y, f" {n} (${amount})", va="center", fontsize=9)
    ax.set_xlabel("stuck PAD invoices")
    ax.set_title(f"PAD invoices APPROVED > {report.days} days, by action ({len(report)} in all)")
    ax.margins(x=0.25)
    fig.tight_layout()
    plt.close(fig)  # the caller displays it; do not also draw it twice in a notebook
    return fig


def suggest_replay_file(days: int = 20, **kwargs: Any) -> str | None:
    """The settlement file ``triage_stuck_pad`` most often says to replay, or None."""
    kwargs.setdefault("progress", False)
    refs = settlement_refs(triage_stuck_pad(days, **kwargs))
    return refs[0] if refs else None
