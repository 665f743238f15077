"""Pre-authorized debit (PAD): stuck-invoice triage and partial credits.

``paynb.ops.pad.triage_stuck_pad`` (see :mod:`paynb.ops.pad.triage`) and the partial credit — the fix
``pad.partial_credit`` (:class:`~paynb.ops.pad.credit.PartialCreditFix`), ``plan_partial_credit`` /
``apply_partial_credit``, ``verify_plan``, ``resume_credit``, ``resolve_credit`` (see
:mod:`paynb.ops.pad.credit`; plan in ``credit_plan``, apply in ``credit_apply``, tables and notebook flow
in :mod:`paynb.ops.pad.view`) — are loaded on first use, so importing one flow does not import the other.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "triage_stuck_pad": "paynb.ops.pad.triage",
    "TriageReport": "paynb.ops.pad.triage",
    "plan_partial_credit": "paynb.ops.pad.credit",
    "apply_partial_credit": "paynb.ops.pad.credit",
    "PartialCreditFix": "paynb.ops.pad.credit",
    "verify_plan": "paynb.ops.pad.credit",
    "resume_credit": "paynb.ops.pad.credit",
    "resolve_credit": "paynb.ops.pad.credit",
    "CreditInProgress": "paynb.ops.pad.credit",
    "OverCredit": "paynb.ops.pad.credit",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'paynb.ops.pad' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
