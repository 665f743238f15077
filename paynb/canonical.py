"""Canonical JSON and hashing: the same content always gives the same bytes and sha256.

Decimal is written as a string (exact money), dates and datetimes as ISO 8601, sets sorted.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import PurePath
from typing import Any

_PLAIN = frozenset({str, int, bool, type(None)})


def to_jsonable(value: Any) -> Any:
    """Convert values JSON cannot hold into exact, stable forms."""
    if type(value) in _PLAIN:  # most leaves (ids, codes): a set lookup instead of nine isinstance checks
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(to_jsonable(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if all(type(v) is int for v in value):  # id lists (statement ids) can be long
            return list(value)
        return [to_jsonable(v) for v in value]
    if isinstance(value, float):
        raise TypeError("floats are not allowed in canonical JSON; use Decimal for money")
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return to_jsonable(value.item())
    return value


def canonical_json(value: Any) -> str:
    return json.dumps(to_jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def canonical_sha256(value: Any) -> str:
    return sha256_hex(canonical_json(value))


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for reports: exact money, ISO dates."""
    out = to_jsonable(value)
    if out is value:
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")
    return out
