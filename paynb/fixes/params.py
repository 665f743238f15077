"""Checks for the parameters a fix plans from (the plan's ``body["params"]``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paynb.errors import InputError


def positive_id(params: Mapping[str, Any], field: str, what: str) -> int:
    """``params[field]`` as a row id (a whole number, 1 or more); ``what`` names it in the error."""
    try:
        value = int(params[field])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"give the {what} (a whole number)", field=field) from None
    if value <= 0:
        raise InputError(f"must be 1 or more, got {value}", field=field)
    return value


__all__ = ["positive_id"]
