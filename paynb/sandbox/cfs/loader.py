"""Fill a :class:`CfsState` from the sandbox pay-db: what CAS would know about its sites, invoices,
credits and receipts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.db import build_url
from paynb.errors import SandboxError
from paynb.sandbox import routing_slips
from paynb.sandbox.cfs.state import CfsState, _money

SITES_SQL = """
SELECT DISTINCT ON (ca.cfs_party, ca.cfs_account, ca.cfs_site)
       ca.cfs_party, ca.cfs_account, ca.cfs_site, ca.payment_method, ca.status, pa.name
FROM cfs_accounts ca
LEFT JOIN payment_accounts pa ON pa.id = ca.account_id
WHERE ca.cfs_party IS NOT NULL AND ca.cfs_account IS NOT NULL AND ca.cfs_site IS NOT NULL
ORDER BY ca.cfs_party, ca.cfs_account, ca.cfs_site, ca.id DESC
"""
INVOICES_SQL = """
SELECT cfs_party, cfs_account, cfs_site, invoice_number, total, amount_due, present, payment_method
FROM paynb_sandbox.cfs_invoices
WHERE cfs_party IS NOT NULL AND cfs_account IS NOT NULL AND cfs_site IS NOT NULL
ORDER BY cfs_party, cfs_account, cfs_site, invoice_number
"""
# a credit belongs to the CFS site it names; the account row gives party and account number
CREDITS_SQL = """
SELECT DISTINCT ON (c.id) c.cfs_identifier, c.is_credit_memo, c.amount, c.remaining_amount, c.details,
       ca.cfs_party, ca.cfs_account, ca.cfs_site
FROM credits c
JOIN cfs_accounts ca ON ca.cfs_site = c.cfs_site AND ca.account_id = c.account_id
WHERE c.cfs_identifier IS NOT NULL AND ca.cfs_party IS NOT NULL AND ca.cfs_account IS NOT NULL
ORDER BY c.id, ca.id DESC
"""
RECEIPTS_SQL = """
SELECT p.receipt_number, p.invoice_number, p.paid_amount,
       to_char(p.payment_date, 'YYYY-MM-DD') AS receipt_date, ci.cfs_party, ci.cfs_account, ci.cfs_site
FROM payments p
JOIN paynb_sandbox.cfs_invoices ci ON ci.invoice_number = p.invoice_number AND ci.present
WHERE p.payment_status_code = 'COMPLETED' AND p.receipt_number IS NOT NULL AND p.paid_amount IS NOT NULL
ORDER BY p.id
"""


def load_state(url: str) -> CfsState:
    """Load what CAS would know from the sandbox pay-db: ``paynb_sandbox.cfs_invoices`` (``present =
    false`` -> 404), the sites of ``cfs_accounts``, credit memos and on-account receipts of ``credits``,
    receipts of completed ``payments``, and one receipt per routing slip (:mod:`paynb.sandbox.routing_slips`)."""
    state = CfsState()
    state.db_url = url
    engine = sa.create_engine(build_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            _load_sites(state, conn.execute(sa.text(SITES_SQL)).mappings())
            _load_invoices(state, conn.execute(sa.text(INVOICES_SQL)).mappings())
            _load_credits(state, conn.execute(sa.text(CREDITS_SQL)).mappings())
            _load_receipts(state, conn.execute(sa.text(RECEIPTS_SQL)).mappings())
            routing_slips.load_receipts(state, conn.execute(sa.text(routing_slips.RECEIPTS_SQL)).mappings())
    except sa.exc.DBAPIError as err:
        first = str(getattr(err, "orig", err)).strip().splitlines()
        raise SandboxError(
            f"cannot load the CFS state from the sandbox database: {first[0] if first else type(err).__name__}",
            hint="point --db-url at a sandbox pay-db (one with the paynb_sandbox schema)",
        ) from None
    finally:
        engine.dispose()
    state.renumber()
    return state


def _site(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return row["cfs_party"], row["cfs_account"], row["cfs_site"]


def _load_sites(state: CfsState, rows: Iterable[Mapping[str, Any]]) -> None:
    for r in rows:
        method = r["payment_method"] or "PAD"
        status = r["status"] or "ACTIVE"
        state.add_site(*_site(r), payment_method=method, status=status, party_name=r["name"] or None)


def _load_invoices(state: CfsState, rows: Iterable[Mapping[str, Any]]) -> None:
    for r in rows:
        state.add_invoice(
            *_site(r),
            r["invoice_number"],
            r["total"],
            r["amount_due"],
            present=bool(r["present"]),
            payment_method=r["payment_method"],
        )


def _load_credits(state: CfsState, rows: Iterable[Mapping[str, Any]]) -> None:
    """Credit memos, and on-account receipts (``credits`` rows that are not memos)."""
    for r in rows:
        if r["is_credit_memo"]:
            remaining, number, comments = r["remaining_amount"], r["cfs_identifier"], r["details"] or ""
            state.add_credit_memo(
                *_site(r), r["amount"], remaining=remaining, number=number, comments=comments
            )
        else:
            rec = state.add_receipt(*_site(r), r["cfs_identifier"], r["amount"])
            rec["unapplied"] = _money(r["remaining_amount"])


def _load_receipts(state: CfsState, rows: Iterable[Mapping[str, Any]]) -> None:
    """Receipts of completed payments; one receipt can pay several invoices of its site."""
    for r in rows:
        key = (*_site(r), r["receipt_number"])
        paid = _money(r["paid_amount"])
        rec = state.receipts.get(key)
        if rec is None:
            applied = {r["invoice_number"]: r["paid_amount"]}
            state.add_receipt(*key, r["paid_amount"], applied=applied, receipt_date=r["receipt_date"])
            continue
        rec["receipt_amount"] += paid
        rec["invoices"].append({"invoice_number": r["invoice_number"], "amount_applied": paid})
        inv = state.invoices.get((*key[:3], r["invoice_number"]))
        if inv is not None and key[3] not in inv["receipts"]:
            inv["receipts"].append(key[3])
