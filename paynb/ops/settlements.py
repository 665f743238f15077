"""CAS settlement CSVs in the object store, and a read-only replay planner (pay-domain.md §4, §8).

Where the files live:

* now: ``ar/<file>`` in the GCS bucket ``settings.bucket`` (``FTP_POLLER_BUCKET_NAME``);
* before 2025-08: bare ``<file>`` in the MinIO bucket ``settings.legacy_settlement_bucket`` (``payment-sftp``).

A file is named by a *reference*: a local path, ``ar/<file>`` (current bucket), ``<legacy bucket>/<file>``
(legacy bucket) or a bare ``<file>`` (looked up in ``ar/`` first, then the legacy bucket).

:func:`plan_replay` answers "what would re-processing this file do?" without changing anything: the
``cas_settlements`` guard row, which rows would move which invoices, which are already applied, the NSF-risk
rows (``Not PAID``, ``PADR``, ``PAYR``), and a filtered CSV holding only the safe, not-yet-applied rows. The
filtered CSV gets a new name (``ar/<stem>.replay-<sha8>.csv``), so publishing it needs no guard deletion and
the original (with its NSF rows) stays guarded.

The ``settlement.replay`` fix (:class:`ReplayFix`, on :mod:`paynb.fixes`) applies a confirmed plan: it
writes the filtered CSV under its new name (an intent first; never over another object), then, in one
pay-db transaction on the writer role, makes the guard change pay-queue would have made for the original
file (``processed_on`` set, or a row inserted when the original never reached pay-queue) so monitors stop
flagging it while the original stays guarded, and prints the queue message and ``gcloud`` command to
publish. Why this choice: ``docs/settlement-replay.md``.

Example::

    plan = plan_replay("ar/BCR_PAYMENT_APPL_20260730.csv")
    plan.sha256, plan.body["counts"], plan.body["queue_message"]
    apply_fix(REPLAY_FIX, plan, confirm=plan.sha256, ticket="OPS-7", reason="file failed mid-way")
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy.engine import Engine

from paynb import db
from paynb.canonical import sha256_hex
from paynb.errors import InputError, ParseError, PlanError, StoreError
from paynb.fixes import Fix, FixRun, Outcome, register_fix
from paynb.formats.settlement_csv import (
    RecordType,
    SettlementFile,
    SettlementRow,
    TargetStatus,
    TargetType,
    parse_settlement_csv,
    write_settlement_csv,
)
from paynb.ids import consolidated_invoice_number
from paynb.ops.intents import write_object_once
from paynb.plan import Plan
from paynb.settings import Settings, get_settings
from paynb.store import Store, open_store

if TYPE_CHECKING:
    from paynb.context import Env

AR_FOLDER = "ar"
EVENT_TYPE = "bc.registry.payment.casSettlementUploaded"
EVENT_SOURCE = "sbc-pay-FTP-POLLER"  # what the poller sends; a replay looks exactly like it
DEFAULT_TOPIC = "ftp-poller-payment-reconciliation-dev"
PLAN_KIND = "settlement.replay"
_NAME_DATE = re.compile(r"(20[0-9]{2})([01][0-9])([0-3][0-9])")


# -- where the files are ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SettlementSource:
    """One place settlement CSVs live: ``bucket`` (``ar/`` folder) or ``legacy`` (bucket root)."""

    name: str  # "bucket" | "legacy"
    store: Store
    folder: str  # "ar" or "" (legacy: bare file names)
    bucket: str  # for references and messages; no credentials

    def key_for(self, file_name: str) -> str:
        return f"{self.folder}/{file_name}" if self.folder else file_name

    def ref_for(self, file_name: str) -> str:
        return f"{AR_FOLDER}/{file_name}" if self.name == "bucket" else f"{self.bucket}/{file_name}"


@dataclass(frozen=True)
class SettlementFileRef:
    """A settlement CSV found somewhere: ``ref`` is what ``paynb settlement plan-replay`` accepts."""

    source: str  # "bucket" | "legacy" | "local"
    ref: str
    key: str  # store key, or the local path
    file_name: str  # bare name, as in cas_settlements.file_name
    url: str  # s3://bucket/key or file path (no credentials)

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "ref": self.ref, "key": self.key, "file_name": self.file_name,
                "url": self.url}  # fmt: skip


def settlement_sources(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    legacy_store: Store | None = None,
) -> tuple[list[SettlementSource], list[str]]:
    """The current bucket (``store`` or ``s3://<settings.bucket>``) and the legacy bucket (``legacy_store``
    or ``s3://<settings.legacy_settlement_bucket>``). A given ``store`` means "search only what I give you":
    the legacy bucket is then used only when ``legacy_store`` is given too. Returns (sources, problems):
    a bucket that cannot be opened is a problem to report, not an exception."""
    sources: list[SettlementSource] = []
    problems: list[str] = []
    explicit = store is not None or legacy_store is not None
    if store is None and not explicit:
        settings = settings or get_settings()
        if settings.bucket and settings.s3_endpoint:
            try:
                store = open_store(f"s3://{settings.bucket}", settings)
            except StoreError as err:
                problems.append(f"bucket {settings.bucket}: {err}")
        else:
            problems.append(
                "no bucket configured (PAYNB_BUCKET / FTP_POLLER_BUCKET_NAME and PAYNB_S3_ENDPOINT)"
            )
    if store is not None:
        sources.append(SettlementSource("bucket", store, AR_FOLDER, _bucket_name(store)))
    if legacy_store is None and not explicit:
        settings = settings or get_settings()
        if settings.legacy_settlement_bucket and settings.s3_endpoint:
            try:
                legacy_store = open_store(f"s3://{settings.legacy_settlement_bucket}", settings)
            except StoreError as err:
                problems.append(f"legacy bucket {settings.legacy_settlement_bucket}: {err}")
    if legacy_store is not None:
        sources.append(SettlementSource("legacy", legacy_store, "", _bucket_name(legacy_store)))
    return sources, problems


def _bucket_name(store: Store) -> str:
    bucket = getattr(store, "bucket", None)
    if bucket:
        return str(bucket)
    return Path(store.url.partition("://")[2]).name or store.url


def list_settlement_files(
    sources: Sequence[SettlementSource], *, since: date | None = None
) -> tuple[list[SettlementFileRef], list[str]]:
    """CSV files (``*.csv``, any case) of every source, in key order. With ``since``, files whose name
    carries a date (``…YYYYMMDD…``) before it are left out; undated names are always kept. A source that
    cannot be listed is reported in the second list (a missing legacy bucket is normal after 2025-08)."""
    found: list[SettlementFileRef] = []
    problems: list[str] = []
    for src in sources:
        prefix = f"{src.folder}/" if src.folder else ""
        try:
            items = list(src.store.list(prefix, recursive=False))
        except StoreError as err:
            problems.append(f"{src.name} ({src.bucket}): {str(err).splitlines()[0]}")
            continue
        for info in items:
            if info.is_prefix or not info.key.lower().endswith(".csv"):
                continue
            name = info.key.rsplit("/", 1)[-1]
            if since is not None:
                dated = _name_date(name)
                if dated is not None and dated < since:
                    continue
            found.append(
                SettlementFileRef(src.name, src.ref_for(name), info.key, name, src.store.url_for(info.key))
            )
    return found, problems


def _name_date(name: str) -> date | None:
    match = _NAME_DATE.search(name)
    if not match:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def read_settlement_ref(ref: SettlementFileRef, sources: Sequence[SettlementSource]) -> bytes:
    if ref.source == "local":
        try:
            return Path(ref.key).read_bytes()
        except OSError as err:
            raise InputError(f"cannot read the file: {err.strerror}", file=ref.key) from None
    src = next((s for s in sources if s.name == ref.source), None)
    if src is None:
        raise StoreError(f"no {ref.source} store to read {ref.ref} from")
    return src.store.get(ref.key)


def resolve_settlement_file(file_key_or_path: str, sources: Sequence[SettlementSource]) -> SettlementFileRef:
    """A local path, ``ar/<file>``, ``<legacy bucket>/<file>`` or a bare name -> where the file is.
    Raises InputError naming what was tried when it is nowhere."""
    text = str(file_key_or_path).strip()
    if not text:
        raise InputError("give a settlement CSV: a local path or a store key like ar/BCR_PAYMENT_APPL_20260730.csv",
                         field="file")  # fmt: skip
    local = Path(text)
    if local.is_file():
        return SettlementFileRef("local", str(local), str(local), local.name, str(local.resolve()))
    if local.is_dir():
        raise InputError("is a folder, not a settlement CSV", file=text)
    tried: list[str] = [f"local file {text}"]
    by_name = {s.name: s for s in sources}
    candidates: list[tuple[SettlementSource, str]] = []
    head, sep, rest = text.partition("/")
    if sep and head == AR_FOLDER and "bucket" in by_name and rest and "/" not in rest:
        candidates.append((by_name["bucket"], rest))
    elif sep and "legacy" in by_name and head == by_name["legacy"].bucket and rest and "/" not in rest:
        candidates.append((by_name["legacy"], rest))
    elif not sep:
        candidates.extend((s, text) for s in sources)
    for src, name in candidates:
        key = src.key_for(name)
        tried.append(f"{src.store.url_for(key)}")
        try:
            info = src.store.stat(key)
        except StoreError as err:
            raise StoreError(f"cannot look for {text} in {src.bucket}: {str(err).splitlines()[0]}") from None
        if info is not None:
            return SettlementFileRef(src.name, src.ref_for(name), key, name, src.store.url_for(key))
    if not sources:
        tried.append("no bucket is configured (PAYNB_BUCKET, PAYNB_S3_ENDPOINT)")
    raise InputError("settlement file not found (tried: " + "; ".join(tried) + ")", file=text)


def load_settlement_file(file_key_or_path: str, *, settings: Settings | None = None) -> SettlementFile:
    """Parse a settlement CSV given as a local path, ``ar/<file>``, ``<legacy bucket>/<file>`` or a bare
    name (what ``paynb pad triage`` prints), read from wherever :func:`resolve_settlement_file` finds it."""
    local = Path(str(file_key_or_path).strip())
    sources, _ = ([], []) if local.is_file() else settlement_sources(settings)
    ref = resolve_settlement_file(str(file_key_or_path), sources)
    return parse_settlement_csv(read_settlement_ref(ref, sources), file=ref.ref)


# -- the replay plan ----------------------------------------------------------------------------------------
class Disposition:
    """What a replay would do with one CSV row."""

    APPLY = "apply"  # safe and not yet applied: goes into the filtered CSV
    ALREADY_APPLIED = "already_applied"
    NSF_RISK = "nsf_risk"  # Not PAID / PADR / PAYR: never replayed by this planner
    BLOCKED = "blocked"  # pay-queue would log an error for the row, or abort the file
    NO_EFFECT = "no_effect"  # logged or skipped by pay-queue
    UNSUPPORTED = "unsupported"  # unknown record type / status / target type, or ONAP

    ALL = (APPLY, ALREADY_APPLIED, NSF_RISK, BLOCKED, NO_EFFECT, UNSUPPORTED)


@dataclass
class _Context:
    refs: dict[str, list[dict]]  # invoice number -> references joined with their invoice
    payments: dict[str, list[dict]]  # invoice number -> payments
    nsf_numbers: set[str]
    credits: set[str]  # credits.cfs_identifier
    applied_credit_ids: set[int]  # applied_credits.application_id
    account_cfs: dict[int, set[str]]  # payment account id -> its cfs_accounts.cfs_account values
    paid_in_file: dict[str, int] = field(default_factory=dict)  # number -> first line that pays it


@dataclass(frozen=True)
class RowPlan:
    line: int
    record_type: str
    source_number: str
    target_type: str
    target_number: str
    status: str
    amount: Decimal
    customer_account: str
    disposition: str
    reason: str
    nsf_risk: bool
    changes: tuple[dict, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "record_type": self.record_type,
            "source_number": self.source_number,
            "target_type": self.target_type,
            "target_number": self.target_number,
            "status": self.status,
            "amount": self.amount,
            "customer_account": self.customer_account,
            "disposition": self.disposition,
            "reason": self.reason,
            "nsf_risk": self.nsf_risk,
            "changes": list(self.changes),
        }


_REFS_SQL = """
SELECT ir.id AS reference_id, ir.invoice_id, ir.invoice_number, ir.status_code, ir.is_consolidated,
       i.invoice_status_code, i.payment_method_code, i.total, i.paid, i.payment_account_id,
       ca.cfs_account AS invoice_cfs_account
  FROM invoice_references ir
  JOIN invoices i ON i.id = ir.invoice_id
  LEFT JOIN cfs_accounts ca ON ca.id = i.cfs_account_id
 WHERE ir.invoice_number = ANY(:numbers)
 ORDER BY ir.invoice_number, ir.invoice_id, ir.id
"""
_PAYMENTS_SQL = """
SELECT id, invoice_number, receipt_number, payment_status_code, paid_amount
  FROM payments WHERE invoice_number = ANY(:numbers) ORDER BY id
"""
_NSF_SQL = "SELECT DISTINCT invoice_number FROM non_sufficient_funds WHERE invoice_number = ANY(:numbers)"
_CREDITS_SQL = "SELECT DISTINCT cfs_identifier FROM credits WHERE cfs_identifier = ANY(:ids)"
_APPLIED_SQL = "SELECT DISTINCT application_id FROM applied_credits WHERE application_id = ANY(:ids)"
_ACCOUNTS_SQL = """
SELECT account_id, cfs_account FROM cfs_accounts WHERE account_id = ANY(:ids) AND cfs_account IS NOT NULL
"""
GUARD_SQL = """
SELECT id, file_name, received_on, processed_on FROM cas_settlements WHERE file_name = ANY(:names) ORDER BY id
"""
DELETE_GUARD_SQL = "DELETE FROM cas_settlements WHERE id = :id AND file_name = :file_name"
# what pay-queue does when a file finishes (payment_reconciliations.py), with paynb's clock (naive UTC)
FINISH_GUARD_SQL = (
    "UPDATE cas_settlements SET processed_on = (now() AT TIME ZONE 'UTC')"
    " WHERE id = :id AND file_name = :file_name AND processed_on IS NULL"
)
# what pay-queue does for a file it sees first (_create_cas_settlement) and then finishes, in one step
INSERT_GUARD_SQL = (
    "INSERT INTO cas_settlements (file_name, received_on, processed_on)"
    " VALUES (:file_name, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')"
)


def guard_rows(conn, names: Iterable[str]) -> dict[str, list[dict]]:
    """``cas_settlements`` rows by file name (the table has no unique constraint: a list per name)."""
    wanted = sorted(set(names))
    out: dict[str, list[dict]] = {n: [] for n in wanted}
    if not wanted:
        return out
    for row in db.fetch_all(conn, GUARD_SQL, {"names": wanted}):
        out.setdefault(row["file_name"], []).append(row)
    return out


def guard_state(rows: Sequence[Mapping[str, Any]]) -> str:
    """``absent`` (never reached the queue), ``processing_failed`` (a row with processed_on NULL) or
    ``processed`` (also after a replay apply closed the original's row: ``docs/settlement-replay.md``)."""
    if not rows:
        return "absent"
    if any(r.get("processed_on") is None for r in rows):
        return "processing_failed"
    return "processed"


def _load_context(conn, parsed: SettlementFile) -> _Context:
    numbers = sorted({r.target_transaction_number for r in parsed.rows if r.target_transaction_number})
    wanted = sorted({*numbers, *(consolidated_invoice_number(n) for n in numbers)})
    refs: dict[str, list[dict]] = {}
    for row in db.fetch_all(conn, _REFS_SQL, {"numbers": wanted}):
        refs.setdefault(row["invoice_number"], []).append(row)
    payments: dict[str, list[dict]] = {}
    for row in db.fetch_all(conn, _PAYMENTS_SQL, {"numbers": numbers}):
        payments.setdefault(row["invoice_number"], []).append(row)
    nsf = {r["invoice_number"] for r in db.fetch_all(conn, _NSF_SQL, {"numbers": numbers})}
    sources = sorted({r.source_transaction_number for r in parsed.rows if r.source_transaction_number})
    credits = {r["cfs_identifier"] for r in db.fetch_all(conn, _CREDITS_SQL, {"ids": sources})}
    app_ids = sorted({r.application_id for r in parsed.rows if r.application_id is not None})
    applied = {int(r["application_id"]) for r in db.fetch_all(conn, _APPLIED_SQL, {"ids": app_ids})}
    account_ids = sorted(
        {r["payment_account_id"] for rs in refs.values() for r in rs if r["payment_account_id"]}
    )
    account_cfs: dict[int, set[str]] = {}
    for row in db.fetch_all(conn, _ACCOUNTS_SQL, {"ids": account_ids}):
        account_cfs.setdefault(int(row["account_id"]), set()).add(str(row["cfs_account"]))
    return _Context(refs, payments, nsf, credits, applied, account_cfs)


def _change(ref: Mapping[str, Any], to_status: str) -> dict[str, Any]:
    return {
        "invoice_id": ref["invoice_id"],
        "reference_id": ref["reference_id"],
        "from_status": ref["invoice_status_code"],
        "to_status": to_status,
        "total": db.to_money(ref["total"]),
        "payment_method": ref["payment_method_code"],
    }


def _account_mismatch(refs: Sequence[Mapping[str, Any]], account: str, ctx: _Context) -> dict | None:
    """The first reference whose invoice's CFS account differs from the CSV ``Customer Account``
    (sbc-pay's ``_validate_account`` raises, which aborts the rest of the file)."""
    for ref in refs:
        expected = ref.get("invoice_cfs_account")
        known = (
            {str(expected)} if expected else ctx.account_cfs.get(int(ref["payment_account_id"] or 0), set())
        )
        if known and account not in known:
            return {"invoice_id": ref["invoice_id"], "cfs_account": sorted(known)}
    return None


def _classify(row: SettlementRow, ctx: _Context) -> tuple[str, str, tuple[dict, ...]]:
    """(disposition, reason, invoice changes) for one row, following pay-queue's reconcile_payments."""
    rtype = row.record_type_enum
    status = row.status
    number = row.target_transaction_number
    refs = ctx.refs.get(number, [])
    active = [r for r in refs if r["status_code"] == "ACTIVE"]
    completed = [r for r in refs if r["status_code"] == "COMPLETED"]
    if row.is_nsf_risk:
        if number in ctx.nsf_numbers or any(
            p["payment_status_code"] == "FAILED" for p in ctx.payments.get(number, [])
        ):
            return (
                Disposition.NSF_RISK,
                "NSF already recorded for this invoice (pay-queue would ignore it); never replayed",
                (),
            )
        paid = [r for r in completed if r["payment_method_code"] == "PAD"]
        ids = ", ".join(str(r["invoice_id"]) for r in paid) or "none yet"
        return (
            Disposition.NSF_RISK,
            f"would run the NSF branch: freeze CFS account {row.customer_account}, set has_nsf_invoices, stop PAD "
            f"(BCR-PAD Stop), reverse PAID invoices ({ids}) to SETTLEMENT_SCHED and create an NSF fee invoice",
            (),
        )  # fmt: skip
    if rtype is None or rtype is RecordType.ONAP:
        why = (
            "ONAP has no handler in pay-queue (error row)"
            if rtype is RecordType.ONAP
            else "unknown record type"
        )
        return Disposition.UNSUPPORTED, why, ()
    if rtype in (RecordType.ADJS, RecordType.EFTR):
        return Disposition.NO_EFFECT, f"{rtype.value} rows are only logged by pay-queue", ()
    if status is None:
        return Disposition.UNSUPPORTED, f"unknown target status {row.target_transaction_status!r}", ()
    if row.target_type is None:
        return Disposition.UNSUPPORTED, f"unknown target type {row.target_transaction_type!r}", ()
    if row.application_amount == 0 and not row.is_pad:
        return Disposition.NO_EFFECT, "application amount is 0: pay-queue skips the row", ()

    if row.is_pad:  # PADP Fully PAID (the NSF cases were handled above)
        if row.target_type is not TargetType.INV:
            return Disposition.NO_EFFECT, "PAD row whose target is not an invoice", ()
        if status is not TargetStatus.FULLY_PAID:
            return (
                Disposition.BLOCKED,
                f"PAD row with status {row.target_transaction_status!r}: pay-queue logs an error",
                (),
            )
        return _paid_rows(row, active, completed, ctx, pad=True)
    if rtype in (RecordType.BOLP, RecordType.EFTP):
        if rtype is RecordType.EFTP and row.source_transaction_type == "BC REG EFT Wire Cheque":
            return (
                Disposition.NO_EFFECT,
                "EFTP from 'BC REG EFT Wire Cheque' is ignored (the EFT job handles it)",
                (),
            )
        if row.target_type is not TargetType.INV:
            return Disposition.NO_EFFECT, f"{rtype.value} row whose target is not an invoice", ()
        if len(active) > 1:
            return (
                Disposition.BLOCKED,
                f"{len(active)} ACTIVE references for {number}; pay-queue expects exactly one",
                (),
            )
        if not active:
            if len(completed) == 1:
                return Disposition.ALREADY_APPLIED, f"{number} is already COMPLETED", ()
            return Disposition.BLOCKED, f"no ACTIVE reference for {number}: pay-queue logs an error", ()
        if status is TargetStatus.FULLY_PAID:
            return _paid_rows(row, active, completed, ctx, pad=False)
        if status is TargetStatus.PARTIALLY_PAID:
            return (
                Disposition.APPLY,
                "partial payment: the invoice becomes PARTIAL_PAID",
                (_change(active[0], "PARTIAL_PAID"),),
            )
        return (
            Disposition.BLOCKED,
            f"{rtype.value} with status {row.target_transaction_status!r}: pay-queue logs an error",
            (),
        )
    # ONAC / CMAP / DRWP
    if row.target_type is TargetType.RECEIPT:
        if rtype is RecordType.ONAC:
            if row.source_transaction_number in ctx.credits:
                return Disposition.ALREADY_APPLIED, "the on-account credit already exists in credits", ()
            return (
                Disposition.APPLY,
                f"creates a credits row for on-account receipt {row.source_transaction_number}",
                (),
            )
        return Disposition.NO_EFFECT, f"{rtype.value} row on a receipt", ()
    if row.target_type is not TargetType.INV:
        return Disposition.NO_EFFECT, f"{rtype.value} row whose target is not an invoice", ()
    credit_pending = rtype is RecordType.CMAP and row.application_id not in ctx.applied_credit_ids
    if status is TargetStatus.FULLY_PAID:
        disp, reason, changes = _paid_rows(row, active, completed, ctx, pad=False)
        if disp == Disposition.ALREADY_APPLIED and credit_pending:
            return (
                Disposition.APPLY,
                "invoices already PAID; records the applied credit (applied_credits)",
                (),
            )
        return disp, reason, changes
    if status is TargetStatus.PARTIALLY_PAID:
        if credit_pending:
            return Disposition.APPLY, "partial credit application: records applied_credits only", ()
        return Disposition.NO_EFFECT, "Partially PAID credit rows are ignored by pay-queue", ()
    return (
        Disposition.BLOCKED,
        f"{rtype.value} with status {row.target_transaction_status!r}: pay-queue logs an error",
        (),
    )


def _paid_rows(
    row: SettlementRow, active: list[dict], completed: list[dict], ctx: _Context, *, pad: bool
) -> tuple[str, str, tuple[dict, ...]]:
    number = row.target_transaction_number
    if active:
        if any(r["payment_method_code"] == "CC" for r in active):
            return (
                Disposition.NO_EFFECT,
                "an ACTIVE reference belongs to a CC invoice (NSF fee / consolidated): pay-queue skips the row",
                (),
            )
        mismatch = _account_mismatch(active, row.customer_account, ctx)
        if mismatch is not None:
            return (
                Disposition.BLOCKED,
                f"Customer Account {row.customer_account} is not invoice {mismatch['invoice_id']}'s CFS account "
                f"({', '.join(mismatch['cfs_account'])}): pay-queue raises and aborts the rest of the file",
                (),
            )  # fmt: skip
        first = ctx.paid_in_file.setdefault(number, row.line_number)
        if first != row.line_number:
            return (
                Disposition.APPLY,
                f"line {first} of this file pays the invoices; this row records its payment",
                (),
            )
        ids = ", ".join(str(r["invoice_id"]) for r in active)
        return (
            Disposition.APPLY,
            f"{len(active)} invoice(s) -> PAID ({ids})",
            tuple(_change(r, "PAID") for r in active),
        )
    if completed:
        paid = any(
            p["payment_status_code"] == "COMPLETED" and p["receipt_number"] == row.source_transaction_number
            for p in ctx.payments.get(number, [])
        )
        note = "payment recorded" if paid else "no payments row for this receipt"
        return Disposition.ALREADY_APPLIED, f"references of {number} are COMPLETED ({note})", ()
    if not pad:
        return Disposition.NO_EFFECT, f"no ACTIVE reference for {number}: nothing to pay", ()
    cons = ctx.refs.get(consolidated_invoice_number(number), [])
    if any(r["status_code"] == "COMPLETED" for r in cons):
        return (
            Disposition.ALREADY_APPLIED,
            f"paid by credit card through {consolidated_invoice_number(number)}",
            (),
        )
    if number.startswith("REGUT"):
        return Disposition.NO_EFFECT, "REGUT (DEV) invoice: pay-queue skips it", ()
    return Disposition.BLOCKED, f"no invoice found for {number}: pay-queue logs an error", ()


def filtered_name(file_name: str, content: bytes) -> str:
    stem = file_name[:-4] if file_name.lower().endswith(".csv") else file_name
    return f"{stem}.replay-{sha256_hex(content)[:8]}.csv"


def queue_message(file_name: str, event_id: str) -> dict[str, Any]:
    """The CloudEvent the ftp-poller publishes for a new file in ``ar/`` (structured JSON mode)."""
    return {
        "specversion": "1.0",
        "type": EVENT_TYPE,
        "source": EVENT_SOURCE,
        "id": event_id,
        "datacontenttype": "application/json",
        "data": {"fileSource": "GOOGLE_BUCKET", "location": AR_FOLDER, "fileName": file_name},
    }


def gcloud_command(message: Mapping[str, Any]) -> str:
    import json

    body = json.dumps(message, separators=(",", ":"), sort_keys=True)
    return f"gcloud pubsub topics publish \"${{FTP_POLLER_TOPIC:-{DEFAULT_TOPIC}}}\" --message='{body}'"


def _guard_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "file_name": row["file_name"], "received_on": row["received_on"],
            "processed_on": row["processed_on"]}  # fmt: skip


def plan_replay(
    file_key_or_path: str,
    *,
    env: Env | None = None,
    settings: Settings | None = None,
    engine: Engine | None = None,
    store: Store | None = None,
    legacy_store: Store | None = None,
    write_filtered: bool = False,
) -> Plan:
    """Plan the re-processing of one settlement CSV. Read-only: writing the filtered CSV is the
    ``settlement.replay`` fix's apply (:func:`apply_replay`), after a confirm. ``write_filtered=True`` is
    refused (it used to write without one).

    ``store`` is the current bucket (``ar/`` folder) and the place the filtered CSV goes; ``legacy_store``
    the pre-2025 ``payment-sftp`` bucket. Both default to the settings (``env.settings``).
    """
    if write_filtered:
        raise InputError(
            "writing the filtered CSV needs a reviewed plan and its confirm hash",
            field="write_filtered",
            hint="paynb settlement replay plan FILE --out plan.json, then"
            " paynb settlement replay apply --plan plan.json --confirm <sha256>",
        )
    if env is not None:
        settings = settings or env.settings
        engine = engine or env.engine
    if engine is None or (store is None and legacy_store is None):
        settings = settings or get_settings()
    sources, problems = settlement_sources(settings, store=store, legacy_store=legacy_store)
    ref = resolve_settlement_file(file_key_or_path, sources)
    data = read_settlement_ref(ref, sources)
    if not data.strip():
        raise ParseError("empty file: no header row", file=ref.ref, line=1, field="header")
    parsed = parse_settlement_csv(data, file=ref.ref)
    engine = engine or db.create_engine(settings)

    filtered_rows: list[SettlementRow] = []
    row_plans: list[RowPlan] = []
    with db.read_connection(engine) as conn:
        ctx = _load_context(conn, parsed)
        for row in parsed.rows:
            disposition, reason, changes = _classify(row, ctx)
            row_plans.append(
                RowPlan(row.line_number, row.record_type, row.source_transaction_number, row.target_transaction_type,
                        row.target_transaction_number, row.target_transaction_status, row.application_amount,
                        row.customer_account, disposition, reason, row.is_nsf_risk, changes)
            )  # fmt: skip
            if disposition == Disposition.APPLY:
                filtered_rows.append(row)
        header_style = parsed.header_style if parsed.header_style in ("test", "parser") else "parser"
        filtered = write_settlement_csv(filtered_rows, header_style).encode("utf-8") if filtered_rows else b""
        new_name = filtered_name(ref.file_name, filtered) if filtered_rows else None
        guards = guard_rows(conn, [ref.file_name, *([new_name] if new_name else [])])

    counts = {d: 0 for d in Disposition.ALL}
    for rp in row_plans:
        counts[rp.disposition] += 1
    original_guard = guards.get(ref.file_name, [])
    warnings = _warnings(ref, row_plans, original_guard, problems)
    body: dict[str, Any] = {
        "file": {
            **ref.to_dict(),
            "sha256": sha256_hex(data),
            "rows": len(parsed.rows),
            "header_style": parsed.header_style,
        },
        "guard": {
            "file_name": ref.file_name,
            "state": guard_state(original_guard),
            "rows": [_guard_dict(r) for r in original_guard],
        },
        "rows": [rp.to_dict() for rp in row_plans],
        "counts": counts,
        "invoices_to_change": sorted({c["invoice_id"] for rp in row_plans for c in rp.changes}),
        "nsf_risk_lines": [rp.line for rp in row_plans if rp.nsf_risk],
        "unsupported_lines": [rp.line for rp in row_plans if rp.disposition == Disposition.UNSUPPORTED],
        "params": {"file": ref.ref},
        "filtered_csv": None,
        "queue_message": None,
        "gcloud_command": None,
        "guard_change": None,
    }
    if new_name is not None:
        key = f"{AR_FOLDER}/{new_name}"
        digest = sha256_hex(filtered)
        body["filtered_csv"] = {
            "key": key,
            "file_name": new_name,
            "sha256": digest,
            "bytes": len(filtered),
            "rows": len(filtered_rows),
            "lines": [r.line_number for r in filtered_rows],
            "header_style": header_style,
        }
        message = queue_message(new_name, f"paynb-replay-{digest[:8]}")
        body["queue_message"] = message
        body["gcloud_command"] = gcloud_command(message)
        body["guard_change"] = _guard_change(
            ref.file_name, original_guard, new_name, guards.get(new_name, [])
        )
    return Plan(kind=PLAN_KIND, body=body, summary=_summary(ref, counts, body), warnings=tuple(warnings))


def _guard_change(
    original: str, original_rows: list[dict], new_name: str, new_rows: list[dict]
) -> dict[str, Any]:
    statements = [
        {
            "sql": DELETE_GUARD_SQL,
            "params": {"id": r["id"], "file_name": new_name},
            "row": _guard_dict(r),
            "why": "an earlier publish of this same filtered file left this row; it blocks processing",
        }
        for r in new_rows
    ]
    state = guard_state(original_rows)
    keep = {
        "absent": "the original never reached pay-queue: apply inserts its guard row, processed, as pay-queue"
        " would have, so the original (with the excluded rows) is never processed",
        "processing_failed": "apply sets processed_on on this row, as pay-queue would have at the end of the file;"
        " the row stays, so the unfiltered original is never processed again",
        "processed": "keep this row: the original was processed; only the filtered rows are replayed",
    }[state]
    original_statements: list[dict[str, Any]] = []
    if state == "absent":
        original_statements.append(
            {"sql": INSERT_GUARD_SQL, "params": {"file_name": original}, "row": None, "expect_rows": 1,
             "why": "guard the original as pay-queue does for every file it takes"}
        )  # fmt: skip
    for r in original_rows:
        if r.get("processed_on") is None:
            original_statements.append(
                {"sql": FINISH_GUARD_SQL, "params": {"id": r["id"], "file_name": original}, "row": _guard_dict(r),
                 "expect_rows": 1, "why": "the replay finishes what this file started; monitors stop flagging it"}
            )  # fmt: skip
    return {
        "published_file": new_name,
        "statements": [{**st, "expect_rows": 1} for st in statements],
        "original": {
            "file_name": original,
            "state": state,
            "rows": [_guard_dict(r) for r in original_rows],
            "statements": original_statements,
            "note": keep,
        },  # fmt: skip
        "note": (
            f"pay-queue inserts cas_settlements(file_name='{new_name}', received_on=now()) itself when the message "
            "arrives and sets processed_on when the whole file (incl. the credit sync) succeeded"
        ),
    }


def _filtered_bytes(env: Env, plan: Plan, sources: Sequence[SettlementSource]) -> bytes:
    """The filtered CSV rebuilt from the source file, checked against the plan's sha256."""
    body = plan.body
    ref = resolve_settlement_file(body["params"]["file"], sources)
    parsed = parse_settlement_csv(read_settlement_ref(ref, sources), file=ref.ref)
    lines = set(body["filtered_csv"]["lines"])
    rows = [r for r in parsed.rows if r.line_number in lines]
    data = write_settlement_csv(rows, body["filtered_csv"]["header_style"]).encode("utf-8")
    if sha256_hex(data) != body["filtered_csv"]["sha256"]:
        raise PlanError(f"the filtered CSV rebuilt from {ref.ref} is not the planned one; re-plan")
    return data


def _target_source(sources: Sequence[SettlementSource]) -> SettlementSource:
    target = next((s for s in sources if s.name == "bucket"), None)
    if target is None:
        raise StoreError("no current bucket to write the filtered CSV to (set PAYNB_BUCKET)")
    return target


def _object_state(store: Store, key: str, digest: str) -> str:
    """``absent``, ``same`` (the planned bytes), or refused when another object holds the key."""
    info = store.stat(key)
    if info is None:
        return "absent"
    actual = info.sha256 or sha256_hex(store.get(key, verify=False))
    if actual != digest:
        raise StoreError(f"{store.url_for(key)} already exists with other content; not overwriting it")
    return "same"


class ReplayFix(Fix):
    """``settlement.replay``: write the filtered CSV under its new ``ar/`` name (never overwriting), make the
    original's guard change in pay-db, and hand over the queue message to publish. Store parts given here
    (tests) win over the ``Env``'s buckets."""

    kind = PLAN_KIND
    title = "replay the safe, not-yet-applied rows of a settlement CSV under a new name"

    def __init__(self, *, store: Store | None = None, legacy_store: Store | None = None) -> None:
        self.store = store
        self.legacy_store = legacy_store

    def _sources(self, env: Env) -> list[SettlementSource]:
        sources, _problems = settlement_sources(
            env.settings, store=self.store, legacy_store=self.legacy_store
        )
        return sources

    def plan(self, env: Env, **params: Any) -> Plan:
        return plan_replay(
            str(params.get("file") or ""), env=env, store=self.store, legacy_store=self.legacy_store
        )

    def execute(self, env: Env, plan: Plan, run: FixRun) -> Outcome:
        body = plan.body
        filtered = body.get("filtered_csv")
        if filtered is None:
            raise PlanError("this plan has nothing to replay (no filtered CSV); there is nothing to apply")
        sources = self._sources(env)
        target = _target_source(sources)
        key, digest = filtered["key"], filtered["sha256"]
        # the object first: a kill before the pay-db commit leaves a plan that re-plans the same and resumes
        meta = {"paynb-source": body["file"]["ref"], "paynb-kind": PLAN_KIND, "paynb-apply": run.apply_id}
        # always through the journal: a killed apply's pending intent is confirmed by what is there
        written = write_object_once(
            run, target.store.url_for(key), digest,
            present=lambda: _object_state(target.store, key, digest) == "same",
            write=lambda: target.store.put(key, _filtered_bytes(env, plan, sources), content_type="text/csv",
                                           metadata=meta),
        )  # fmt: skip
        change = body["guard_change"]
        statements = [*change["statements"], *change["original"]["statements"]]
        rows: list[dict[str, Any]] = []
        if statements:
            import sqlalchemy as sa

            with run.transaction() as conn:
                for st in statements:
                    count = conn.execute(sa.text(st["sql"]), st["params"]).rowcount
                    if count != st["expect_rows"]:
                        raise PlanError(
                            f"cas_settlements changed under the apply ({st['sql'].split()[0]} touched {count} row(s),"
                            f" planned {st['expect_rows']}); nothing was committed",
                            hint="re-plan and review again",
                        )
                    rows.append({"table": "cas_settlements", "id": st["params"].get("id"),
                                 "file_name": st["params"]["file_name"], "action": st["sql"].split()[0].lower()})  # fmt: skip
        return Outcome(
            status="applied" if written or rows else "already_applied",
            rows_affected=len(rows),
            before={"guard": body["guard"], "filtered_csv_present": not written},
            after={"filtered_csv": key, "guard_rows_changed": len(rows)},
            touched={
                "objects": [{"store": target.store.url_for(key), "key": key, "sha256": digest}],
                "rows": rows,
                "cfs": [],
            },  # fmt: skip
            detail={
                "written": written,
                "key": key,
                "queue_message": body["queue_message"],
                "gcloud_command": body["gcloud_command"],
            },  # fmt: skip
        )

    def verify(self, env: Env, plan: Plan, outcome: Outcome) -> dict[str, Any]:
        target = _target_source(self._sources(env))
        filtered = plan.body["filtered_csv"]
        if _object_state(target.store, filtered["key"], filtered["sha256"]) != "same":
            raise StoreError(f"{filtered['key']} is not in the bucket after the apply")
        name = plan.body["guard"]["file_name"]
        with env.read() as conn:
            state = guard_state(guard_rows(conn, [name])[name])
        if state != "processed":
            raise PlanError(f"the guard row of {name} is {state} after the apply, not processed")
        return {"filtered_csv": filtered["key"], "original_guard": state}


REPLAY_FIX = register_fix(ReplayFix())


def apply_replay(
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
) -> Any:
    """Apply a confirmed replay plan through :func:`paynb.fixes.apply_fix` (recorded in the ledger).
    Returns the :class:`paynb.fixes.ApplyResult`; its ``outcome.detail`` holds the queue message."""
    from paynb.context import resolve_env
    from paynb.fixes import apply_fix

    env = resolve_env(env, settings=settings, engine=engine)
    return apply_fix(
        ReplayFix(store=store, legacy_store=legacy_store),
        plan,
        confirm,
        env=env,
        ticket=ticket,
        reason=reason,
    )


def _warnings(
    ref: SettlementFileRef,
    rows: Sequence[RowPlan],
    guard: Sequence[Mapping[str, Any]],
    problems: Sequence[str],
) -> list[str]:
    out: list[str] = []
    for rp in rows:
        if rp.nsf_risk:
            out.append(
                f"NSF RISK line {rp.line} ({rp.record_type} {rp.target_number}, {rp.status}): {rp.reason}. "
                "Excluded from the filtered CSV."
            )
    paid_numbers = {rp.target_number for rp in rows if rp.disposition == Disposition.APPLY}
    for number in sorted({rp.target_number for rp in rows if rp.nsf_risk} & paid_numbers):
        lines = [str(rp.line) for rp in rows if rp.target_number == number]
        out.append(
            f"{number} has both NSF-risk and paid rows (lines {', '.join(lines)}): confirm with CAS which one is "
            "current before replaying"
        )
    for rp in rows:
        if rp.disposition == Disposition.BLOCKED and "aborts" in rp.reason:
            out.append(f"line {rp.line}: {rp.reason}")
        elif rp.disposition == Disposition.UNSUPPORTED:
            out.append(f"line {rp.line}: unsupported row ({rp.record_type}): {rp.reason}")
    state = guard_state(guard)
    if state == "processing_failed":
        out.append(
            f"{ref.file_name} started processing but never finished (cas_settlements.processed_on is NULL): "
            "find the cause in the reconciliation error email before replaying"
        )
    if not any(rp.disposition == Disposition.APPLY for rp in rows):
        out.append("nothing to replay: no row is both safe and not yet applied")
    out.extend(f"store: {p}" for p in problems)
    return out


def _summary(ref: SettlementFileRef, counts: Mapping[str, int], body: Mapping[str, Any]) -> str:
    parts = [f"{ref.file_name}: {counts[Disposition.APPLY]} row(s) to replay"]
    n_inv = len(body["invoices_to_change"])
    if n_inv:
        parts.append(f"{n_inv} invoice(s) change status")
    for d in (Disposition.ALREADY_APPLIED, Disposition.NSF_RISK, Disposition.BLOCKED, Disposition.NO_EFFECT,
              Disposition.UNSUPPORTED):  # fmt: skip
        if counts[d]:
            parts.append(f"{counts[d]} {d.replace('_', ' ')}")
    parts.append(f"guard {body['guard']['state']}")
    return "; ".join(parts)


def iter_rows_for_numbers(parsed: SettlementFile, numbers: set[str]) -> Iterator[SettlementRow]:
    """Rows of ``parsed`` whose target is one of ``numbers``."""
    return (r for r in parsed.rows if r.target_transaction_number in numbers)


# -- presenting a plan (CLI and notebook) ------------------------------------------------------------------
PLAN_COLUMNS = ["line", "record", "target", "status", "amount", "disposition", "invoices", "reason"]


def plan_frame(plan: Plan, *, nsf_only: bool = False) -> pd.DataFrame:
    """The plan's rows as a table: one line per CSV row, NSF-risk rows marked ``!! NSF RISK``."""
    rows = [
        {
            "line": r["line"],
            "record": r["record_type"],
            "target": r["target_number"],
            "status": r["status"],
            "amount": r["amount"],
            "disposition": "!! NSF RISK" if r["nsf_risk"] else r["disposition"],
            "invoices": " ".join(
                f"{c['invoice_id']}:{c['from_status']}->{c['to_status']}" for c in r["changes"]
            ),
            "reason": r["reason"],
        }
        for r in plan.body["rows"]
        if r["nsf_risk"] or not nsf_only
    ]
    return pd.DataFrame.from_records(rows, columns=PLAN_COLUMNS)


def style_plan_frame(df: pd.DataFrame) -> Any:
    """A pandas Styler that paints NSF-risk rows red and rows to replay green (for notebooks)."""

    def paint(row: pd.Series) -> list[str]:
        if row["disposition"] == "!! NSF RISK":
            css = "background-color: #f8d0d0; color: #700; font-weight: bold"
        elif row["disposition"] == Disposition.APPLY:
            css = "background-color: #d8f0d8"
        else:
            css = ""
        return [css] * len(row)

    return df.style.apply(paint, axis=1)


def describe_plan(plan: Plan, *, written: bool = False, table: bool = True) -> str:
    """The plan as text for an operator: file, guard, rows (``table``), warnings, the filtered CSV, the
    guard change, the queue message and the gcloud command, and the plan sha256."""
    import json

    from paynb.output import format_table

    body = plan.body
    src, guard, filtered = body["file"], body["guard"], body["filtered_csv"]
    out = [plan.summary, f"file:   {src['url']} ({src['rows']} rows, sha256 {src['sha256']})",
           f"guard:  cas_settlements for {guard['file_name']}: {guard['state']}"]  # fmt: skip
    for row in guard["rows"]:
        out.append(
            f"        id {row['id']} received_on {row['received_on']} processed_on {row['processed_on']}"
        )
    if table:
        out += ["", format_table(plan_frame(plan))]
    if plan.warnings:
        out.append("")
        out += [("!! " if w.startswith("NSF RISK") else "warning: ") + w for w in plan.warnings]
    out.append("")
    if filtered is None:
        out.append("No filtered CSV: there is nothing safe to replay.")
    else:
        state = "written" if written else "dry run, not written (apply the plan with its confirm hash)"
        out.append(
            f"filtered CSV: {filtered['key']} ({filtered['rows']} row(s), sha256 {filtered['sha256']}) [{state}]"
        )
        change = body["guard_change"]
        if change["statements"]:
            out.append("guard change for the filtered file (apply runs it, in its one transaction):")
            out += [f"  {s['sql']}  -- {s['params']}; row {s['row']}" for s in change["statements"]]
        else:
            out.append(f"guard change: none for {change['published_file']} ({change['note']})")
        out.append(f"original guard: {change['original']['note']}")
        out += [f"  {s['sql']}  -- {s['params']}" for s in change["original"]["statements"]]
        out.append(f"queue message (type {EVENT_TYPE}):")
        out.append(f"  {json.dumps(body['queue_message'], sort_keys=True)}")
        out.append(f"publish with:\n  {body['gcloud_command']}")
    out.append(f"\nplan sha256: {plan.sha256}")
    return "\n".join(out)
