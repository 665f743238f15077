"""INBOX and FEEDBACK files for the sandbox bucket, rendered from the sandbox's ejv_* rows.

For every ``ejv_files`` row of type PAYMENT this renders the INBOX
payment-jobs would have sent (docs/files.md#inbox: batch number = ``ejv_files.id``, journal name = ministry
prefix + ``ejv_headers.id``, one credit/debit JD pair per fee, service fee and GST amount, flow-through =
invoice id or ``<invoice>-PR-<refunds_partial.id>``) and, when ``feedback_file_ref`` is set, the FEEDBACK
CAS returned for it (docs/files.md#feedback, written by :func:`paynb.formats.feedback.render_feedback`): return code ``0000``
for COMPLETED rows and the row's code and message for ERRORED ones. A file without ``feedback_file_ref``
gets no FEEDBACK (scenario ``ejv_no_feedback``).

A DISBURSEMENT file (sbc-pay ``ejv_partner_distribution_task.py``, docs/sandbox-generator.md) has one journal
name per ``ejv_headers`` row (one partner corp type) and a JH for each BC Registries revenue GL in it; each
amount (line total + statutory GST, or ``partner_disbursements.amount``) is one JD pair crediting the
partner's GL and debiting the revenue GL, the other way round for a reversal; flow-through = invoice id, or
``<invoice>-<partner_disbursements.id>``.

Where the files go (docs/files.md#bucket), as keys of ``paynb_sandbox.store_objects``:

* after the 2025-08-26 move to GCS: INBOX + ``.TRG`` under ``cgi_processed/`` (already sent to CAS) or,
  for a file without FEEDBACK made in the last ``PENDING_DAYS`` days, still under ``cgi_processing/``;
  FEEDBACK under ``cgi_feedback/``;
* before it: the MinIO ``cgi-ejv`` bucket, bare names (``cgi-ejv/<name>``), INBOX copies and FEEDBACK.

Every rendered file is parsed back before it is stored, so a sandbox file is always one the parsers read.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paynb.errors import SandboxError
from paynb.formats.feedback import SUCCESS_CODE, parse_feedback, render_feedback
from paynb.formats.flowthrough import format_flowthrough
from paynb.formats.inbox import (
    InboxFile,
    InboxRecord,
    fiscal_year,
    format_batch_header,
    format_batch_trailer,
    format_journal_detail,
    format_journal_header,
    journal_batch_name,
    journal_name,
    parse_inbox,
    parse_inbox_name,
    trigger_name,
)
from paynb.timez import pacific_date, pacific_today

FEEDER = "3505"  # prod feeder number (docs/files.md#inbox)
MINISTRY_PREFIX = "FI"  # as in the rendered samples; prod's value is not public (docs/files.md#inbox)
DESCRIPTION = "BCREGISTRIES {month} {day:02d} DISBURSEMENTS"  # CGI_DISBURSEMENT_DESC default
GCS_SINCE = date(2025, 8, 26)  # sbc-pay d72604f38: MinIO -> GCS
LEGACY_BUCKET = "cgi-ejv"
FEEDBACK_FOLDER = "cgi_feedback"
PROCESSING_FOLDER = "cgi_processing"
PROCESSED_FOLDER = "cgi_processed"
PENDING_DAYS = 1  # a file without FEEDBACK this recent has not been picked up by the SFTP poller yet
FALLBACK_ERROR_CODE = "9999"
CONTENT_TYPE = "text/plain"

# a stored message such as "JD 0155 Invalid account code combination" carries its return code
_CODE_IN_MESSAGE = re.compile(r"(?:(?:BH|JH|JD|IH)\s+)?(?P<code>[0-9A-Za-z]{4})\b")


@dataclass
class _Header:
    id: int
    file_id: int
    account_id: int | None
    status: str | None
    message: str | None
    links: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SeedSummary:
    inbox: int = 0
    feedback: int = 0
    triggers: int = 0
    legacy: int = 0
    pending: int = 0
    skipped_files: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inbox": self.inbox,
            "feedback": self.feedback,
            "triggers": self.triggers,
            "legacy": self.legacy,
            "pending": self.pending,
            "skipped_files": self.skipped_files,
        }


def seed_ejv_files(conn: Connection, *, as_of: date | None = None) -> SeedSummary:
    """Render the INBOX/FEEDBACK files of the sandbox's ejv_* rows into ``paynb_sandbox.store_objects``.

    Call it in the generator's transaction (or any writable connection) after ``generate(...)``; running it
    again replaces the same keys. ``as_of`` defaults to the generator's (``paynb_sandbox.meta``).
    """
    as_of = as_of or _meta_as_of(conn) or pacific_today()
    data = _load(conn)
    summary = SeedSummary()
    objects: dict[str, bytes] = {}
    feedback_groups: dict[str, list[tuple[dict[str, Any], InboxFile]]] = defaultdict(list)

    for f in data["files"]:
        if f["file_type"] not in (None, "PAYMENT", "DISBURSEMENT"):
            summary.skipped_files.append(f["id"])  # AP layouts are not rendered
            continue
        render = _render_disbursement if f["file_type"] == "DISBURSEMENT" else _render_inbox
        inbox = render(f, data)
        if inbox is None:
            summary.skipped_files.append(f["id"])  # no transactions: sbc-pay writes no file
            continue
        created = pacific_date(f["created_on"])
        name = f["file_ref"]
        if created < GCS_SINCE:
            objects[f"{LEGACY_BUCKET}/{name}"] = inbox.to_bytes()
            summary.legacy += 1
        else:
            pending = f["feedback_file_ref"] is None and (as_of - created).days <= PENDING_DAYS
            folder = PROCESSING_FOLDER if pending else PROCESSED_FOLDER
            summary.pending += int(pending)
            objects[f"{folder}/{name}"] = inbox.to_bytes()
            objects[f"{folder}/{trigger_name(name)}"] = b""
            summary.triggers += 1
        summary.inbox += 1
        if f["feedback_file_ref"]:
            feedback_groups[f["feedback_file_ref"]].append((f, inbox))

    for feedback_name, batches in sorted(feedback_groups.items()):
        text = "".join(render_feedback(inbox, outcome=_outcome(f, data)) for f, inbox in batches)
        parse_feedback(text, file=feedback_name)  # must read back
        received = _stamp_date(feedback_name) or pacific_date(batches[0][0]["created_on"])
        key = (
            f"{LEGACY_BUCKET}/{feedback_name}"
            if received < GCS_SINCE
            else f"{FEEDBACK_FOLDER}/{feedback_name}"
        )
        summary.legacy += int(received < GCS_SINCE)
        objects[key] = text.encode("utf-8")
        summary.feedback += 1

    _store(conn, objects)
    summary.keys = sorted(objects)
    return summary


# --- loading ---------------------------------------------------------------------------------------------------


def _meta_as_of(conn: Connection) -> date | None:
    row = conn.execute(sa.text("SELECT value FROM paynb_sandbox.meta WHERE key = 'as_of'")).first()
    return date.fromisoformat(row[0]) if row and row[0] else None


def _load(conn: Connection) -> dict[str, Any]:
    def rows(sql: str) -> list[dict[str, Any]]:
        return [dict(r) for r in conn.execute(sa.text(sql)).mappings()]

    files = rows(
        "SELECT id, created_on, file_ref, disbursement_status_code AS status, feedback_file_ref, message, file_type"
        " FROM ejv_files ORDER BY id"
    )
    headers: dict[int, _Header] = {}
    for h in rows(
        "SELECT id, ejv_file_id, payment_account_id, disbursement_status_code AS status, message"
        " FROM ejv_headers ORDER BY id"
    ):
        headers[h["id"]] = _Header(
            h["id"], h["ejv_file_id"], h["payment_account_id"], h["status"], h["message"]
        )
    links = rows(
        "SELECT id, ejv_header_id, link_id, link_type, disbursement_status_code AS status, message, sequence"
        " FROM ejv_links ORDER BY ejv_header_id, sequence NULLS LAST, id"
    )
    file_types = {f["id"]: f["file_type"] or "PAYMENT" for f in files}
    header_types = {h.id: file_types.get(h.file_id) for h in headers.values()}
    # a later link of the same target in the same kind of file is its reversal
    first_link: dict[tuple[int, str, str | None], int] = {}
    for link in sorted(links, key=lambda r: r["id"]):
        key = (link["link_id"], link["link_type"] or "invoice", header_types.get(link["ejv_header_id"]))
        first_link.setdefault(key, link["id"])
    for link in links:
        key = (link["link_id"], link["link_type"] or "invoice", header_types.get(link["ejv_header_id"]))
        link["reversal"] = link["link_type"] == "partial_refund" or first_link.get(key) != link["id"]
        if link["ejv_header_id"] in headers:
            headers[link["ejv_header_id"]].links.append(link)
    lines: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for li in rows(
        "SELECT l.invoice_id, l.id, l.total, l.service_fees, l.service_fees_gst, l.statutory_fees_gst,"
        " l.fee_distribution_id FROM payment_line_items l"
        " WHERE l.line_item_status_code = 'ACTIVE'"
        " AND l.invoice_id IN (SELECT link_id FROM ejv_links WHERE link_type = 'invoice' OR link_type IS NULL)"
        " ORDER BY l.invoice_id, l.id"
    ):
        lines[li["invoice_id"]].append(li)
    partials = {
        r["id"]: r
        for r in rows(
            "SELECT rp.id, rp.invoice_id, rp.refund_amount, l.fee_distribution_id FROM refunds_partial rp"
            " JOIN payment_line_items l ON l.id = rp.payment_line_item_id"
            " WHERE rp.id IN (SELECT link_id FROM ejv_links WHERE link_type = 'partial_refund')"
        )
    }
    invoices = {
        r["id"]: r
        for r in rows(
            "SELECT id, total FROM invoices"
            " WHERE id IN (SELECT link_id FROM ejv_links WHERE link_type = 'invoice' OR link_type IS NULL)"
        )
    }
    codes = {r["distribution_code_id"]: r for r in rows("SELECT * FROM distribution_codes")}
    disbursements: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for pd in rows(
        "SELECT id, target_id, amount, is_reversal FROM partner_disbursements WHERE target_type = 'invoice'"
        " AND target_id IN (SELECT link_id FROM ejv_links WHERE link_type = 'invoice') ORDER BY id"
    ):
        disbursements[pd["target_id"]].append(pd)
    by_file: dict[int, list[_Header]] = defaultdict(list)
    for h in headers.values():
        by_file[h.file_id].append(h)
    return {
        "files": files,
        "headers": by_file,
        "lines": lines,
        "partials": partials,
        "invoices": invoices,
        "codes": codes,
        "disbursements": disbursements,
    }


# --- rendering -------------------------------------------------------------------------------------------------


def _gl(code: dict[str, Any] | None) -> str:
    """The 50-character JD distribution string (docs/files.md#inbox); parts wider than the usual 3/5/5/4/7 are cut."""
    if code is None:
        return f"{'112':<50}"
    parts = "".join(
        str(code.get(k) or "")
        for k in ("client", "responsibility_centre", "service_line", "stob", "project_code")
    )
    return f"{parts + '0000000000':<50.50}"


def _account_gl(codes: dict[int, dict[str, Any]], account_id: int | None, day: date) -> dict[str, Any] | None:
    candidates = [c for c in codes.values() if account_id is not None and c["account_id"] == account_id]
    active = [
        c for c in candidates if c["start_date"] <= day and (c["end_date"] is None or c["end_date"] >= day)
    ]
    pool = active or candidates
    return max(pool, key=lambda c: (c["start_date"], c["distribution_code_id"])) if pool else None


def _stamp_date(name: str) -> date | None:
    match = re.search(r"\.([0-9]{8})[0-9]{6}$", name)
    if not match:
        return None
    try:
        return datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        return None


def _amounts(link: dict[str, Any], data: dict[str, Any]) -> list[tuple[Decimal, int | None, str]]:
    """(amount, credit GL id, flow-through) per JD pair of one link, in sbc-pay's order."""
    codes = data["codes"]
    if link["link_type"] == "partial_refund":
        rp = data["partials"].get(link["link_id"])
        if rp is None:
            return []
        flow = format_flowthrough(rp["invoice_id"], refunds_partial_id=rp["id"])
        return [(Decimal(rp["refund_amount"]), rp["fee_distribution_id"], flow)]
    invoice_id = link["link_id"]
    flow = format_flowthrough(invoice_id)
    out: list[tuple[Decimal, int | None, str]] = []
    for li in data["lines"].get(invoice_id, []):
        fee = codes.get(li["fee_distribution_id"]) or {}
        for amount, gl_id in (
            (li["total"], li["fee_distribution_id"]),
            (li["service_fees"], fee.get("service_fee_distribution_code_id") or li["fee_distribution_id"]),
            (
                li["service_fees_gst"],
                fee.get("service_fee_gst_distribution_code_id") or li["fee_distribution_id"],
            ),
            (
                li["statutory_fees_gst"],
                fee.get("statutory_fees_gst_distribution_code_id") or li["fee_distribution_id"],
            ),
        ):
            if amount and Decimal(amount) > 0:
                out.append((Decimal(amount), gl_id, flow))
    if not out and invoice_id in data["invoices"]:  # an invoice without line items: one pair for its total
        out.append((Decimal(data["invoices"][invoice_id]["total"]), None, flow))
    return out


def _render_inbox(f: dict[str, Any], data: dict[str, Any]) -> InboxFile | None:
    try:
        parse_inbox_name(f["file_ref"])
    except Exception:
        raise SandboxError(f"ejv_files {f['id']}: file_ref {f['file_ref']!r} is not an INBOX name") from None
    effective = _stamp_date(f["file_ref"]) or pacific_date(f["created_on"])
    fiscal = fiscal_year(effective)
    codes = data["codes"]
    journals: list[tuple[_Header, dict[str, Any] | None, list[tuple[Decimal, int | None, str, bool]]]] = []
    for header in data["headers"].get(f["id"], []):
        pairs = [(*pair, link["reversal"]) for link in header.links for pair in _amounts(link, data)]
        if pairs:  # docs/schema.md#ejv_files-ejv_headers-ejv_links: a header with no transactions never reaches the file
            journals.append((header, _account_gl(codes, header.account_id, effective), pairs))
    if not journals:
        return None
    gov = journals[0][1]
    batch_type = "GA" if gov is not None and str(gov.get("client")) == "112" else "GI"
    month = effective.strftime("%B").upper()
    lines = [format_batch_header(FEEDER, batch_type, fiscal, f["id"])]
    count = 0
    batch_total = Decimal(0)
    line_number = 0
    for header, account_gl, pairs in journals:
        journal = journal_name(MINISTRY_PREFIX, header.id)
        total = sum((p[0] for p in pairs), Decimal(0))
        lines.append(
            format_journal_header(
                FEEDER, batch_type, journal, journal_batch_name(MINISTRY_PREFIX, f["id"]), total
            )
        )
        count += 1
        batch_total += total
        for amount, gl_id, flow, reversal in pairs:
            tag = f"#{flow}"
            description = f"{DESCRIPTION.format(month=month, day=effective.day):<{100 - len(tag)}}{tag}"
            credit_side = (_gl(codes.get(gl_id)) if gl_id else _gl(None), "C")
            debit_side = (_gl(account_gl), "D")
            for gl, dc in (credit_side, debit_side):
                line_number += 1
                count += 1
                lines.append(
                    format_journal_detail(
                        FEEDER,
                        batch_type,
                        journal,
                        line_number,
                        effective,
                        gl,
                        amount,
                        ("D" if dc == "C" else "C") if reversal else dc,
                        description,
                        flow,
                    )
                )
    lines.append(format_batch_trailer(FEEDER, batch_type, fiscal, f["id"], count, batch_total))
    inbox = parse_inbox("".join(lines), file=f["file_ref"])
    problems = inbox.verify_totals()
    if problems:  # pragma: no cover - the totals are built to agree
        raise SandboxError(f"rendered INBOX {f['file_ref']} is inconsistent: {problems[0]}")
    return inbox


def _disbursed(link: dict[str, Any], data: dict[str, Any]) -> list[tuple[int | None, Decimal, str, bool]]:
    """(BC Registries revenue GL id, amount, flow-through, reversal) of one DISBURSEMENT link."""
    invoice_id = link["link_id"]
    lines = data["lines"].get(invoice_id, [])
    pds = data["disbursements"].get(invoice_id)
    if pds:  # through partner_disbursements: one amount for the invoice
        pd = next((p for p in pds if bool(p["is_reversal"]) == link["reversal"]), pds[0])
        gl = lines[0]["fee_distribution_id"] if lines else None
        flow = format_flowthrough(invoice_id, partner_disbursement_id=pd["id"])
        return [(gl, Decimal(pd["amount"]), flow, bool(pd["is_reversal"]))]
    out = []
    for li in lines:
        code = data["codes"].get(li["fee_distribution_id"]) or {}
        if li["total"] and Decimal(li["total"]) > 0 and code.get("disbursement_distribution_code_id"):
            amount = Decimal(li["total"]) + Decimal(li["statutory_fees_gst"] or 0)
            out.append((li["fee_distribution_id"], amount, format_flowthrough(invoice_id), link["reversal"]))
    return out


def _render_disbursement(f: dict[str, Any], data: dict[str, Any]) -> InboxFile | None:
    """The INBOX of a DISBURSEMENT file, laid out as ejv_partner_distribution_task writes it."""
    try:
        parse_inbox_name(f["file_ref"])
    except Exception:
        raise SandboxError(f"ejv_files {f['id']}: file_ref {f['file_ref']!r} is not an INBOX name") from None
    effective = _stamp_date(f["file_ref"]) or pacific_date(f["created_on"])
    fiscal = fiscal_year(effective)
    codes = data["codes"]
    journals = []
    for header in data["headers"].get(f["id"], []):
        rows = sorted(
            (row for link in header.links for row in _disbursed(link, data)), key=lambda r: r[0] or 0
        )
        if rows:
            journals.append((header, rows))
    if not journals:
        return None

    def partner_gl(gl_id: int | None) -> dict[str, Any] | None:
        return codes.get((codes.get(gl_id) or {}).get("disbursement_distribution_code_id"))

    first = partner_gl(journals[0][1][0][0])
    batch_type = "GA" if first is not None and str(first.get("client")) == "112" else "GI"
    month = effective.strftime("%B").upper()
    lines = [format_batch_header(FEEDER, batch_type, fiscal, f["id"])]
    count = 0
    batch_total = Decimal(0)
    for header, rows in journals:
        journal = journal_name(MINISTRY_PREFIX, header.id)
        for gl_id in dict.fromkeys(r[0] for r in rows):  # one JH per revenue GL, in GL order
            mine = [r for r in rows if r[0] == gl_id]
            total = sum((r[1] for r in mine), Decimal(0))
            lines.append(
                format_journal_header(
                    FEEDER, batch_type, journal, journal_batch_name(MINISTRY_PREFIX, f["id"]), total
                )
            )
            count += 1
            batch_total += total
            line_number = 0
            for _revenue_gl, amount, flow, reversal in mine:
                tag = f"#{flow}"
                description = f"{DESCRIPTION.format(month=month, day=effective.day):<{100 - len(tag)}}{tag}"
                for gl, dc in ((_gl(partner_gl(gl_id)), "C"), (_gl(codes.get(gl_id)), "D")):
                    line_number += 1
                    count += 1
                    side = ("D" if dc == "C" else "C") if reversal else dc
                    detail = (journal, line_number, effective, gl, amount, side, description, flow)
                    lines.append(format_journal_detail(FEEDER, batch_type, *detail))
    lines.append(format_batch_trailer(FEEDER, batch_type, fiscal, f["id"], count, batch_total))
    inbox = parse_inbox("".join(lines), file=f["file_ref"])
    problems = inbox.verify_totals()
    if problems:  # pragma: no cover - the totals are built to agree
        raise SandboxError(f"rendered INBOX {f['file_ref']} is inconsistent: {problems[0]}")
    return inbox


def split_message(message: str | None) -> tuple[str, str]:
    """(return code, message) for an ERRORED row: the code the stored message starts with, else 9999."""
    text = (message or "").strip()
    match = _CODE_IN_MESSAGE.match(text)
    code = match.group("code") if match else FALLBACK_ERROR_CODE
    if code == SUCCESS_CODE:
        code = FALLBACK_ERROR_CODE
    return code, text


def _outcome(f: dict[str, Any], data: dict[str, Any]):
    headers = {h.id: h for h in data["headers"].get(f["id"], [])}
    failed_links: dict[tuple[int, str], dict[str, Any]] = {}
    for h in headers.values():
        for link in h.links:
            if link["status"] == "ERRORED":
                for _amount, _gl, flow in _amounts(link, data):
                    failed_links[(h.id, flow)] = link

    def outcome(record: InboxRecord) -> tuple[str, str]:
        if record.record_type == "BH":
            return split_message(f["message"]) if f["status"] == "ERRORED" else (SUCCESS_CODE, "")
        if record.record_type == "JH":
            header = headers.get(record.ejv_header_id or -1)
            if header is not None and header.status == "ERRORED":
                return split_message(header.message)
            return SUCCESS_CODE, ""
        if record.record_type == "JD" and record.ejv_header_id is not None and record.flowthrough:
            link = failed_links.get((record.ejv_header_id, record.flowthrough))
            if link is not None:
                return split_message(link["message"])
        return SUCCESS_CODE, ""

    return outcome


def _store(conn: Connection, objects: dict[str, bytes]) -> None:
    if not objects:
        return
    conn.execute(
        sa.text(
            "INSERT INTO paynb_sandbox.store_objects (key, content, content_type) VALUES (:k, :c, :t)"
            " ON CONFLICT (key) DO UPDATE SET content = EXCLUDED.content, content_type = EXCLUDED.content_type"
        ),
        [{"k": k, "c": v, "t": CONTENT_TYPE} for k, v in sorted(objects.items())],
    )


def ejv_object_keys(keys: Iterable[str]) -> list[str]:
    """The EJV keys among store-object keys (for reports and tests)."""
    prefixes = (f"{FEEDBACK_FOLDER}/", f"{PROCESSING_FOLDER}/", f"{PROCESSED_FOLDER}/", f"{LEGACY_BUCKET}/")
    return sorted(k for k in keys if k.startswith(prefixes))


__all__ = ["SeedSummary", "ejv_object_keys", "seed_ejv_files", "split_message"]
