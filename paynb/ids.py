"""Identifier helpers: CFS invoice numbers and time-ordered run ids."""

from __future__ import annotations

import os
import re
import time

from paynb.errors import InputError

DEFAULT_INVOICE_PREFIX = "REG"
CONSOLIDATED_SUFFIX = "-C"
_NUMBER = re.compile(r"^(?P<prefix>[A-Z]+?)(?P<digits>\d{7,})(?P<consolidated>-C)?$")


def format_invoice_number(invoice_id: int, prefix: str = DEFAULT_INVOICE_PREFIX) -> str:
    """``REG`` + the id zero-padded to 8 digits, as CREATE_INVOICES/EJV_PAYMENT send it."""
    if invoice_id < 0:
        raise InputError("an invoice id cannot be negative", field="invoice_id")
    return f"{prefix}{invoice_id:0>8}"


def consolidated_invoice_number(invoice_number: str) -> str:
    """The ``-C`` number used when an NSF'd PAD invoice is repaid by credit card."""
    return invoice_number if is_consolidated(invoice_number) else invoice_number + CONSOLIDATED_SUFFIX


def is_consolidated(invoice_number: str) -> bool:
    return invoice_number.endswith(CONSOLIDATED_SUFFIX)


def parse_invoice_number(invoice_number: str) -> tuple[str, int, bool]:
    """Split ``REG01234567[-C]`` into (prefix, id, consolidated). Raises InputError otherwise."""
    m = _NUMBER.match(invoice_number.strip())
    if not m:
        raise InputError(
            f"{invoice_number!r} is not a CFS invoice number (expected e.g. REG01234567 or REG01234567-C)",
            field="invoice_number",
        )
    return m["prefix"], int(m["digits"]), bool(m["consolidated"])


def new_run_id() -> str:
    """A UUIDv7-style id: 48-bit millisecond timestamp then randomness, so ids sort by time."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 68) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
