"""A stateful CAS/CFS server for the sandbox and the tests.

It speaks the contract of ``paybc-1.0.0.yaml`` (the sbc-pay PayBC mock) for the endpoints paynb uses —
same paths (trailing slashes included), JSON field names and status codes:

====================================================  =========================================
``POST /oauth/token``                                 Basic auth, ``grant_type=client_credentials``
``GET  /cfs/parties/{p}/accs/{a}/sites/{s}/``          site
``GET  …/sites/{s}/invs/{inv}/``                       invoice (404 when CAS never got it)
``GET  …/sites/{s}/rcpts/{rcpt}/``                     receipt
``GET  …/sites/{s}/cms/{cm}/``                         credit memo (used by sbc-pay; not in the mock)
``GET  …/sites/{s}/cms/``                              the site's credit memos, ORDS ``items`` paging
``POST …/sites/{s}/cms/``                              create a credit memo (stateful)
====================================================  =========================================

Every API call needs a Bearer token this server issued (401 otherwise) and, when one is configured, the
``Pay-Connector`` header (403 otherwise). Errors have the spec's ``ErrorResponse`` body
(``{"code", "message"}``).

Knobs (constructor arguments, ``POST /_sandbox/knobs``, or ``RunningCfsServer.set_knobs``):
``latency_ms``, ``fault_rate`` (random 500s, seeded), ``burst_429`` (the next N calls get 429),
``retry_after_s``, ``token_ttl_s``, ``expire_tokens_after`` (revoke every token after N more calls),
``drop_rate`` (close the connection mid-response), ``fail_after_cms_create`` (create the next N memos, then
drop the connection before the answer is complete), ``fail_next`` (list of ``[path_regex, status]`` used
once each; status 0 drops the connection without acting), ``amounts_as_strings``, ``seed``.

Control endpoints (no auth; the server listens on loopback and holds synthetic data):
``GET /_sandbox/state`` (knobs, request counters, data), ``POST /_sandbox/knobs``,
``POST /_sandbox/reset`` (zero the counters), ``POST /_sandbox/reload`` (re-read the database).

Run it for ``paynb sandbox up``::

    python -m paynb.sandbox.cfs_server --db-url postgresql://postgres@127.0.0.1:5432/pay \\
        --port 8123 --client-id paynb-sandbox --client-secret-file .sandbox/secrets/cfs_client_secret \\
        [--fas-client-id ID --fas-client-secret-file F] [--pay-connector-file F] \\
        [--latency-ms 100] [--fault-rate 0.05] [--burst-429 N] [--token-ttl-s S] [--drop-rate F] [--seed N]

Secrets are read from files (or ``PAYNB_CFS_SANDBOX_CLIENT_SECRET``, ``…_FAS_CLIENT_SECRET``,
``…_PAY_CONNECTOR``), never from the command line.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from paynb.errors import SandboxError
from paynb.secrets import Secret

CENT = Decimal("0.01")
PROVIDER = "BC Registries sandbox (paynb)"
FIRST_CM_NUMBER = 900001
DEFAULT_PAGE = 25
MAX_PAGE = 500

SiteKey = tuple[str, str, str]
DocKey = tuple[str, str, str, str]


class PayloadError(ValueError):
    """A request body CFS would refuse (answered with 400)."""


def _money(value: Any, name: str = "amount") -> Decimal:
    if isinstance(value, bool):
        raise PayloadError(f"{name} is not an amount")
    try:
        text = str(value).strip().replace("$", "").replace(",", "")
        return Decimal(text).quantize(CENT)
    except (InvalidOperation, ValueError):
        raise PayloadError(f"{name} is not an amount") from None


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- state -------------------------------------------------------------------------------------------------
class CfsState:
    """What CAS knows: sites, invoices, receipts and credit memos. Thread-safe through ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.sites: dict[SiteKey, dict] = {}
        self.invoices: dict[DocKey, dict] = {}
        self.missing_invoices: set[DocKey] = set()  # pay-db refers to them, CAS never got them (404)
        self.receipts: dict[DocKey, dict] = {}
        self.credit_memos: dict[DocKey, dict] = {}
        # invoice numbers per site: linking a new memo to the invoices its comments name looks only at
        # its own site (scanning every invoice made loading the large sandbox quadratic)
        self._site_invoices: dict[SiteKey, dict[str, None]] = {}
        self._next_cm = FIRST_CM_NUMBER
        self.db_url: str | None = None

    # -- builders ------------------------------------------------------------------------------------------
    def add_site(
        self,
        party: str,
        account: str,
        site: str,
        *,
        payment_method: str = "PAD",
        site_name: str = "Site 1",
        party_name: str | None = None,
        account_name: str | None = None,
        receipt_method: str | None = None,
        status: str = "ACTIVE",
    ) -> dict:
        key = (str(party), str(account), str(site))
        with self.lock:
            rec = self.sites.get(key)
            if rec is None:
                rec = {
                    "site_name": site_name,
                    "party_name": party_name or f"BCR-{party}",
                    "account_name": account_name or "BCR",
                    "payment_method": payment_method,
                    "receipt_method": receipt_method
                    or ("BCR-PAD Daily" if payment_method == "PAD" else None),
                    "status": status,
                }
                self.sites[key] = rec
            return rec

    def add_invoice(
        self,
        party: str,
        account: str,
        site: str,
        invoice_number: str,
        total: Any,
        amount_due: Any = None,
        *,
        present: bool = True,
        lines: list[dict] | None = None,
        transaction_date: str | None = None,
        comments: str = "",
        payment_method: str | None = None,
    ) -> dict | None:
        """Add an invoice; ``amount_due`` defaults to ``total`` (not yet paid). ``present=False`` records an
        invoice CAS never got: GET answers 404."""
        key = (str(party), str(account), str(site), str(invoice_number))
        with self.lock:
            self.add_site(*key[:3], payment_method=payment_method or "PAD")
            if not present:
                self.missing_invoices.add(key)
                self.invoices.pop(key, None)
                self._site_invoices.get(key[:3], {}).pop(key[3], None)
                return None
            self.missing_invoices.discard(key)
            amount = _money(total, "total")
            due = amount if amount_due is None else _money(amount_due, "amount_due")
            rec = {
                "invoice_number": key[3],
                "pbc_ref_number": _ref_number(key),
                "total": amount,
                "amount_due": due,
                "transaction_date": transaction_date or _now_text(),
                "comments": comments,
                "lines": (
                    [_normalize_line(i, ln) for i, ln in enumerate(lines, start=1)]
                    if lines
                    else [_one_line(amount, "Registry fees")]
                ),
                "receipts": [],
                "credit_memos": [],
            }
            self.invoices[key] = rec
            self._site_invoices.setdefault(key[:3], {})[key[3]] = None
            return rec

    def add_receipt(
        self,
        party: str,
        account: str,
        site: str,
        receipt_number: str,
        amount: Any,
        *,
        applied: Mapping[str, Any] | None = None,
        receipt_date: str | None = None,
        payment_method: str = "BCR-PAD Daily",
    ) -> dict:
        """A receipt, optionally applied to invoices of the same site (``{invoice_number: amount}``)."""
        key = (str(party), str(account), str(site), str(receipt_number))
        with self.lock:
            self.add_site(*key[:3])
            rec = {
                "receipt_number": key[3],
                "receipt_amount": _money(amount, "receipt_amount"),
                "receipt_date": receipt_date or datetime.now(UTC).strftime("%Y-%m-%d"),
                "payment_method": payment_method,
                "status": "APP",
                "comments": "",
                "invoices": [],
            }
            self.receipts[key] = rec
            for number, value in (applied or {}).items():
                rec["invoices"].append({"invoice_number": str(number), "amount_applied": _money(value)})
                inv = self.invoices.get((*key[:3], str(number)))
                if inv is not None and key[3] not in inv["receipts"]:
                    inv["receipts"].append(key[3])
            return rec

    def add_credit_memo(
        self,
        party: str,
        account: str,
        site: str,
        amount: Any,
        *,
        remaining: Any = None,
        comments: str = "",
        number: str | None = None,
    ) -> dict:
        """An existing credit memo of ``amount`` (positive) with ``remaining`` still open (default all)."""
        amt = abs(_money(amount))
        rest = amt if remaining is None else abs(_money(remaining, "remaining"))
        payload = {
            "batch_source": "MANUAL-OTHER",
            "cust_trx_type": "BC_REG_CREDIT_MEMO",
            "comments": comments,
            "lines": [_one_line(-amt, "Credit")],
        }
        with self.lock:
            rec = self.create_credit_memo(party, account, site, payload, number=number)
            rec["amount_due"] = -rest
            return rec

    # -- stateful operations -------------------------------------------------------------------------------
    def create_credit_memo(
        self, party: str, account: str, site: str, payload: Any, *, number: str | None = None
    ) -> dict:
        """``POST …/cms/``: validate like CFS would, give the memo a number, store it, link it to invoices
        of the site whose number its comments mention. Raises PayloadError (-> 400) or KeyError (-> 404)."""
        site_key = (str(party), str(account), str(site))
        if not isinstance(payload, dict):
            raise PayloadError("the body must be a JSON object")
        for name in ("batch_source", "cust_trx_type", "lines"):
            if name not in payload:
                raise PayloadError(f"{name} is required")
        lines = payload["lines"]
        if not isinstance(lines, list) or not lines:
            raise PayloadError("lines must be a non-empty list")
        normalized = [_normalize_line(i, line) for i, line in enumerate(lines, start=1)]
        amount = sum((ln["unit_price"] * ln["quantity"] for ln in normalized), Decimal("0")).quantize(CENT)
        if amount == 0:
            raise PayloadError("the credit memo amount is 0")
        comments = payload.get("comments") or ""
        if not isinstance(comments, str):
            raise PayloadError("comments must be a string")
        with self.lock:
            if site_key not in self.sites:
                raise KeyError(site_key)
            if number is None:
                number = str(self._next_cm)
                self._next_cm += 1
            key = (*site_key, str(number))
            open_amount = -abs(amount)  # a credit memo's balance is negative while credit is left
            linked = [
                n
                for n in self._site_invoices.get(site_key, {})
                if n in comments and re.search(rf"(?<![A-Za-z0-9]){re.escape(n)}(?![A-Za-z0-9])", comments)
            ]
            rec = {
                "credit_memo_number": str(number),
                "total": open_amount,
                "amount_due": open_amount,
                "comments": comments,
                "batch_source": str(payload["batch_source"]),
                "cust_trx_type": str(payload["cust_trx_type"]),
                "transaction_date": str(payload.get("transaction_date") or _now_text()),
                "gl_date": str(payload.get("gl_date") or payload.get("transaction_date") or _now_text()),
                "lines": normalized,
                "invoice_numbers": linked,
            }
            self.credit_memos[key] = rec
            for inv_number in linked:
                self.invoices[(*site_key, inv_number)]["credit_memos"].append(str(number))
            return rec

    def apply_credit_memo(self, party: str, account: str, site: str, credit_memo_number: str,
                          invoice_number: str, amount: Any) -> None:  # fmt: skip
        """What CAS does later (a CSV ``CMAP`` row): use ``amount`` of the memo's credit on an invoice."""
        site_key = (str(party), str(account), str(site))
        value = abs(_money(amount))
        with self.lock:
            cm = self.credit_memos[(*site_key, str(credit_memo_number))]
            inv = self.invoices[(*site_key, str(invoice_number))]
            if value > -cm["amount_due"] or value > inv["amount_due"]:
                raise PayloadError("the amount is more than the memo's credit or the invoice's balance")
            cm["amount_due"] += value
            inv["amount_due"] -= value
            if str(credit_memo_number) not in inv["credit_memos"]:
                inv["credit_memos"].append(str(credit_memo_number))

    def site_credit(self, party: str, account: str, site: str) -> Decimal:
        """Open credit of a site: the sum of its memos' ``-amount_due``."""
        site_key = (str(party), str(account), str(site))
        with self.lock:
            return sum(
                (-cm["amount_due"] for k, cm in self.credit_memos.items() if k[:3] == site_key), Decimal("0")
            )

    # -- (de)serialisation ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """A JSON-friendly dump (amounts as strings)."""
        with self.lock:

            def rows(table: Mapping[DocKey, dict], number_key: str) -> list[dict]:
                return [
                    _plain({"party": k[0], "account": k[1], "site": k[2], number_key: k[3], **v})
                    for k, v in sorted(table.items())
                ]

            return {
                "sites": [
                    _plain({"party": k[0], "account": k[1], "site": k[2], **v})
                    for k, v in sorted(self.sites.items())
                ],
                "invoices": rows(self.invoices, "invoice_number"),
                "missing_invoices": [
                    {"party": k[0], "account": k[1], "site": k[2], "invoice_number": k[3]}
                    for k in sorted(self.missing_invoices)
                ],
                "receipts": rows(self.receipts, "receipt_number"),
                "credit_memos": rows(self.credit_memos, "credit_memo_number"),
            }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CfsState:
        """Build a state from plain data::

        {"sites": [{"party", "account", "site", "payment_method"?}],
         "invoices": [{"party", "account", "site", "invoice_number", "total", "amount_due"?, "present"?}],
         "receipts": [{"party", "account", "site", "receipt_number", "amount", "applied"?: {inv: amt}}],
         "credit_memos": [{"party", "account", "site", "amount", "remaining"?, "comments"?, "number"?}]}
        """
        state = cls()
        for s in data.get("sites", []):
            extra = {k: s[k] for k in ("payment_method", "site_name", "party_name", "account_name",
                                        "receipt_method", "status") if k in s}  # fmt: skip
            state.add_site(s["party"], s["account"], s["site"], **extra)
        for inv in data.get("invoices", []):
            state.add_invoice(
                inv["party"], inv["account"], inv["site"], inv["invoice_number"], inv["total"],
                inv.get("amount_due"), present=inv.get("present", True), lines=inv.get("lines"),
                comments=inv.get("comments", ""), payment_method=inv.get("payment_method"),
                transaction_date=inv.get("transaction_date"),
            )  # fmt: skip
        for inv in data.get("missing_invoices", []):
            state.add_invoice(
                inv["party"], inv["account"], inv["site"], inv["invoice_number"], 0, present=False
            )
        for r in data.get("receipts", []):
            applied = r.get("applied")
            if applied is None:  # a dump lists the applications as invoices[]
                applied = {i["invoice_number"]: i["amount_applied"] for i in r.get("invoices", [])}
            rec = state.add_receipt(
                r["party"], r["account"], r["site"], r["receipt_number"], r.get("amount", r.get("receipt_amount")),
                applied=applied, receipt_date=r.get("receipt_date"),
                payment_method=r.get("payment_method", "BCR-PAD Daily"),
            )  # fmt: skip
            if r.get("unapplied") is not None:
                rec["unapplied"] = _money(r["unapplied"])
        for cm in data.get("credit_memos", []):
            if "lines" in cm:  # a full dump: keep number, lines and balance
                rec = state.create_credit_memo(
                    cm["party"], cm["account"], cm["site"],
                    {k: cm[k] for k in ("batch_source", "cust_trx_type", "lines", "comments", "transaction_date",
                                        "gl_date") if k in cm},
                    number=cm.get("credit_memo_number"),
                )  # fmt: skip
                if "amount_due" in cm:
                    rec["amount_due"] = _money(cm["amount_due"])
            else:
                state.add_credit_memo(cm["party"], cm["account"], cm["site"], cm["amount"],
                                      remaining=cm.get("remaining"), comments=cm.get("comments", ""),
                                      number=cm.get("number"))  # fmt: skip
        numbers = [int(k[3]) for k in state.credit_memos if k[3].isdigit()]
        state._next_cm = max([FIRST_CM_NUMBER - 1, *numbers]) + 1
        return state

    @classmethod
    def from_database(cls, url: str) -> CfsState:
        """Load what CAS would know from the sandbox pay-db: ``paynb_sandbox.cfs_invoices`` (``present =
        false`` -> 404), the sites of ``cfs_accounts``, credit memos and on-account receipts of ``credits``,
        and receipts of completed ``payments``."""
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        from paynb.db import build_url

        state = cls()
        state.db_url = url
        engine = sa.create_engine(build_url(url), poolclass=NullPool)
        try:
            with engine.connect() as conn:
                for r in conn.execute(sa.text(SITES_SQL)).mappings():
                    state.add_site(r["cfs_party"], r["cfs_account"], r["cfs_site"],
                                   payment_method=r["payment_method"] or "PAD", status=r["status"] or "ACTIVE",
                                   party_name=r["name"] or None)  # fmt: skip
                for r in conn.execute(sa.text(INVOICES_SQL)).mappings():
                    state.add_invoice(r["cfs_party"], r["cfs_account"], r["cfs_site"], r["invoice_number"],
                                      r["total"], r["amount_due"], present=bool(r["present"]),
                                      payment_method=r["payment_method"])  # fmt: skip
                for r in conn.execute(sa.text(CREDITS_SQL)).mappings():
                    if r["is_credit_memo"]:
                        state.add_credit_memo(r["cfs_party"], r["cfs_account"], r["cfs_site"], r["amount"],
                                              remaining=r["remaining_amount"], number=r["cfs_identifier"],
                                              comments=r["details"] or "")  # fmt: skip
                    else:
                        rec = state.add_receipt(r["cfs_party"], r["cfs_account"], r["cfs_site"],
                                                r["cfs_identifier"], r["amount"])  # fmt: skip
                        rec["unapplied"] = _money(r["remaining_amount"])
                for r in conn.execute(sa.text(RECEIPTS_SQL)).mappings():
                    key = (r["cfs_party"], r["cfs_account"], r["cfs_site"], r["receipt_number"])
                    if key in state.receipts:
                        rec = state.receipts[key]
                        rec["receipt_amount"] += _money(r["paid_amount"])
                        rec["invoices"].append(
                            {
                                "invoice_number": r["invoice_number"],
                                "amount_applied": _money(r["paid_amount"]),
                            }
                        )
                        inv = state.invoices.get((*key[:3], r["invoice_number"]))
                        if inv is not None and key[3] not in inv["receipts"]:
                            inv["receipts"].append(key[3])
                    else:
                        state.add_receipt(*key, r["paid_amount"], applied={r["invoice_number"]: r["paid_amount"]},
                                          receipt_date=r["receipt_date"])  # fmt: skip
        except sa.exc.DBAPIError as err:
            first = str(getattr(err, "orig", err)).strip().splitlines()
            raise SandboxError(
                f"cannot load the CFS state from the sandbox database: {first[0] if first else type(err).__name__}",
                hint="point --db-url at a sandbox pay-db (one with the paynb_sandbox schema)",
            ) from None
        finally:
            engine.dispose()
        numbers = [int(k[3]) for k in state.credit_memos if k[3].isdigit()]
        state._next_cm = max([FIRST_CM_NUMBER - 1, *numbers]) + 1
        return state

    def summary(self) -> dict[str, int]:
        with self.lock:
            return {
                "sites": len(self.sites),
                "invoices": len(self.invoices),
                "missing_invoices": len(self.missing_invoices),
                "receipts": len(self.receipts),
                "credit_memos": len(self.credit_memos),
            }


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


def _ref_number(key: DocKey) -> str:
    """A stable PayBC reference number for a document (the same in every run)."""
    return str(int(hashlib.sha256("/".join(key).encode()).hexdigest()[:12], 16) % 10**8).zfill(8)


def _one_line(amount: Decimal, description: str) -> dict:
    return {
        "line_number": 1,
        "line_type": "LINE",
        "description": description,
        "unit_price": amount,
        "quantity": 1,
        "distribution": [],
    }


def _normalize_line(index: int, line: Any) -> dict:
    if not isinstance(line, dict):
        raise PayloadError(f"lines[{index - 1}] must be an object")
    if "unit_price" not in line:
        raise PayloadError(f"lines[{index - 1}].unit_price is required")
    try:
        quantity = int(line.get("quantity", 1))
    except (TypeError, ValueError):
        raise PayloadError(f"lines[{index - 1}].quantity is not a whole number") from None
    dist = []
    for j, d in enumerate(line.get("distribution") or [], start=1):
        if not isinstance(d, dict) or "amount" not in d:
            raise PayloadError(f"lines[{index - 1}].distribution[{j - 1}].amount is required")
        dist.append(
            {
                "dist_line_number": d.get("dist_line_number", j),
                "amount": _money(d["amount"], f"lines[{index - 1}].distribution[{j - 1}].amount"),
                "account": str(d.get("account", "")),
            }
        )
    return {
        "line_number": line.get("line_number", index),
        "line_type": str(line.get("line_type", "LINE")),
        "description": str(line.get("description", "")),
        "unit_price": _money(line["unit_price"], f"lines[{index - 1}].unit_price"),
        "quantity": quantity,
        "distribution": dist,
    }


def _plain(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# -- rendering (the spec's field names) ---------------------------------------------------------------------
_DEC = "\x00dec:"
_DEC_RE = re.compile(r'"\\u0000dec:(-?[0-9]+(?:\.[0-9]+)?)\\u0000"')


def encode_json(obj: Any, *, amounts_as_strings: bool = False) -> bytes:
    """JSON with Decimal amounts written as JSON numbers (no float on the way), or as strings."""

    def prep(o: Any) -> Any:
        if isinstance(o, Decimal):
            return str(o) if amounts_as_strings else f"{_DEC}{o}\x00"
        if isinstance(o, dict):
            return {k: prep(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [prep(v) for v in o]
        return o

    return _DEC_RE.sub(r"\1", json.dumps(prep(obj))).encode()


class _Render:
    def __init__(self, base: str, state: CfsState) -> None:
        self.base = base
        self.state = state

    def site_url(self, key: SiteKey) -> str:
        return f"{self.base}/cfs/parties/{key[0]}/accs/{key[1]}/sites/{key[2]}/"

    def _head(self, key: SiteKey) -> dict:
        site = self.state.sites[key]
        return {
            "party_number": key[0],
            "party_name": site["party_name"],
            "account_number": key[1],
            "account_name": site["account_name"],
            "site_number": key[2],
            "customer_site_id": "1",
        }

    def site(self, key: SiteKey) -> dict:
        site = self.state.sites[key]
        url = self.site_url(key)
        out = {
            "party_number": key[0],
            "account_number": key[1],
            "site_number": key[2],
            "customer_site_id": "1",
            "site_name": site["site_name"],
            "primary_bill_to": "Y",
            "address_line_1": "PO Box 9431 Stn Prov Govt",
            "city": "Victoria",
            "postal_code": "V8W9V3",
            "province": "BC",
            "country": "CA",
            "customer_profile_class": "BCR_CORP_PROFILE",
            "provider": PROVIDER,
            "links": [
                {"rel": "collection", "href": f"{self.base}/cfs/parties/{key[0]}/accs/{key[1]}/sites/"},
                {"rel": "parent", "href": f"{self.base}/cfs/parties/{key[0]}/accs/{key[1]}/"},
                {"rel": "self", "href": url},
                {"rel": "contacts", "href": f"{url}conts/"},
                {"rel": "credit_memos", "href": f"{url}cms/"},
                {"rel": "deposits", "href": f"{url}deps/"},
                {"rel": "invoices", "href": f"{url}invs/"},
                {"rel": "receipts", "href": f"{url}rcpts/"},
            ],
        }
        if site.get("receipt_method"):
            out["receipt_method"] = site["receipt_method"]
        return out

    @staticmethod
    def _lines(lines: list[dict]) -> list[dict]:
        return [
            {
                "line_number": ln.get("line_number", i),
                "line_type": ln.get("line_type", "LINE"),
                "memo_line_name": ln.get("description", ""),
                "description": ln.get("description", ""),
                "unit_price": ln["unit_price"],
                "quantity": ln.get("quantity", 1),
                "adjustments": [],
            }
            for i, ln in enumerate(lines, start=1)
        ]

    def invoice(self, key: DocKey) -> dict:
        inv = self.state.invoices[key]
        url = self.site_url(key[:3])
        self_url = f"{url}invs/{key[3]}/"
        receipts = []
        for number in inv["receipts"]:
            rcpt = self.state.receipts.get((*key[:3], number))
            applied = sum(
                (
                    i["amount_applied"]
                    for i in (rcpt or {}).get("invoices", [])
                    if i["invoice_number"] == key[3]
                ),
                Decimal("0.00"),
            )
            receipts.append(
                {
                    "receipt_number": number,
                    "amount_applied": applied,
                    "links": [{"rel": "receipt_applied", "href": f"{url}rcpts/{number}/"}],
                }
            )
        memos = []
        for number in inv["credit_memos"]:
            cm = self.state.credit_memos.get((*key[:3], number))
            if cm is not None:
                memos.append(
                    {
                        "credit_memo_number": number,
                        "total": cm["total"],
                        "amount_due": cm["amount_due"],
                        "links": [{"rel": "self", "href": f"{url}cms/{number}/"}],
                    }
                )
        return {
            **self._head(key[:3]),
            "invoice_number": key[3],
            "pbc_ref_number": inv["pbc_ref_number"],
            "cust_trx_type": "BC_REGISTRIES",
            "transaction_date": inv["transaction_date"],
            "batch_source": "BC REG MANUAL_OTHER",
            "term_name": "IMMEDIATE",
            "term_due_date": inv["transaction_date"],
            "comments": inv["comments"],
            "late_charges_flag": "N",
            "total": inv["total"],
            "amount_due": inv["amount_due"],
            "amount_adjusted": Decimal("0.00"),
            "amount_adjusted_pending": Decimal("0.00"),
            "status": "OP" if inv["amount_due"] != 0 else "CL",
            "provider": PROVIDER,
            "lines": self._lines(inv["lines"]),
            "adjustments": [],
            "credit_memos": memos,
            "receipts": receipts,
            "links": [
                {"rel": "collection", "href": f"{url}invs/"},
                {"rel": "parent", "href": url},
                {"rel": "self", "href": self_url},
                {"rel": "deposits", "href": f"{url}deps/"},
                {"rel": "credit_memos", "href": f"{url}cms/"},
                {"rel": "receipts", "href": f"{url}rcpts/"},
                {"rel": "adjustments", "href": f"{self_url}adjs/"},
            ],
        }

    def credit_memo(self, key: DocKey) -> dict:
        cm = self.state.credit_memos[key]
        url = self.site_url(key[:3])
        return {
            **self._head(key[:3]),
            "credit_memo_number": key[3],
            "pbc_ref_number": key[3],
            "cust_trx_type": cm["cust_trx_type"],
            "transaction_date": cm["transaction_date"],
            "batch_source": cm["batch_source"],
            "term_name": "IMMEDIATE",
            "term_due_date": cm["transaction_date"],
            "comments": cm["comments"],
            "late_charges_flag": "N",
            "total": cm["total"],
            "amount_due": cm["amount_due"],
            "amount_adjusted": Decimal("0.00"),
            "amount_adjusted_pending": Decimal("0.00"),
            "status": "OP" if cm["amount_due"] != 0 else "CL",
            "provider": PROVIDER,
            "lines": self._lines(cm["lines"]),
            "links": [
                {"rel": "collection", "href": f"{url}cms/"},
                {"rel": "parent", "href": url},
                {"rel": "self", "href": f"{url}cms/{key[3]}/"},
            ],
        }

    def receipt(self, key: DocKey) -> dict:
        r = self.state.receipts[key]
        applied = sum((i["amount_applied"] for i in r["invoices"]), Decimal("0.00"))
        unapplied = r.get("unapplied", r["receipt_amount"] - applied)
        head = self._head(key[:3])
        return {
            "party_number": head["party_number"],
            "party_name": head["party_name"],
            "account_number": head["account_number"],
            "site_number": head["site_number"],
            "receipt_number": key[3],
            "receipt_date": r["receipt_date"],
            # the spec types receipt_amount as a string
            "receipt_amount": str(r["receipt_amount"]),
            "unapplied_amount": unapplied,
            "payment_method": r["payment_method"],
            "comments": r["comments"],
            "status": r["status"],
            "invoices": [
                {"invoice_number": i["invoice_number"], "amount_applied": i["amount_applied"], "lines": []}
                for i in r["invoices"]
            ],
        }


# -- knobs and counters -------------------------------------------------------------------------------------
@dataclass
class Knobs:
    """Fault injection. Every field can be changed while the server runs."""

    latency_ms: int = 0
    fault_rate: float = 0.0
    burst_429: int = 0
    retry_after_s: float = 0.0
    token_ttl_s: float = 3600.0
    expire_tokens_after: int | None = None
    drop_rate: float = 0.0
    fail_after_cms_create: int = 0
    fail_next: list[list[Any]] = field(default_factory=list)
    amounts_as_strings: bool = False
    seed: int = 0

    def update(self, values: Mapping[str, Any]) -> None:
        names = {f.name for f in fields(self)}
        unknown = set(values) - names
        if unknown:
            raise PayloadError(f"unknown knob(s): {', '.join(sorted(unknown))}")
        for name, value in values.items():
            if name == "fail_next":
                value = [[str(p), int(s)] for p, s in (value or [])]
                for pattern, _ in value:
                    re.compile(pattern)
            elif name == "fail_after_cms_create" and isinstance(value, bool):
                value = int(value)
            elif name in ("fault_rate", "drop_rate") and not 0 <= float(value) <= 1:
                raise PayloadError(f"{name} must be between 0 and 1")
            setattr(self, name, value)


ROUTES: list[tuple[str, str, re.Pattern[str]]] = []
_SITE = r"/cfs/parties/([^/]+)/accs/([^/]+)/sites/([^/]+)/"
for _method, _name, _pattern in (
    ("POST", "token", r"/oauth/token"),
    ("GET", "get_site", _SITE),
    ("GET", "get_invoice", _SITE + r"invs/([^/]+)/"),
    ("GET", "get_receipt", _SITE + r"rcpts/([^/]+)/"),
    ("GET", "list_credit_memos", _SITE + r"cms/"),
    ("GET", "get_credit_memo", _SITE + r"cms/([^/]+)/"),
    ("POST", "create_credit_memo", _SITE + r"cms/"),
):
    ROUTES.append((_method, _name, re.compile(_pattern + r"\Z")))


class _CfsHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a batch opens many connections at once; a short backlog stalls them for 1 s

    def __init__(self, addr, state: CfsState, credentials: Mapping[str, str], pay_connector: str,
                 knobs: Knobs, log_requests: bool) -> None:  # fmt: skip
        super().__init__(addr, _Handler)
        self.state = state
        self.credentials = dict(credentials)
        self.pay_connector = pay_connector
        self.knobs = knobs
        self.log_requests = log_requests
        self.lock = threading.Lock()
        self.rng = random.Random(knobs.seed)
        self.tokens: dict[str, tuple[str, float]] = {}
        self.reset_stats()

    @property
    def base(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def reset_stats(self) -> None:
        with self.lock:
            self.routes: Counter[str] = Counter()
            self.paths: Counter[str] = Counter()
            self.statuses: Counter[str] = Counter()
            self.tokens_issued = 0
            self.inflight = 0
            self.max_inflight = 0
            self.rejected_auth = 0
            self.rejected_connector = 0
            self.dropped = 0

    def stats(self) -> dict:
        with self.lock:
            return {
                "requests": sum(self.routes.values()),
                "routes": dict(self.routes),
                "paths": dict(self.paths),
                "statuses": dict(self.statuses),
                "tokens_issued": self.tokens_issued,
                "max_inflight": self.max_inflight,
                "rejected_auth": self.rejected_auth,
                "rejected_pay_connector": self.rejected_connector,
                "dropped": self.dropped,
            }

    def set_knobs(self, values: Mapping[str, Any]) -> None:
        with self.lock:
            self.knobs.update(values)
            if "seed" in values:
                self.rng = random.Random(self.knobs.seed)

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def handle_error(self, request, client_address) -> None:
        # a client that hangs up (or a drop we injected) is not worth a traceback on stderr
        if self.log_requests:
            super().handle_error(request, client_address)


class _Drop(Exception):
    """Close the connection instead of answering."""


class _Handler(BaseHTTPRequestHandler):
    server: _CfsHTTPServer
    protocol_version = "HTTP/1.0"
    server_version = "paynb-cfs-sandbox"
    sys_version = ""
    _inflight = False  # this call is counted in server.inflight

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log_requests:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- plumbing ------------------------------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(
        self, status: int, obj: Any, headers: Mapping[str, str] | None = None, *, drop: bool = False
    ) -> None:
        payload = encode_json(obj, amounts_as_strings=self.server.knobs.amounts_as_strings)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        with self.server.lock:
            self.server.statuses[str(status)] += 1
        # the call ends for the client when the body arrives, so it leaves the in-flight count first
        self._leave_inflight()
        if drop:
            self.wfile.write(payload[: len(payload) // 2])
            self._hang_up()
            return
        self.wfile.write(payload)

    def _hang_up(self) -> None:
        with self.server.lock:
            self.server.dropped += 1
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _error(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, {"code": code, "message": message}, headers)

    # -- request handling ----------------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        body = self._body()
        if path.startswith("/_sandbox/"):
            self._control(method, path, body)
            return
        route, groups = self._route(method, path)
        srv = self.server
        with srv.lock:
            srv.routes[route or "unknown"] += 1
            srv.paths[f"{method} {path}"] += 1
            srv.inflight += 1
            srv.max_inflight = max(srv.max_inflight, srv.inflight)
        self._inflight = True
        try:
            self._serve(method, path, parse_qs(parts.query), body, route, groups)
        except _Drop:
            self._hang_up()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            self._leave_inflight()

    def _leave_inflight(self) -> None:
        if self._inflight:
            self._inflight = False
            with self.server.lock:
                self.server.inflight -= 1

    @staticmethod
    def _route(method: str, path: str) -> tuple[str | None, tuple[str, ...]]:
        for m, name, pattern in ROUTES:
            match = pattern.match(path)
            if match and m == method:
                return name, tuple(unquote(g) for g in match.groups())
        return None, ()

    def _faults(self, path: str) -> tuple[int | None, bool]:
        """(status to answer instead, drop the connection mid-response?)"""
        srv = self.server
        with srv.lock:
            k = srv.knobs
            for i, (pattern, status) in enumerate(k.fail_next):
                if re.search(pattern, path):
                    del k.fail_next[i]
                    if status == 0:
                        raise _Drop()
                    return status, False
            if k.burst_429 > 0:
                k.burst_429 -= 1
                return 429, False
            if k.fault_rate and srv.rng.random() < k.fault_rate:
                return 500, False
            return None, bool(k.drop_rate and srv.rng.random() < k.drop_rate)

    def _serve(self, method, path, query, body, route, groups) -> None:
        srv = self.server
        latency = srv.knobs.latency_ms
        if latency > 0:
            time.sleep(latency / 1000)
        status, drop = self._faults(path)
        if status is not None:
            headers = {"Retry-After": f"{srv.knobs.retry_after_s:g}"} if status in (429, 503) else None
            code = {429: "TOO_MANY_REQUESTS", 401: "UNAUTHORIZED"}.get(status, "SANDBOX_FAULT")
            self._error(status, code, "injected by the sandbox", headers)
            return
        if not self._connector_ok():
            with srv.lock:
                srv.rejected_connector += 1
            self._error(403, "FORBIDDEN", "missing or wrong Pay-Connector header")
            return
        if route is None:
            allowed = any(p.match(path) for _, _, p in ROUTES)
            if allowed:
                self._error(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed here")
            else:
                self._error(404, "NOT_FOUND", "no such resource")
            return
        if route == "token":
            self._token(body, drop)
            return
        if not self._bearer_ok():
            with srv.lock:
                srv.rejected_auth += 1
            self._error(401, "UNAUTHORIZED", "missing, unknown or expired token")
            return
        getattr(self, f"_api_{route}")(groups, query, body, drop)

    def _connector_ok(self) -> bool:
        expected = self.server.pay_connector
        if not expected:
            return True
        given = self.headers.get("Pay-Connector") or ""
        return hmac.compare_digest(given.encode(), expected.encode())

    def _bearer_ok(self) -> bool:
        srv = self.server
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            return False
        token = auth[len("Bearer ") :].strip()
        with srv.lock:
            k = srv.knobs
            if k.expire_tokens_after is not None:
                if k.expire_tokens_after <= 0:
                    srv.tokens.clear()
                    k.expire_tokens_after = None
                else:
                    k.expire_tokens_after -= 1
            entry = srv.tokens.get(token)
            if entry is None:
                return False
            if time.monotonic() >= entry[1]:
                del srv.tokens[token]
                return False
            return True

    def _token(self, body: bytes, drop: bool) -> None:
        srv = self.server
        auth = self.headers.get("Authorization") or ""
        client_id = secret = None
        if auth.startswith("Basic "):
            try:
                client_id, _, secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                client_id = None
        expected = srv.credentials.get(client_id or "")
        if expected is None or not hmac.compare_digest((secret or "").encode(), expected.encode()):
            with srv.lock:
                srv.rejected_auth += 1
            self._error(401, "UNAUTHORIZED", "unknown client or wrong secret")
            return
        form = parse_qs(body.decode(errors="replace"))
        if form.get("grant_type") != ["client_credentials"]:
            self._error(400, "INVALID_REQUEST", "grant_type must be client_credentials")
            return
        token = secrets.token_urlsafe(32)
        with srv.lock:
            ttl = float(srv.knobs.token_ttl_s)
            srv.tokens[token] = (client_id or "", time.monotonic() + ttl)
            srv.tokens_issued += 1
        self._send(200, {"access_token": token, "token_type": "bearer", "expires_in": max(1, round(ttl))},
                   drop=drop)  # fmt: skip

    # -- API -----------------------------------------------------------------------------------------------
    def _render(self) -> _Render:
        return _Render(self.server.base, self.server.state)

    def _send_document(self, groups, collection: str, render: str, what: str, drop) -> None:
        """GET of one site/invoice/receipt/credit memo: 404 unless ``state.<collection>`` has it."""
        state = self.server.state
        with state.lock:
            if groups not in getattr(state, collection):
                self._error(404, "NOT_FOUND", f"no such {what}")
                return
            doc = getattr(self._render(), render)(groups)
        self._send(200, doc, drop=drop)

    def _api_get_site(self, groups, query, body, drop) -> None:
        self._send_document(groups, "sites", "site", "site", drop)

    def _api_get_invoice(self, groups, query, body, drop) -> None:
        self._send_document(groups, "invoices", "invoice", "invoice", drop)

    def _api_get_receipt(self, groups, query, body, drop) -> None:
        self._send_document(groups, "receipts", "receipt", "receipt", drop)

    def _api_get_credit_memo(self, groups, query, body, drop) -> None:
        self._send_document(groups, "credit_memos", "credit_memo", "credit memo", drop)

    def _api_list_credit_memos(self, groups, query, body, drop) -> None:
        state = self.server.state
        try:
            offset = max(0, int(query.get("offset", ["0"])[0]))
            limit = min(MAX_PAGE, max(1, int(query.get("limit", [str(DEFAULT_PAGE)])[0])))
        except ValueError:
            self._error(400, "INVALID_REQUEST", "offset and limit must be whole numbers")
            return
        with state.lock:
            if groups not in state.sites:
                self._error(404, "NOT_FOUND", "no such site")
                return
            keys = sorted((k for k in state.credit_memos if k[:3] == groups), key=lambda k: (len(k[3]), k[3]))
            page = keys[offset : offset + limit]
            render = self._render()
            items = [render.credit_memo(k) for k in page]
        url = f"{render.site_url(groups)}cms/"
        links = [{"rel": "self", "href": f"{url}?offset={offset}&limit={limit}"}]
        has_more = offset + limit < len(keys)
        if has_more:
            links.append({"rel": "next", "href": f"{url}?offset={offset + limit}&limit={limit}"})
        self._send(200, {"items": items, "hasMore": has_more, "limit": limit, "offset": offset,
                         "count": len(items), "links": links}, drop=drop)  # fmt: skip

    def _api_create_credit_memo(self, groups, query, body, drop) -> None:
        srv = self.server
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            self._error(400, "INVALID_REQUEST", "the body is not JSON")
            return
        try:
            rec = srv.state.create_credit_memo(*groups, payload)
        except PayloadError as err:
            self._error(400, "INVALID_REQUEST", str(err))
            return
        except KeyError:
            self._error(404, "NOT_FOUND", "no such site")
            return
        with srv.lock:
            if srv.knobs.fail_after_cms_create > 0:
                srv.knobs.fail_after_cms_create -= 1
                drop = True
        with srv.state.lock:
            doc = self._render().credit_memo((*groups, rec["credit_memo_number"]))
        self._send(200, doc, drop=drop)

    # -- control -------------------------------------------------------------------------------------------
    def _control(self, method: str, path: str, body: bytes) -> None:
        srv = self.server
        try:
            values = json.loads(body) if body else {}
        except ValueError:
            self._error(400, "INVALID_REQUEST", "the body is not JSON")
            return
        if method == "GET" and path == "/_sandbox/state":
            self._send(200, {"knobs": asdict(srv.knobs), "stats": srv.stats(), "data": srv.state.to_dict(),
                             "summary": srv.state.summary()})  # fmt: skip
        elif method == "POST" and path == "/_sandbox/knobs":
            try:
                srv.set_knobs(values)
            except (PayloadError, ValueError, TypeError, re.error) as err:
                self._error(400, "INVALID_REQUEST", str(err))
                return
            self._send(200, asdict(srv.knobs))
        elif method == "POST" and path == "/_sandbox/reset":
            srv.reset_stats()
            self._send(200, srv.stats())
        elif method == "POST" and path == "/_sandbox/expire-tokens":
            srv.expire_tokens()
            self._send(200, {"tokens": 0})
        elif method == "POST" and path == "/_sandbox/reload":
            if not srv.state.db_url:
                self._error(400, "INVALID_REQUEST", "the server was not started from a database")
                return
            fresh = CfsState.from_database(srv.state.db_url)
            with srv.state.lock:
                srv.state.__dict__.update({k: v for k, v in fresh.__dict__.items() if k != "lock"})
            self._send(200, srv.state.summary())
        else:
            self._error(404, "NOT_FOUND", "unknown control endpoint")


# -- running it ----------------------------------------------------------------------------------------------
class RunningCfsServer:
    """A CFS sandbox server on a background thread."""

    def __init__(self, httpd: _CfsHTTPServer, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread
        self.state = httpd.state

    @property
    def url(self) -> str:
        return self._httpd.base

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def knobs(self) -> Knobs:
        return self._httpd.knobs

    def set_knobs(self, **values: Any) -> None:
        self._httpd.set_knobs(values)

    def stats(self) -> dict:
        return self._httpd.stats()

    def reset_stats(self) -> None:
        self._httpd.reset_stats()

    def expire_tokens(self) -> None:
        self._httpd.expire_tokens()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> RunningCfsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningCfsServer(url={self.url!r})"


def _reveal(value: str | Secret | None) -> str:
    if value is None:
        return ""
    return value.reveal() if isinstance(value, Secret) else str(value)


def make_server(
    state: CfsState | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    credentials: Mapping[str, str | Secret] | None = None,
    pay_connector: str | Secret | None = None,
    log_requests: bool = False,
    **knobs: Any,
) -> _CfsHTTPServer:
    creds = {str(k): _reveal(v) for k, v in (credentials or {}).items()}
    if not creds or not all(creds.values()):
        raise SandboxError("the CFS sandbox server needs at least one client id with a non-empty secret")
    k = Knobs()
    try:
        k.update(knobs)
    except PayloadError as err:
        raise SandboxError(str(err)) from None
    try:
        return _CfsHTTPServer(
            (host, port), state or CfsState(), creds, _reveal(pay_connector), k, log_requests
        )
    except OSError as err:
        raise SandboxError(f"the CFS sandbox server cannot listen on {host}:{port}: {err.strerror}") from None


def start_cfs_server(
    state: CfsState | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    credentials: Mapping[str, str | Secret] | None = None,
    pay_connector: str | Secret | None = None,
    log_requests: bool = False,
    **knobs: Any,
) -> RunningCfsServer:
    """Start a server on a thread (port 0 picks a free one). ``credentials`` maps client id -> secret
    (give both the PAYBC and the FAS pair if both are used). ``knobs`` are :class:`Knobs` fields."""
    httpd = make_server(state, host, port, credentials=credentials, pay_connector=pay_connector,
                        log_requests=log_requests, **knobs)  # fmt: skip
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                              name=f"paynb-cfs-{httpd.server_address[1]}")  # fmt: skip
    thread.start()
    return RunningCfsServer(httpd, thread)


# -- command line --------------------------------------------------------------------------------------------
def _read_secret(path: str | None, env_name: str, what: str, required: bool) -> str:
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                value = fh.read().strip()
        except OSError as err:
            raise SystemExit(f"cannot read the {what} file {path}: {err.strerror}") from None
    else:
        value = os.environ.get(env_name, "").strip()
    if required and not value:
        raise SystemExit(f"no {what}: give --{what.replace(' ', '-')}-file or set {env_name}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m paynb.sandbox.cfs_server",
        description="The paynb CFS sandbox server (CAS/CFS contract of paybc-1.0.0.yaml).",
        epilog="Secrets come from files or the environment, never from arguments. Example:\n"
        "  python -m paynb.sandbox.cfs_server --db-url postgresql://postgres@127.0.0.1:5432/pay --port 8123 \\\n"
        "      --client-id paynb-sandbox --client-secret-file .sandbox/secrets/cfs_client_secret",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db-url", default=os.environ.get("PAYNB_CFS_SANDBOX_DB_URL"),
                   help="sandbox pay-db to load invoices, sites and credits from")  # fmt: skip
    p.add_argument("--state-json", help="load the state from a JSON file (CfsState.from_dict) instead")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed at start)")
    p.add_argument("--client-id", required=True, help="PAYBC client id")
    p.add_argument(
        "--client-secret-file", help="file holding the PAYBC secret (or PAYNB_CFS_SANDBOX_CLIENT_SECRET)"
    )
    p.add_argument("--fas-client-id", help="FAS client id (optional second credential set)")
    p.add_argument("--fas-client-secret-file", help="file holding the FAS secret")
    p.add_argument("--pay-connector-file", help="file holding the expected Pay-Connector header value")
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--fault-rate", type=float, default=0.0, help="share of calls answered with 500")
    p.add_argument("--burst-429", type=int, default=0, help="answer the first N calls with 429")
    p.add_argument("--token-ttl-s", type=float, default=3600.0)
    p.add_argument("--drop-rate", type=float, default=0.0, help="share of calls whose connection is cut")
    p.add_argument("--seed", type=int, default=0, help="seed of the fault RNG")
    p.add_argument("--log-requests", action="store_true", help="log every request to stderr")
    return p


def main(argv: Iterable[str] | None = None) -> int:
    args = build_parser().parse_args(None if argv is None else list(argv))
    credentials = {
        args.client_id: _read_secret(
            args.client_secret_file, "PAYNB_CFS_SANDBOX_CLIENT_SECRET", "client secret", True
        )
    }
    if args.fas_client_id:
        credentials[args.fas_client_id] = _read_secret(
            args.fas_client_secret_file, "PAYNB_CFS_SANDBOX_FAS_CLIENT_SECRET", "fas client secret", True
        )
    connector = _read_secret(
        args.pay_connector_file, "PAYNB_CFS_SANDBOX_PAY_CONNECTOR", "pay connector", False
    )
    if args.state_json:
        with open(args.state_json, encoding="utf-8") as fh:
            state = CfsState.from_dict(json.load(fh))
    elif args.db_url:
        state = CfsState.from_database(args.db_url)
    else:
        state = CfsState()
    httpd = make_server(
        state, args.host, args.port, credentials=credentials, pay_connector=connector,
        log_requests=args.log_requests, latency_ms=args.latency_ms, fault_rate=args.fault_rate,
        burst_429=args.burst_429, token_ttl_s=args.token_ttl_s, drop_rate=args.drop_rate, seed=args.seed,
    )  # fmt: skip

    def stop(*_: Any) -> None:
        # shutdown() waits for serve_forever, so it must not run on the thread that serves
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    counts = state.summary()
    print(f"paynb CFS sandbox listening on {httpd.base} ({counts['invoices']} invoices, "
          f"{counts['missing_invoices']} missing, {counts['sites']} sites)", flush=True)  # fmt: skip
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
