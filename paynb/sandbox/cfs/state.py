"""What CAS knows in the sandbox: sites, invoices, receipts and credit memos, and the CFS validation rules
for creating a credit memo. No I/O here: :mod:`.loader` fills a state from pay-db, :mod:`.render` turns it
into the spec's JSON, :mod:`.server` serves it over HTTP."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

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

    def create_receipt(self, party: str, account: str, site: str, payload: Any) -> dict:
        """``POST …/rcpts/``: a new receipt (routing slips: ``CASH RCPT``/``EFT Wire``…). The number must be
        new on the site. Raises PayloadError (-> 400) or KeyError (-> 404, no such site)."""
        site_key = (str(party), str(account), str(site))
        if not isinstance(payload, dict):
            raise PayloadError("the body must be a JSON object")
        for name in ("receipt_number", "receipt_date", "receipt_amount", "payment_method"):
            if payload.get(name) in (None, ""):
                raise PayloadError(f"{name} is required")
        amount = _money(payload["receipt_amount"], "receipt_amount")
        if amount <= 0:
            raise PayloadError("receipt_amount must be more than 0")
        number = str(payload["receipt_number"])
        with self.lock:
            if site_key not in self.sites:
                raise KeyError(site_key)
            if (*site_key, number) in self.receipts:
                raise PayloadError(f"receipt {number} already exists on this site")
            rec = self.add_receipt(
                *site_key,
                number,
                amount,
                receipt_date=str(payload["receipt_date"]),
                payment_method=str(payload["payment_method"]),
            )
            rec["comments"] = str(payload.get("comments") or "")
            return rec

    def reverse_receipt(self, party: str, account: str, site: str, receipt_number: str, payload: Any) -> dict:
        """``POST …/rcpts/{r}/reverse``: the receipt's status becomes ``REV`` and its applications are
        undone. A receipt that is already reversed is refused (400), like a second reversal in CAS."""
        key = (str(party), str(account), str(site), str(receipt_number))
        if not isinstance(payload, dict):
            raise PayloadError("the body must be a JSON object")
        for name in ("reversal_reason", "reversal_comment"):
            if not isinstance(payload.get(name), str) or not payload[name].strip():
                raise PayloadError(f"{name} is required")
        with self.lock:
            rec = self.receipts[key]  # KeyError -> 404
            if rec["status"] == "REV":
                raise PayloadError(f"receipt {receipt_number} is already reversed")
            for app in rec["invoices"]:
                inv = self.invoices.get((*key[:3], app["invoice_number"]))
                if inv is not None:
                    inv["amount_due"] += app["amount_applied"]
            rec["invoices"] = []
            rec["unapplied"] = Decimal("0.00")
            rec["status"] = "REV"
            rec["reversal_reason"] = payload["reversal_reason"]
            rec["reversal_comment"] = payload["reversal_comment"]
            return rec

    def apply_credit_memo(
        self, party: str, account: str, site: str, credit_memo_number: str, invoice_number: str, amount: Any
    ) -> None:
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
            extra = {k: s[k] for k in _SITE_FIELDS if k in s}
            state.add_site(*_site_of(s), **extra)
        for inv in data.get("invoices", []):
            extra = {k: inv[k] for k in _INVOICE_FIELDS if k in inv}
            state.add_invoice(
                *_site_of(inv),
                inv["invoice_number"],
                inv["total"],
                inv.get("amount_due"),
                present=inv.get("present", True),
                **extra,
            )
        for inv in data.get("missing_invoices", []):
            state.add_invoice(*_site_of(inv), inv["invoice_number"], 0, present=False)
        for r in data.get("receipts", []):
            applied = r.get("applied")
            if applied is None:  # a dump lists the applications as invoices[]
                applied = {i["invoice_number"]: i["amount_applied"] for i in r.get("invoices", [])}
            rec = state.add_receipt(
                *_site_of(r),
                r["receipt_number"],
                r.get("amount", r.get("receipt_amount")),
                applied=applied,
                receipt_date=r.get("receipt_date"),
                payment_method=r.get("payment_method", "BCR-PAD Daily"),
            )
            if r.get("unapplied") is not None:
                rec["unapplied"] = _money(r["unapplied"])
            if r.get("status"):
                rec["status"] = str(r["status"])
        for cm in data.get("credit_memos", []):
            if "lines" in cm:  # a full dump: keep number, lines and balance
                payload = {k: cm[k] for k in _MEMO_PAYLOAD_FIELDS if k in cm}
                number = cm.get("credit_memo_number")
                rec = state.create_credit_memo(*_site_of(cm), payload, number=number)
                if "amount_due" in cm:
                    rec["amount_due"] = _money(cm["amount_due"])
            else:
                remaining, comments, number = cm.get("remaining"), cm.get("comments", ""), cm.get("number")
                state.add_credit_memo(
                    *_site_of(cm), cm["amount"], remaining=remaining, comments=comments, number=number
                )
        state.renumber()
        return state

    @classmethod
    def from_database(cls, url: str) -> CfsState:
        """Load what CAS would know from the sandbox pay-db (see :func:`paynb.sandbox.cfs.loader.load_state`)."""
        from paynb.sandbox.cfs.loader import load_state

        return load_state(url)

    def renumber(self) -> None:
        """Continue credit memo numbers after the highest one held."""
        numbers = [int(k[3]) for k in self.credit_memos if k[3].isdigit()]
        self._next_cm = max([FIRST_CM_NUMBER - 1, *numbers]) + 1

    def summary(self) -> dict[str, int]:
        with self.lock:
            return {
                "sites": len(self.sites),
                "invoices": len(self.invoices),
                "missing_invoices": len(self.missing_invoices),
                "receipts": len(self.receipts),
                "credit_memos": len(self.credit_memos),
            }


# optional fields of a plain-data site, invoice and full credit memo (see CfsState.from_dict)
_SITE_FIELDS = ("payment_method", "site_name", "party_name", "account_name", "receipt_method", "status")
_INVOICE_FIELDS = ("lines", "comments", "payment_method", "transaction_date")
_MEMO_PAYLOAD_FIELDS = ("batch_source", "cust_trx_type", "lines", "comments", "transaction_date", "gl_date")


def _site_of(data: Mapping[str, Any]) -> SiteKey:
    return data["party"], data["account"], data["site"]


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
