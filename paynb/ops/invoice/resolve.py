"""Which pay-db invoices an operator means: pay-db ids, REG numbers (``invoice_references``) and CFS
numbers (also a consolidated ``-C`` number, or a payment's ``invoice_number``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from paynb.db import fetch_all
from paynb.errors import InputError

MAX_IDS = 500
_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,49}$")


@dataclass(frozen=True)
class Resolved:
    """``found`` maps each given id to the invoice ids it names; ``unknown`` are ids pay-db does not know."""

    found: dict[str, tuple[int, ...]] = field(default_factory=dict)
    unknown: tuple[str, ...] = ()

    @property
    def invoice_ids(self) -> list[int]:
        seen: dict[int, None] = {}
        for ids in self.found.values():
            for i in ids:
                seen.setdefault(i, None)
        return list(seen)


def parse_ids(values: Iterable[str]) -> list[str]:
    """Split commas and whitespace, drop blanks and '#', keep the order, refuse nonsense early."""
    out: list[str] = []
    for raw in values:
        for part in re.split(r"[\s,]+", str(raw)):
            part = part.strip().lstrip("#")
            if not part:
                continue
            if not _NUMBER.match(part):
                raise InputError(f"{part!r} is not an invoice id, REG number or CFS number", field="ID")
            if part not in out:
                out.append(part)
    if not out:
        raise InputError("give at least one invoice id, REG number or CFS number", field="ID")
    if len(out) > MAX_IDS:
        raise InputError(f"at most {MAX_IDS} ids at a time (got {len(out)})", field="ID")
    return out


def resolve_ids(conn: Connection, ids: Iterable[str]) -> Resolved:
    """Look every id up in one round trip per kind."""
    given = parse_ids(ids)
    numeric = [int(i) for i in given if i.isdigit() and int(i) < 2**31]
    numbers = [i for i in given if not i.isdigit()]
    found: dict[str, tuple[int, ...]] = {}
    if numeric:
        rows = fetch_all(conn, "SELECT id FROM invoices WHERE id = ANY(:ids)", {"ids": numeric})
        known = {r["id"] for r in rows}
        for i in given:
            if i.isdigit() and int(i) in known:
                found[i] = (int(i),)
    if numbers:
        # a consolidated number is the original with -C; payments carry the CFS number too
        bases = sorted({n.upper().removesuffix("-C") for n in numbers} | {n.upper() for n in numbers})
        rows = fetch_all(
            conn,
            """
            SELECT upper(r.invoice_number) AS number, r.invoice_id FROM invoice_references r
            WHERE upper(r.invoice_number) = ANY(:n) OR upper(r.reference_number) = ANY(:n)
            UNION
            SELECT upper(p.invoice_number), r.invoice_id FROM payments p
            JOIN invoice_references r ON upper(r.invoice_number) = upper(p.invoice_number)
            WHERE upper(p.invoice_number) = ANY(:n)
            ORDER BY 2
            """,
            {"n": bases},
        )
        by_number: dict[str, list[int]] = {}
        for r in rows:
            by_number.setdefault(r["number"], []).append(r["invoice_id"])
        for n in numbers:
            ids_for = by_number.get(n.upper()) or by_number.get(n.upper().removesuffix("-C"))
            if ids_for:
                found[n] = tuple(dict.fromkeys(ids_for))
    unknown = tuple(i for i in given if i not in found)
    return Resolved(found=found, unknown=unknown)
