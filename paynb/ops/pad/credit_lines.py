"""The pure rules of a PAD credit: money input, what remains on each line, spreading an amount over
lines, and the CFS credit-memo lines (docs/pad-credit.md). No I/O here.

Each payment line item has two pools that a credit draws from (the rule sbc-pay's refund API applies):

* ``fees`` — the line's ``total`` (statutory fee incl. priority/future-effective). ``BASE_FEES``,
  ``FUTURE_EFFECTIVE_FEES`` and ``PRIORITY_FEES`` credits all draw from it;
* ``service_fees`` — the line's ``service_fees``; ``SERVICE_FEES`` credits draw from it.

What remains in a pool is its amount minus the earlier ``refunds_partial`` rows of that pool (declined ones
excepted). GST (``statutory_fees_gst``/``service_fees_gst``) has no refund type: it is credited only by a
*full* credit, which takes every pool and the GST, as sbc-pay's full refund does.

Spreading an ``amount`` (the ``amount=`` form) is deterministic: line items in ascending id, and within a
line first its ``fees`` pool (as ``BASE_FEES``) then its ``service_fees`` pool (as ``SERVICE_FEES``), each
taken as far as it goes until the amount is used up. An amount equal to everything that remains, GST
included, is a full credit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from paynb.enums import LineItemStatus, RefundsPartialType
from paynb.errors import InputError, PlanError

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
SERVICE = RefundsPartialType.SERVICE_FEES.value
FEE_TYPES = frozenset(t.value for t in RefundsPartialType if t is not RefundsPartialType.SERVICE_FEES)
GST_KINDS = ("statutory_fees_gst", "service_fees_gst")
_AMOUNT = re.compile(r"^[+-]?\d+(\.\d+)?$")


# -- money ---------------------------------------------------------------------------------------------------
def parse_amount(value: Any, field: str) -> Decimal:
    """An operator-given amount as Decimal: > 0, at most 2 decimals, never a float."""
    if value is None or isinstance(value, bool):
        raise InputError("an amount is required", field=field)
    if isinstance(value, float):
        raise InputError(
            "floats are not accepted for money (they are not exact); give a string such as '10.50' or a Decimal",
            field=field,
        )
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if (
            any(sign in text for sign in "$¢€£")
            or text.upper().endswith(("CAD", "USD"))
            or text.upper().startswith(("CAD", "USD"))
        ):
            raise InputError(
                f"{value!r} carries a currency sign; give the amount in dollars as a plain number, e.g. 1.00",
                field=field,
            )
        if "," in text:
            raise InputError(
                f"{value!r} has a comma; give the amount without separators, e.g. 1000.00", field=field
            )
        if not _AMOUNT.match(text):
            raise InputError(f"{value!r} is not an amount (expected e.g. 10.50)", field=field)
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise InputError(f"{value!r} is not an amount (expected e.g. 10.50)", field=field) from None
    else:
        raise InputError(f"an amount must be a string or a Decimal, not {type(value).__name__}", field=field)
    if not number.is_finite():
        raise InputError(f"{value!r} is not an amount", field=field)
    if number != number.quantize(CENT):
        raise InputError(f"{number} has more than 2 decimals; amounts are in dollars and cents", field=field)
    if number == 0:
        raise InputError("the amount is 0; a credit must be greater than 0", field=field)
    if number < 0:
        raise InputError(
            f"the amount {number} is negative; give the credit as a positive amount", field=field
        )
    return number.quantize(CENT)


def money(value: Any) -> Decimal:
    """A pay-db money value (NUMERIC, possibly NULL) as Decimal with 2 places."""
    if value is None:
        return ZERO
    return Decimal(str(value)).quantize(CENT)


# -- facts ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LineFacts:
    """A payment line item with what earlier credits/refunds took from its pools."""

    id: int
    invoice_id: int
    description: str
    status: str
    total: Decimal
    service_fees: Decimal
    statutory_fees_gst: Decimal
    service_fees_gst: Decimal
    fee_distribution_id: int | None
    credited_fees: Decimal = ZERO
    credited_service_fees: Decimal = ZERO

    def pool_amount(self, refund_type: str) -> Decimal:
        return self.service_fees if refund_type == SERVICE else self.total

    def credited(self, refund_type: str) -> Decimal:
        return self.credited_service_fees if refund_type == SERVICE else self.credited_fees

    def remaining(self, refund_type: str) -> Decimal:
        return self.pool_amount(refund_type) - self.credited(refund_type)

    @property
    def active(self) -> bool:
        return self.status == LineItemStatus.ACTIVE.value


@dataclass(frozen=True)
class DistCode:
    """A distribution code and the GL account string CFS lines carry."""

    id: int
    name: str
    account: str  # client.responsibility_centre.service_line.stob.project_code.000000.0000
    active: bool
    service_fee_code_id: int | None
    statutory_gst_code_id: int | None
    service_gst_code_id: int | None


def gl_account(
    client: Any, responsibility_centre: Any, service_line: Any, stob: Any, project_code: Any
) -> str:
    """The account string of a CFS invoice/credit-memo distribution (sbc-pay's ``CFSService``)."""
    parts = [str(p or "").strip() for p in (client, responsibility_centre, service_line, stob, project_code)]
    return ".".join([*parts, "000000", "0000"])


@dataclass(frozen=True)
class CreditEntry:
    """One amount credited on one line item: a ``refunds_partial`` row."""

    payment_line_item_id: int
    refund_type: str
    amount: Decimal

    def sort_key(self) -> tuple[int, int, str]:
        return (self.payment_line_item_id, 1 if self.refund_type == SERVICE else 0, self.refund_type)


@dataclass(frozen=True)
class GstEntry:
    """GST credited by a full credit (no ``refunds_partial`` row: GST has no refund type)."""

    payment_line_item_id: int
    kind: str  # statutory_fees_gst | service_fees_gst
    amount: Decimal


# -- requests ------------------------------------------------------------------------------------------------
def normalize_lines(lines: Iterable[Any]) -> list[tuple[int, Decimal, str]]:
    """``[(item_id, amount[, refund_type]) | {"payment_line_item_id", "amount", "refund_type"?}]`` ->
    checked ``(item_id, amount, refund_type)`` tuples. refund_type defaults to ``BASE_FEES``."""
    if isinstance(lines, (str, bytes)) or not isinstance(lines, Iterable):
        raise InputError("give a list of (payment_line_item_id, amount[, refund_type])", field="lines")
    out: list[tuple[int, Decimal, str]] = []
    seen: set[tuple[int, str]] = set()
    for i, raw in enumerate(lines):
        where = f"lines[{i}]"
        if isinstance(raw, Mapping):
            item, amount, rtype = raw.get("payment_line_item_id"), raw.get("amount"), raw.get("refund_type")
        elif isinstance(raw, Sequence) and not isinstance(raw, (str, bytes)) and len(raw) in (2, 3):
            item, amount = raw[0], raw[1]
            rtype = raw[2] if len(raw) == 3 else None
        else:
            raise InputError("each line is (payment_line_item_id, amount[, refund_type])", field=where)
        if isinstance(item, bool) or not isinstance(item, (int, str)) or not str(item).strip().isdigit():
            raise InputError(f"{item!r} is not a payment line item id", field=f"{where}.payment_line_item_id")
        item_id = int(str(item).strip())
        value = parse_amount(amount, f"{where}.amount")
        rtype = str(rtype or RefundsPartialType.BASE_FEES.value).strip().upper()
        if rtype not in {t.value for t in RefundsPartialType}:
            raise InputError(
                f"{rtype!r} is not a refund type (BASE_FEES, FUTURE_EFFECTIVE_FEES, PRIORITY_FEES, SERVICE_FEES)",
                field=f"{where}.refund_type",
            )
        if (item_id, rtype) in seen:
            raise InputError(
                f"line item {item_id} appears twice with {rtype}; give one amount per line and type",
                field=where,
            )
        seen.add((item_id, rtype))
        out.append((item_id, value, rtype))
    if not out:
        raise InputError("no lines given; give at least one (payment_line_item_id, amount)", field="lines")
    return out


def check_lines(
    requested: Sequence[tuple[int, Decimal, str]],
    lines: Mapping[int, LineFacts],
    invoice_id: int,
    owners: Mapping[int, int],
) -> list[CreditEntry]:
    """Refuse a line of another invoice, a cancelled line, or more than what remains in a pool."""
    drawn: dict[tuple[int, str], Decimal] = {}
    entries: list[CreditEntry] = []
    for i, (item_id, amount, rtype) in enumerate(requested):
        where = f"lines[{i}]"
        line = lines.get(item_id)
        if line is None:
            owner = owners.get(item_id)
            if owner is None:
                raise InputError(
                    f"payment line item {item_id} does not exist", field=f"{where}.payment_line_item_id"
                )
            raise InputError(
                f"payment line item {item_id} belongs to invoice {owner}, not to invoice {invoice_id}",
                field=f"{where}.payment_line_item_id",
            )
        if not line.active:
            raise InputError(
                f"payment line item {item_id} is {line.status}; only ACTIVE lines can be credited",
                field=f"{where}.payment_line_item_id",
            )
        pool = "service_fees" if rtype == SERVICE else "fees"
        taken = drawn.get((item_id, pool), ZERO) + amount
        if taken > line.remaining(rtype):
            what = "service_fees" if rtype == SERVICE else "total"
            raise InputError(
                f"{taken} is more than what remains on line item {item_id} for {rtype} ({what} "
                f"{line.pool_amount(rtype)}, {line.credited(rtype)} credited before, {line.remaining(rtype)} left)",
                field=f"{where}.amount",
            )
        drawn[(item_id, pool)] = taken
        entries.append(CreditEntry(item_id, rtype, amount))
    return sorted(entries, key=CreditEntry.sort_key)


def remaining_totals(lines: Iterable[LineFacts]) -> tuple[Decimal, Decimal]:
    """(what remains in every pool, GST) over the active lines."""
    pools = gst = ZERO
    for line in lines:
        if line.active:
            pools += max(ZERO, line.remaining("BASE_FEES")) + max(ZERO, line.remaining(SERVICE))
            gst += line.statutory_fees_gst + line.service_fees_gst
    return pools, gst


def spread_amount(amount: Decimal, lines: Iterable[LineFacts]) -> tuple[list[CreditEntry], list[GstEntry]]:
    """Spread ``amount`` over the lines (see the module docstring). Returns (entries, GST entries); GST is
    credited only when ``amount`` is everything that remains, GST included."""
    ordered = sorted((ln for ln in lines if ln.active), key=lambda ln: ln.id)
    pools, gst = remaining_totals(ordered)
    full = gst > 0 and amount == pools + gst
    if amount > pools and not full:
        extra = f"; a full credit, GST included, is {pools + gst}" if gst > 0 else ""
        raise InputError(
            f"{amount} is more than what remains on the invoice's line items ({pools}){extra}", field="amount"
        )
    entries: list[CreditEntry] = []
    left = pools if full else amount
    for line in ordered:
        for rtype in (RefundsPartialType.BASE_FEES.value, SERVICE):
            take = min(left, max(ZERO, line.remaining(rtype)))
            if take > 0:
                entries.append(CreditEntry(line.id, rtype, take))
                left -= take
    gst_entries = (
        [
            GstEntry(line.id, kind, getattr(line, kind))
            for line in ordered
            for kind in GST_KINDS
            if getattr(line, kind) > 0
        ]
        if full
        else []
    )
    return entries, gst_entries


def exhausts_pools(entries: Iterable[CreditEntry], lines: Iterable[LineFacts]) -> bool:
    """True when, after ``entries``, nothing remains in any pool of any active line."""
    taken: dict[tuple[int, str], Decimal] = {}
    for e in entries:
        pool = "service_fees" if e.refund_type == SERVICE else "fees"
        taken[(e.payment_line_item_id, pool)] = taken.get((e.payment_line_item_id, pool), ZERO) + e.amount
    for line in lines:
        if not line.active:
            continue
        if line.remaining("BASE_FEES") - taken.get((line.id, "fees"), ZERO) > 0:
            return False
        if line.remaining(SERVICE) - taken.get((line.id, "service_fees"), ZERO) > 0:
            return False
    return True


# -- CFS credit-memo lines -------------------------------------------------------------------------------------
def _code(codes: Mapping[int, DistCode], code_id: int | None, what: str) -> DistCode:
    code = codes.get(code_id) if code_id is not None else None
    if code is None:
        raise PlanError(
            f"{what}: distribution code {code_id} does not exist; CFS needs a GL account for every credit line"
        )
    if not code.active:
        raise PlanError(
            f"{what}: distribution code {code.id} ({code.name}) is not active today; sbc-pay would silently drop "
            "this line from the memo, so the credit is refused — fix the distribution code first"
        )
    return code


def entry_code(entry: CreditEntry, line: LineFacts, codes: Mapping[int, DistCode]) -> DistCode:
    """The distribution code a credit entry is booked on: the line's fee code, or its service-fee code."""
    fee = _code(codes, line.fee_distribution_id, f"line item {line.id} (fee_distribution_id)")
    if entry.refund_type != SERVICE:
        return fee
    return _code(
        codes, fee.service_fee_code_id, f"line item {line.id} service fees (service_fee_distribution_code_id)"
    )


def gst_code(entry: GstEntry, line: LineFacts, codes: Mapping[int, DistCode]) -> DistCode:
    fee = _code(codes, line.fee_distribution_id, f"line item {line.id} (fee_distribution_id)")
    if entry.kind == "statutory_fees_gst":
        return _code(codes, fee.statutory_gst_code_id, f"line item {line.id} statutory GST")
    return _code(codes, fee.service_gst_code_id, f"line item {line.id} service GST")


def build_memo_lines(
    entries: Sequence[CreditEntry],
    gst_entries: Sequence[GstEntry],
    lines: Mapping[int, LineFacts],
    codes: Mapping[int, DistCode],
) -> list[dict[str, Any]]:
    """CFS ``lines`` of the credit memo: amounts aggregated per distribution code (first appearance order)
    and negated, as ``CFSService.build_lines(negate=True)`` does."""
    totals: dict[int, Decimal] = {}
    labels: dict[int, str] = {}
    kinds: dict[int, set[str]] = {}

    def add(code: DistCode, amount: Decimal, label: str, kind: str) -> None:
        totals[code.id] = totals.get(code.id, ZERO) + amount
        labels.setdefault(code.id, label)
        kinds.setdefault(code.id, set()).add(kind)

    for e in entries:
        line = lines[e.payment_line_item_id]
        code = entry_code(e, line, codes)
        if e.refund_type == SERVICE:
            add(code, e.amount, "Service Fee", "service")
        else:
            add(code, e.amount, line.description or code.name or "Registry fees", "fee")
    for g in gst_entries:
        code = gst_code(g, lines[g.payment_line_item_id], codes)
        add(
            code,
            g.amount,
            "Statutory Fees GST" if g.kind == "statutory_fees_gst" else "Service Fees GST",
            g.kind,
        )
    out: list[dict[str, Any]] = []
    for n, (code_id, amount) in enumerate(totals.items(), start=1):
        label = labels[code_id]
        if {"statutory_fees_gst", "service_fees_gst"} <= kinds[code_id]:
            label = "Statutory & Service Fees GST"
        out.append(
            {
                "line_number": n,
                "line_type": "LINE",
                "description": label,
                "unit_price": -amount,
                "quantity": 1,
                "distribution": [
                    {"dist_line_number": n, "amount": -amount, "account": codes[code_id].account}
                ],
            }
        )
    return out
