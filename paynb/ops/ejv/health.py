"""EJV health: what is stuck or failed in the EJV flow right now, each finding with the action it needs.

Findings (docs/status-lifecycles.md#ejv, docs/runbook.md#ejv-decision-tree, docs/runbook.md#ejv-feedback):

==============================  ==================================================================================
``ejv_file_no_feedback``        ``ejv_files`` with no ``feedback_file_ref`` after ``days`` business days (Pacific)
``ejv_file_errored``            ``ejv_files`` ERRORED (BH return message)
``ejv_header_errored``          ``ejv_headers`` ERRORED (JH return message)
``ejv_link_errored``            ``ejv_links`` ERRORED (JD return message)
``distribution_code_stop_ejv``  GLs with ``stop_ejv``, and how many APPROVED EJV invoices each holds back
``ejv_invoice_stale``           EJV invoices APPROVED for ``days`` business days or more, and where each stands
``partner_disbursement_stuck``  ``partner_disbursements`` UPLOADED or WAITING_FOR_JOB for ``days`` business days
==============================  ==================================================================================

An ERRORED row is *resolved* when a later ``ejv_links`` row for the same invoice (or partial refund)
COMPLETED; resolved errors are left out unless ``include_resolved=True``. Business days are Monday to Friday
in America/Vancouver (:mod:`paynb.timez`); pay-db timestamps are naive UTC. Read-only.

Example::

    report = ejv_health(days=3)
    report.summary()            # counts per kind
    report.to_frame()           # one row per finding: kind, id, age, summary, action
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from paynb import db
from paynb.context import Env, resolve_env
from paynb.errors import InputError
from paynb.timez import business_days_between, pacific_date, pacific_midnight_utc, pacific_today, utcnow_naive

HEALTH_SCHEMA_VERSION = 1

NO_FEEDBACK = "ejv_file_no_feedback"
FILE_ERRORED = "ejv_file_errored"
HEADER_ERRORED = "ejv_header_errored"
LINK_ERRORED = "ejv_link_errored"
STOP_EJV = "distribution_code_stop_ejv"
STALE_INVOICE = "ejv_invoice_stale"
PARTNER_STUCK = "partner_disbursement_stuck"
KINDS = (NO_FEEDBACK, FILE_ERRORED, HEADER_ERRORED, LINK_ERRORED, STOP_EJV, STALE_INVOICE, PARTNER_STUCK)
TABLE_OF = {
    NO_FEEDBACK: "ejv_files",
    FILE_ERRORED: "ejv_files",
    HEADER_ERRORED: "ejv_headers",
    LINK_ERRORED: "ejv_links",
    STOP_EJV: "distribution_codes",
    STALE_INVOICE: "invoices",
    PARTNER_STUCK: "partner_disbursements",
}
SHOWN_IDS = 10  # invoice ids spelled out in an action before "…"


@dataclass(frozen=True)
class Finding:
    kind: str
    id: int
    severity: str  # "error" (money or data is stuck) or "warning" (needs a look)
    summary: str
    action: str
    age_business_days: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return TABLE_OF[self.kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "table": self.table,
            "id": self.id,
            "severity": self.severity,
            "age_business_days": self.age_business_days,
            "summary": self.summary,
            "action": self.action,
            "details": self.details,
        }


_NUMBERS = re.compile(r"\d+")


@dataclass(frozen=True)
class FindingGroup:
    """Findings of one kind whose summary and action differ only in their numbers (ids, dates, amounts)."""

    kind: str
    findings: tuple[Finding, ...]

    @property
    def count(self) -> int:
        return len(self.findings)

    def text(self) -> str:
        first = self.findings[0]
        if self.count == 1:
            age = (
                f" [{first.age_business_days} business day(s)]" if first.age_business_days is not None else ""
            )
            return f"{first.kind} {first.table}.id={first.id}{age}\n  {first.summary}\n  -> {first.action}"
        ids = [f.id for f in self.findings]
        ages = [f.age_business_days for f in self.findings if f.age_business_days is not None]
        span = f"; {min(ages)}-{max(ages)} business day(s)" if ages else ""
        return (
            f"{first.kind} x{self.count} ({first.table}.id {_ids_text(ids)}{span})\n"
            f"  e.g. {first.summary}\n  -> {first.action}\n"
            f"  (the same for the other {self.count - 1}, each with its own ids: --all or --json lists them)"
        )


@dataclass(frozen=True)
class HealthReport:
    as_of: date
    days: int
    findings: tuple[Finding, ...]
    include_resolved: bool = False
    generated_at: datetime = field(default_factory=utcnow_naive)

    def of_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def ids(self, kind: str) -> list[int]:
        return [f.id for f in self.of_kind(kind)]

    @property
    def ok(self) -> bool:
        return not self.findings

    def invoices_to_search(self) -> list[int]:
        """Invoices whose FEEDBACK is missing: those of files without FEEDBACK and stale sent invoices."""
        ids = {i for f in self.of_kind(NO_FEEDBACK) for i in f.details.get("invoice_ids", [])}
        ids |= {f.id for f in self.of_kind(STALE_INVOICE) if f.details.get("stage") == "sent_no_feedback"}
        return sorted(ids)

    def redate_candidates(self) -> list[str]:
        """INBOX names of the files without FEEDBACK (to check with a search, then re-date)."""
        return [f.details["file_ref"] for f in self.of_kind(NO_FEEDBACK)]

    def groups(self) -> list[FindingGroup]:
        """Alike findings together (same kind, same summary and action but for numbers), in report order."""
        groups: dict[tuple[str, str, str], list[Finding]] = {}
        for f in self.findings:
            key = (f.kind, _NUMBERS.sub("#", f.summary), _NUMBERS.sub("#", f.action))
            groups.setdefault(key, []).append(f)
        return [FindingGroup(key[0], tuple(found)) for key, found in groups.items()]

    def summary(self) -> dict[str, int]:
        counts = Counter(f.kind for f in self.findings)
        return {kind: counts.get(kind, 0) for kind in KINDS}

    def summary_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [{"kind": k, "table": TABLE_OF[k], "count": n} for k, n in self.summary().items()],
            columns=["kind", "table", "count"],
        )

    def to_frame(self) -> pd.DataFrame:
        columns = ["kind", "table", "id", "severity", "age_business_days", "summary", "action"]
        rows = [{c: f.to_dict()[c] for c in columns} for f in self.findings]
        frame = pd.DataFrame.from_records(rows, columns=columns)
        frame["age_business_days"] = frame["age_business_days"].astype("Int64")
        return frame

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": HEALTH_SCHEMA_VERSION,
            "report": "ejv_health",
            "as_of": self.as_of,
            "days": self.days,
            "include_resolved": self.include_resolved,
            "generated_at": self.generated_at,
            "summary": self.summary(),
            "findings": [f.to_dict() for f in self.findings],
        }


def ejv_health(
    days: int = 3,
    *,
    env: Env | None = None,
    engine: Engine | None = None,
    as_of: date | None = None,
    include_resolved: bool = False,
) -> HealthReport:
    """Check the EJV tables; ``days`` business days is how long FEEDBACK or a job may take before it counts.
    Reads pay-db through ``env`` (default: the environment's settings); ``engine`` still overrides it."""
    if days < 0:
        raise InputError(f"must be 0 or more, got {days}", field="days")
    as_of = as_of or pacific_today()
    findings: list[Finding] = []
    env = resolve_env(env, engine=engine)
    with env.read() as conn:
        findings += _no_feedback(conn, days, as_of)
        findings += _errored(conn, as_of, include_resolved)
        findings += _stop_ejv(conn)
        findings += _stale_invoices(conn, days, as_of)
        findings += _partner_disbursements(conn, days, as_of)
    return HealthReport(as_of=as_of, days=days, findings=tuple(findings), include_resolved=include_resolved)


def _age(ts: datetime | None, as_of: date) -> int | None:
    return None if ts is None else business_days_between(pacific_date(ts), as_of)


def _ids_text(ids: list[int]) -> str:
    shown = " ".join(str(i) for i in ids[:SHOWN_IDS])
    return shown + (" …" if len(ids) > SHOWN_IDS else "")


# --- files without FEEDBACK ----------------------------------------------------------------------------------

_NO_FEEDBACK_SQL = """
SELECT f.id, f.created_on, f.file_ref, f.file_type, f.disbursement_status_code AS status,
       count(DISTINCT h.id) AS headers, count(l.id) AS links,
       array_remove(array_agg(DISTINCT l.link_id) FILTER (WHERE coalesce(l.link_type, 'invoice') = 'invoice'), NULL)
           AS invoice_ids
  FROM ejv_files f
  LEFT JOIN ejv_headers h ON h.ejv_file_id = f.id
  LEFT JOIN ejv_links l ON l.ejv_header_id = h.id
 WHERE f.feedback_file_ref IS NULL
 GROUP BY f.id
 ORDER BY f.id
"""


def _no_feedback(conn: Any, days: int, as_of: date) -> list[Finding]:
    out = []
    for r in db.fetch_all(conn, _NO_FEEDBACK_SQL):
        age = _age(r["created_on"], as_of)
        if age is None or age < days:
            continue
        invoices = sorted(r["invoice_ids"] or [])
        search = (
            f"`paynb ejv search {_ids_text(invoices)}`" if invoices else "`paynb ejv search <invoice ids>`"
        )
        out.append(
            Finding(
                kind=NO_FEEDBACK,
                id=r["id"],
                severity="error",
                age_business_days=age,
                summary=(
                    f"{r['file_ref']} ({r['file_type'] or 'DISBURSEMENT'}, batch {r['id']}, {r['links']} line(s) for"
                    f" {len(invoices)} invoice(s)) has no FEEDBACK after {age} business day(s)"
                ),
                action=(
                    f"Search the FEEDBACK files for its invoices: {search}. A FEEDBACK naming batch {r['id']} that"
                    " pay-queue never processed is replayed by re-publishing its FEEDBACKReceived message. If CAS never"
                    f" answered, re-send the INBOX with today's date: `paynb ejv redate plan {r['file_ref']}`."
                ),
                details={
                    "file_ref": r["file_ref"],
                    "file_type": r["file_type"],
                    "status": r["status"],
                    "created_on": r["created_on"],
                    "headers": r["headers"],
                    "links": r["links"],
                    "invoice_ids": invoices,
                },
            )
        )
    return out


# --- ERRORED files, headers, links ---------------------------------------------------------------------------

_ERRORED_LINKS_SQL = """
SELECT l.id, l.link_id, coalesce(l.link_type, 'invoice') AS link_type, l.message, l.ejv_header_id,
       h.ejv_file_id, f.file_ref, f.feedback_file_ref, f.file_type, h.payment_account_id, h.partner_code,
       i.invoice_status_code AS invoice_status, i.total,
       EXISTS (SELECT 1 FROM ejv_links l2
                WHERE l2.link_id = l.link_id AND coalesce(l2.link_type, 'invoice') = coalesce(l.link_type, 'invoice')
                  AND l2.id > l.id AND l2.disbursement_status_code = 'COMPLETED') AS resolved,
       (SELECT dc.distribution_code_id FROM distribution_codes dc
         WHERE dc.account_id = h.payment_account_id ORDER BY dc.start_date DESC, dc.distribution_code_id DESC
         LIMIT 1) AS account_gl
  FROM ejv_links l
  JOIN ejv_headers h ON h.id = l.ejv_header_id
  JOIN ejv_files f ON f.id = h.ejv_file_id
  LEFT JOIN invoices i ON i.id = CASE WHEN coalesce(l.link_type, 'invoice') = 'invoice' THEN l.link_id END
 WHERE l.disbursement_status_code = 'ERRORED'
 ORDER BY l.id
"""

_ERRORED_HEADERS_SQL = """
SELECT h.id, h.message, h.ejv_file_id, h.payment_account_id, h.partner_code, f.file_ref, f.feedback_file_ref,
       f.file_type, count(l.id) AS links
  FROM ejv_headers h
  JOIN ejv_files f ON f.id = h.ejv_file_id
  LEFT JOIN ejv_links l ON l.ejv_header_id = h.id
 WHERE h.disbursement_status_code = 'ERRORED'
 GROUP BY h.id, f.id
 ORDER BY h.id
"""

_ERRORED_FILES_SQL = """
SELECT f.id, f.message, f.file_ref, f.feedback_file_ref, f.file_type, f.created_on
  FROM ejv_files f
 WHERE f.disbursement_status_code = 'ERRORED'
 ORDER BY f.id
"""


def _errored(conn: Any, as_of: date, include_resolved: bool) -> list[Finding]:
    links = db.fetch_all(conn, _ERRORED_LINKS_SQL)
    open_links = [r for r in links if include_resolved or not r["resolved"]]
    resolved_by_header: dict[int, list[bool]] = {}
    for r in links:
        resolved_by_header.setdefault(r["ejv_header_id"], []).append(bool(r["resolved"]))

    headers = db.fetch_all(conn, _ERRORED_HEADERS_SQL)
    open_headers = []
    for h in headers:
        flags = resolved_by_header.get(h["id"], [])
        resolved = bool(flags) and all(flags)
        if include_resolved or not resolved:
            open_headers.append(h)
    open_header_files = {h["ejv_file_id"] for h in open_headers}
    open_link_files = {r["ejv_file_id"] for r in open_links}
    any_error_files = {h["ejv_file_id"] for h in headers} | {r["ejv_file_id"] for r in links}

    out: list[Finding] = []
    for f in db.fetch_all(conn, _ERRORED_FILES_SQL):
        resolved = f["id"] in any_error_files and f["id"] not in open_header_files | open_link_files
        if resolved and not include_resolved:
            continue
        out.append(
            Finding(
                kind=FILE_ERRORED,
                id=f["id"],
                severity="error",
                age_business_days=_age(f["created_on"], as_of),
                summary=f"{f['file_ref']} (batch {f['id']}) ERRORED in {f['feedback_file_ref'] or 'FEEDBACK'}: "
                f"{f['message'] or '(no message)'}",
                action=(
                    "CAS rejected part of this batch; the journals and lines below say which. Nothing is re-sent"
                    " automatically while a GL has stop_ejv: fix the GL with Finance, then clear stop_ejv."
                ),
                details={k: f[k] for k in ("file_ref", "feedback_file_ref", "file_type", "message")}
                | {"resolved": resolved},
            )
        )
    for h in open_headers:
        who = (
            f"account {h['payment_account_id']}"
            if h["payment_account_id"]
            else f"partner {h['partner_code']}"
        )
        out.append(
            Finding(
                kind=HEADER_ERRORED,
                id=h["id"],
                severity="error",
                summary=f"journal {h['id']} ({who}, {h['links']} line(s)) in {h['file_ref']} ERRORED: "
                f"{h['message'] or '(no message)'}",
                action=f"See the ERRORED lines of journal {h['id']}; the fix is on {who}'s GL.",
                details={
                    k: h[k]
                    for k in (
                        "ejv_file_id",
                        "file_ref",
                        "feedback_file_ref",
                        "payment_account_id",
                        "partner_code",
                        "message",
                        "links",
                    )
                },
            )
        )
    for r in open_links:
        out.append(
            Finding(
                kind=LINK_ERRORED,
                id=r["id"],
                severity="error",
                summary=f"{r['link_type']} {r['link_id']} in journal {r['ejv_header_id']} ({r['file_ref']}) ERRORED: "
                f"{r['message'] or '(no message)'}",
                action=_link_action(r),
                details={
                    k: r[k]
                    for k in (
                        "link_id",
                        "link_type",
                        "ejv_header_id",
                        "ejv_file_id",
                        "file_ref",
                        "feedback_file_ref",
                        "file_type",
                        "payment_account_id",
                        "partner_code",
                        "invoice_status",
                        "account_gl",
                        "message",
                        "resolved",
                    )
                },
            )
        )
    return out


def _link_action(r: dict[str, Any]) -> str:
    if r["file_type"] in (None, "PAYMENT"):
        gl = f"distribution code {r['account_gl']}" if r["account_gl"] else "the account's GL"
        return (
            f"pay-queue cancelled the reference of invoice {r['link_id']} and set stop_ejv on {gl} (account"
            f" {r['payment_account_id']}). Correct the GL with Finance, then clear stop_ejv: the next EJV_PAYMENT"
            " run (20:01 Pacific) re-sends the invoice, which stays APPROVED until then."
        )
    if r["file_type"] == "DISBURSEMENT":
        return (
            f"pay-queue set the disbursement of {r['link_type']} {r['link_id']} to ERRORED and stop_ejv on the"
            f" partner's ({r['partner_code']}) disbursement GL. Fix that GL and clear stop_ejv: EJV_PARTNER (19:01)"
            " picks ERRORED disbursements up again."
        )
    return f"AP line rejected ({r['file_type']}): correct the payee/GL data, then let the AP job re-send it."


# --- stop_ejv ------------------------------------------------------------------------------------------------

_STOP_SQL = """
SELECT dc.distribution_code_id AS id, dc.name, dc.client, dc.responsibility_centre, dc.service_line, dc.stob,
       dc.project_code, dc.account_id, dc.start_date, dc.end_date, dc.updated_on,
       (SELECT count(*) FROM invoices i
         WHERE dc.account_id IS NOT NULL AND i.payment_account_id = dc.account_id
           AND i.payment_method_code = 'EJV' AND i.invoice_status_code = 'APPROVED'
           AND NOT EXISTS (SELECT 1 FROM invoice_references r WHERE r.invoice_id = i.id AND r.status_code = 'ACTIVE'))
           AS blocked_invoices,
       (SELECT coalesce(sum(i.total), 0) FROM invoices i
         WHERE dc.account_id IS NOT NULL AND i.payment_account_id = dc.account_id
           AND i.payment_method_code = 'EJV' AND i.invoice_status_code = 'APPROVED'
           AND NOT EXISTS (SELECT 1 FROM invoice_references r WHERE r.invoice_id = i.id AND r.status_code = 'ACTIVE'))
           AS blocked_total,
       (SELECT count(DISTINCT i.id) FROM invoices i
          JOIN payment_line_items pli ON pli.invoice_id = i.id
          JOIN distribution_codes fee ON fee.distribution_code_id = pli.fee_distribution_id
         WHERE dc.account_id IS NULL AND fee.disbursement_distribution_code_id = dc.distribution_code_id
           AND i.invoice_status_code = 'PAID'
           AND (i.disbursement_status_code IS NULL OR i.disbursement_status_code = 'ERRORED')) AS waiting_disbursements
  FROM distribution_codes dc
 WHERE dc.stop_ejv
 ORDER BY dc.distribution_code_id
"""


def _stop_ejv(conn: Any) -> list[Finding]:
    out = []
    for r in db.fetch_all(conn, _STOP_SQL):
        gl = ".".join(
            str(r[k] or "")
            for k in ("client", "responsibility_centre", "service_line", "stob", "project_code")
        )
        if r["account_id"] is not None:
            summary = (
                f"GL {r['id']} ({r['name']}, {gl}) of account {r['account_id']} has stop_ejv: it holds back"
                f" {r['blocked_invoices']} APPROVED EJV invoice(s), {r['blocked_total']} in all"
            )
            action = (
                "EJV_PAYMENT skips this account while stop_ejv is true. Confirm the corrected GL with Finance, correct"
                " the distribution code and clear stop_ejv (`paynb ejv stop-ejv plan --distribution-code-id"
                f" {r['id']}`); the next run (20:01 Pacific) sends the {r['blocked_invoices']} invoice(s)."
            )
        else:
            summary = (
                f"GL {r['id']} ({r['name']}, {gl}) has stop_ejv: {r['waiting_disbursements']} PAID invoice(s) wait for"
                " their partner disbursement"
            )
            action = (
                "EJV_PARTNER skips lines on this GL while stop_ejv is true. Fix the GL with the partner ministry and"
                f" Finance, then clear stop_ejv: `paynb ejv stop-ejv plan --distribution-code-id {r['id']}`."
            )
        out.append(
            Finding(
                kind=STOP_EJV,
                id=r["id"],
                severity="error" if (r["blocked_invoices"] or r["waiting_disbursements"]) else "warning",
                summary=summary,
                action=action,
                details={
                    k: r[k]
                    for k in (
                        "name",
                        "account_id",
                        "start_date",
                        "end_date",
                        "updated_on",
                        "blocked_invoices",
                        "blocked_total",
                        "waiting_disbursements",
                    )
                }
                | {"gl": gl},
            )
        )
    return out


# --- APPROVED EJV invoices -----------------------------------------------------------------------------------

_STALE_SQL = """
SELECT i.id, i.created_on, i.total, i.payment_account_id, pa.billable, pa.restrict_ejv,
       ar.invoice_number AS active_reference, lr.status_code AS last_reference_status,
       gl.distribution_code_id AS gl_id, gl.stop_ejv, gl.start_date AS gl_start, gl.end_date AS gl_end,
       ln.link_id AS link_row, ln.link_status, ln.link_message, ln.header_id, ln.file_id, ln.file_ref,
       ln.feedback_file_ref, ln.file_status
  FROM invoices i
  LEFT JOIN payment_accounts pa ON pa.id = i.payment_account_id
  LEFT JOIN LATERAL (SELECT r.invoice_number FROM invoice_references r
                      WHERE r.invoice_id = i.id AND r.status_code = 'ACTIVE' ORDER BY r.id DESC LIMIT 1) ar ON true
  LEFT JOIN LATERAL (SELECT r.status_code FROM invoice_references r
                      WHERE r.invoice_id = i.id ORDER BY r.id DESC LIMIT 1) lr ON true
  LEFT JOIN LATERAL (SELECT dc.* FROM distribution_codes dc WHERE dc.account_id = i.payment_account_id
                      ORDER BY dc.start_date DESC, dc.distribution_code_id DESC LIMIT 1) gl ON true
  LEFT JOIN LATERAL (SELECT l.id AS link_id, l.disbursement_status_code AS link_status, l.message AS link_message,
                            h.id AS header_id, f.id AS file_id, f.file_ref, f.feedback_file_ref,
                            f.disbursement_status_code AS file_status
                       FROM ejv_links l
                       JOIN ejv_headers h ON h.id = l.ejv_header_id
                       JOIN ejv_files f ON f.id = h.ejv_file_id
                      WHERE l.link_id = i.id AND coalesce(l.link_type, 'invoice') = 'invoice'
                      ORDER BY l.id DESC LIMIT 1) ln ON true
 WHERE i.payment_method_code = 'EJV' AND i.invoice_status_code = 'APPROVED' AND i.created_on < :before
 ORDER BY i.id
"""


def _stale_invoices(conn: Any, days: int, as_of: date) -> list[Finding]:

    before = pacific_midnight_utc(as_of) if days > 0 else utcnow_naive()
    out = []
    for r in db.fetch_all(conn, _STALE_SQL, {"before": before}):
        age = _age(r["created_on"], as_of)
        if age is None or age < days:
            continue
        stage, where, action = _where_it_stands(r, as_of)
        out.append(
            Finding(
                kind=STALE_INVOICE,
                id=r["id"],
                severity="error",
                age_business_days=age,
                summary=f"invoice {r['id']} ({r['total']}, account {r['payment_account_id']}) APPROVED for {age}"
                f" business day(s): {where}",
                action=action,
                details={
                    k: r[k]
                    for k in (
                        "created_on",
                        "total",
                        "payment_account_id",
                        "active_reference",
                        "last_reference_status",
                        "gl_id",
                        "stop_ejv",
                        "file_ref",
                        "feedback_file_ref",
                        "link_status",
                        "link_message",
                        "header_id",
                        "file_id",
                    )
                }
                | {"stage": stage},
            )
        )
    return out


def _where_it_stands(r: dict[str, Any], as_of: date) -> tuple[str, str, str]:
    """(stage, where it stands, what to do) for an APPROVED EJV invoice (docs/runbook.md#ejv-decision-tree)."""
    if r["active_reference"] is None:
        if r["billable"] is False:
            return (
                "no_reference",
                "no reference: the account is not billable, so EJV_PAYMENT never journals it",
                "A non-billable account's invoice should have been PAID at creation; check the account's billable"
                " flag and how the invoice was created.",
            )
        if r["gl_id"] is None:
            return (
                "no_reference",
                f"no reference: account {r['payment_account_id']} has no GL (distribution_codes.account_id)",
                "Create the account's GL with Finance; EJV_PAYMENT only sends accounts that have one.",
            )
        if r["stop_ejv"]:
            why = (
                f" after {r['file_ref']} was rejected ({r['link_message']})"
                if r["link_status"] == "ERRORED"
                else ""
            )
            return (
                "no_reference",
                f"no reference: GL {r['gl_id']} has stop_ejv{why}",
                f"Fix GL {r['gl_id']} with Finance and set stop_ejv=false; the next EJV_PAYMENT run (20:01) sends it.",
            )
        if r["gl_start"] and (r["gl_start"] > as_of or (r["gl_end"] and r["gl_end"] < as_of)):
            return (
                "no_reference",
                f"no reference: GL {r['gl_id']} is not active on {as_of} ({r['gl_start']} to {r['gl_end'] or 'open'})",
                "EJV_PAYMENT fails for an account whose GL is outside its dates; correct start_date/end_date.",
            )
        note = " (payment_accounts.restrict_ejv is set)" if r["restrict_ejv"] else ""
        return (
            "no_reference",
            f"no reference although the account can be journaled{note}; last reference"
            f" {r['last_reference_status'] or 'none'}",
            "EJV_PAYMENT (20:01 Pacific) should pick it up; if it did not last night, check the job's logs.",
        )
    if r["link_row"] is None:
        return (
            "reference_without_file",
            f"ACTIVE reference {r['active_reference']} but no ejv_links row names it",
            "Not sent by EJV_PAYMENT as far as pay-db knows; check who created the reference before re-sending.",
        )
    sent = f"sent in {r['file_ref']} (batch {r['file_id']}, journal {r['header_id']})"
    if r["feedback_file_ref"] is None:
        return (
            "sent_no_feedback",
            f"ACTIVE reference {r['active_reference']}, {sent}, no FEEDBACK processed",
            f"Search the FEEDBACK files: `paynb ejv search {r['id']}`; if CAS never answered, re-send the INBOX:"
            f" `paynb ejv redate plan {r['file_ref']}`.",
        )
    return (
        "feedback_processed",
        f"ACTIVE reference {r['active_reference']}, {sent}, FEEDBACK {r['feedback_file_ref']} processed"
        f" (line {r['link_status']})",
        f"The FEEDBACK was processed but did not settle this invoice: `paynb ejv search {r['id']}` shows its line and"
        " return code; check pay-queue's log for that file.",
    )


# --- partner disbursements -----------------------------------------------------------------------------------

_PARTNER_SQL = """
SELECT pd.id, pd.status_code, pd.amount, pd.partner_code, pd.created_on, pd.processed_on, pd.is_reversal,
       pd.target_id, pd.target_type, i.invoice_status_code AS invoice_status,
       i.disbursement_status_code AS invoice_disbursement_status,
       ct.has_partner_disbursements,
       ln.file_ref, ln.feedback_file_ref, ln.file_id
  FROM partner_disbursements pd
  LEFT JOIN invoices i ON i.id = CASE WHEN pd.target_type = 'invoice' THEN pd.target_id END
  LEFT JOIN corp_types ct ON ct.code = pd.partner_code
  LEFT JOIN LATERAL (SELECT f.file_ref, f.feedback_file_ref, f.id AS file_id
                       FROM ejv_links l
                       JOIN ejv_headers h ON h.id = l.ejv_header_id
                       JOIN ejv_files f ON f.id = h.ejv_file_id
                      WHERE l.link_id = pd.target_id AND coalesce(l.link_type, 'invoice') = pd.target_type
                        AND f.file_type = 'DISBURSEMENT'
                      ORDER BY l.id DESC LIMIT 1) ln ON true
 WHERE pd.status_code IN ('UPLOADED', 'WAITING_FOR_JOB')
 ORDER BY pd.id
"""


def _partner_disbursements(conn: Any, days: int, as_of: date) -> list[Finding]:
    out = []
    for r in db.fetch_all(conn, _PARTNER_SQL):
        since = r["processed_on"] if r["status_code"] == "UPLOADED" and r["processed_on"] else r["created_on"]
        age = _age(since, as_of)
        if age is None or age < days:
            continue
        target = f"{r['target_type']} {r['target_id']}"
        if r["status_code"] == "UPLOADED":
            if r["file_ref"]:
                action = (
                    f"Sent in {r['file_ref']}: find its FEEDBACK with `paynb ejv search {r['target_id']}`; if CAS never"
                    f" answered, re-send it with `paynb ejv redate plan {r['file_ref']}`."
                )
            else:
                action = (
                    "UPLOADED but no DISBURSEMENT ejv_links row names it, so no INBOX carries it (see bcgov/entity"
                    f" #24847): search `paynb ejv search {r['target_id']}`; if nothing was sent, set it back to"
                    " WAITING_FOR_JOB so EJV_PARTNER sends it:"
                    f" `paynb ejv partner-reset plan --partner-disbursement-id {r['id']}`."
                )
        else:
            action = (
                f"EJV_PARTNER (19:01 Pacific) has not taken it: check corp_types.has_partner_disbursements for"
                f" {r['partner_code']} ({r['has_partner_disbursements']}), stop_ejv on the partner GL, and the job's log."
            )
        out.append(
            Finding(
                kind=PARTNER_STUCK,
                id=r["id"],
                severity="error",
                age_business_days=age,
                summary=f"partner disbursement {r['id']} ({r['partner_code']}, {r['amount']} for {target})"
                f" {r['status_code']} for {age} business day(s)",
                action=action,
                details={
                    k: r[k]
                    for k in (
                        "status_code",
                        "amount",
                        "partner_code",
                        "created_on",
                        "processed_on",
                        "is_reversal",
                        "target_id",
                        "target_type",
                        "invoice_status",
                        "invoice_disbursement_status",
                        "file_ref",
                        "feedback_file_ref",
                    )
                },
            )
        )
    return out
