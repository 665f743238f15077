"""``paynb invoice explain``: everything about an invoice, a timeline, and what to do next.

Example::

    from paynb.ops.invoice import explain_invoices
    report = explain_invoices(["12345", "REG00001234"])
    for e in report.explanations:
        print(e.invoice_id, [s.code for s in e.situations] or "no trouble")
"""

from __future__ import annotations

from paynb.ops.invoice.diagnose import TITLES, Situation
from paynb.ops.invoice.explain import ExplainReport, Explanation, explain_invoices
from paynb.ops.invoice.timeline import Event

__all__ = ["TITLES", "Event", "ExplainReport", "Explanation", "Situation", "explain_invoices"]
