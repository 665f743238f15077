"""Showing an explanation: terminal text, a standalone HTML page, a timeline chart, a notebook picker."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from paynb.extras import require
from paynb.ops.invoice.explain import ExplainReport, Explanation

_BRIEF = {
    "references": ["invoice_number", "reference_number", "status_code", "created_on", "is_consolidated"],
    "payments": [
        "id",
        "payment_method_code",
        "payment_status_code",
        "paid_amount",
        "payment_date",
        "invoice_number",
    ],
    "statements": ["id", "frequency", "from_date", "to_date", "created_on"],
    "ejv": ["file_ref", "file_status", "link_status", "file_created_on", "feedback_file_ref"],
    "partner_disbursements": ["id", "partner_code", "status_code", "amount", "created_on", "feedback_on"],
    "refunds_partial": ["id", "payment_line_item_id", "refund_type", "refund_amount", "status", "is_credit"],
    "refunds": ["id", "status", "type", "reason", "requested_by", "requested_date"],
    "receipts": ["receipt_number", "receipt_amount", "receipt_date"],
    "nsf": ["id", "invoice_number", "cfs_account", "description"],
}


def headline(e: Explanation) -> str:
    inv = e.facts.invoice
    acct = (e.facts.account or {}).get("auth_account_id") or "-"
    asked = (
        f" (asked as {', '.join(a for a in e.asked_as if a != str(e.invoice_id))})"
        if any(a != str(e.invoice_id) for a in e.asked_as)
        else ""
    )
    return (
        f"Invoice {e.invoice_id}{asked}: {inv['payment_method_code']} {inv['invoice_status_code']}, "
        f"total {inv['total']}, paid {inv.get('paid')}, account {acct}, created {inv['created_on']:%Y-%m-%d %H:%M} UTC"
    )


def section_frames(e: Explanation) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    for name, columns in _BRIEF.items():
        rows = getattr(e.facts, name)
        if rows:
            out[name] = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows])
    if e.cfs.get("invoices"):
        out["cfs invoices"] = pd.DataFrame(
            [
                {k: i.get(k) for k in ("invoice_number", "status", "total", "amount_due", "invoice_date")}
                for i in e.cfs["invoices"]
            ]
        )
    if e.cfs.get("credit_memos"):
        out["cfs credit memos"] = pd.DataFrame(
            [
                {k: m.get(k) for k in ("credit_memo_number", "amount", "comments")}
                for m in e.cfs["credit_memos"]
            ]
        )
    if e.feedback:
        out["feedback/inbox lines"] = pd.DataFrame(
            [
                {k: m.get(k) for k in ("kind", "name", "line", "return_code", "amount", "effective_date")}
                for m in e.feedback
            ]
        )
    if e.csv_rows:
        out["settlement csv rows"] = pd.DataFrame(e.csv_rows)[
            ["file_name", "line", "record_type", "status", "amount"]
        ]
    return out


def timeline_frame(e: Explanation) -> pd.DataFrame:
    return pd.DataFrame(
        [{"at": ev.at, "what": ev.what, "meaning": ev.meaning} for ev in e.timeline],
        columns=["at", "what", "meaning"],
    )


def diagnosis_lines(e: Explanation) -> list[str]:
    if not e.situations:
        return ["No trouble found: nothing in pay-db, CFS or the files needs a fix."]
    lines = []
    for s in e.situations:
        lines.append(f"[{s.severity}] {s.title}: {s.detail}")
        lines.append(f"    next: {s.next_command}")
    return lines


def render_text(report: ExplainReport, *, format_table: Any) -> str:
    parts: list[str] = []
    for e in report.explanations:
        parts.append(headline(e))
        parts.extend(diagnosis_lines(e))
        for name, frame in section_frames(e).items():
            parts.append(format_table(frame, title=f"\n{name}", max_rows=20))
        parts.append(format_table(timeline_frame(e), title="\ntimeline", max_rows=40))
        for problem in e.problems:
            parts.append(f"could not read: {problem}")
        parts.append("")
    if report.unknown:
        parts.append(f"not found in pay-db: {', '.join(report.unknown)}")
    return "\n".join(parts)


def render_html(report: ExplainReport) -> str:
    """One self-contained page (no scripts), for a ticket or an e-mail."""
    body: list[str] = []
    for e in report.explanations:
        body.append(f"<h2>{html.escape(headline(e))}</h2>")
        body.append(
            "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in diagnosis_lines(e)) + "</ul>"
        )
        for name, frame in section_frames(e).items():
            body.append(f"<h3>{html.escape(name)}</h3>" + frame.to_html(index=False, na_rep="", border=0))
        body.append("<h3>timeline</h3>" + timeline_frame(e).to_html(index=False, na_rep="", border=0))
        if e.problems:
            body.append("<p><b>Could not read:</b> " + html.escape("; ".join(e.problems)) + "</p>")
    if report.unknown:
        body.append("<p><b>Not found in pay-db:</b> " + html.escape(", ".join(report.unknown)) + "</p>")
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:90%}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>paynb invoice explain</title>"
        f"<style>{style}</style></head><body><h1>paynb invoice explain</h1>"
        f"<p>as of {report.as_of:%Y-%m-%d %H:%M} UTC</p>{''.join(body)}</body></html>"
    )


def plot_timeline(e: Explanation) -> Any:
    """The timeline as a chart: one row per source, a dot per event, labelled."""
    plt = require("matplotlib.pyplot", "the invoice timeline chart")
    frame = timeline_frame(e)
    fig, ax = plt.subplots(figsize=(10, 0.45 * max(4, len(frame)) + 1))
    if frame.empty:
        ax.text(0.5, 0.5, "no timestamps", ha="center")
        return fig
    ys = list(range(len(frame)))[::-1]
    ax.scatter(frame["at"], ys, s=30)
    for y, (_, row) in zip(ys, frame.iterrows(), strict=True):
        ax.annotate(
            str(row["what"])[:70], (row["at"], y), xytext=(6, -3), textcoords="offset points", fontsize=8
        )
    ax.set_yticks([])
    ax.set_title(f"invoice {e.invoice_id}: what happened when")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
