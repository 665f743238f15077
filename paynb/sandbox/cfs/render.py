"""The CAS/CFS JSON documents (the spec's field names) for what a :class:`CfsState` holds."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from paynb.sandbox.cfs.state import PROVIDER, CfsState, DocKey, SiteKey

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
            **(
                {"reversal_reason": r["reversal_reason"], "reversal_comment": r["reversal_comment"]}
                if "reversal_reason" in r
                else {}
            ),
            "invoices": [
                {"invoice_number": i["invoice_number"], "amount_applied": i["amount_applied"], "lines": []}
                for i in r["invoices"]
            ],
        }
