"""Pre-authorized debit (PAD): stuck-invoice triage and partial credits.

``paynb.ops.pad.triage_stuck_pad`` (see :mod:`paynb.ops.pad.triage`) and
``paynb.ops.pad.plan_partial_credit`` / ``apply_partial_credit`` (see :mod:`paynb.ops.pad.credit`) are
loaded on first use, so importing one flow does not import the other.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "triage_stuck_pad": "paynb.ops.pad.triage",
    "TriageReport": "paynb.ops.pad.triage",
    "plan_partial_credit": "paynb.ops.pad.credit",
    "apply_partial_credit": "paynb.ops.pad.credit",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'paynb.ops.pad' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
