"""Routing slips (FAS): look at one slip, and void a slip that already has transactions.

* ``show_slip(number, env=)`` (:mod:`.show`): the slip and its links, invoices, refunds, CFS receipts
  (read through FAS), the void's preconditions and the runbook situation it is in.
* the fix ``routing_slip.void`` (:class:`~paynb.ops.routing_slips.apply.RoutingSlipVoidFix`):
  ``plan_void(number, reason=, ticket=, reverse_receipts=, env=)`` (:mod:`.plan`, read-only) and
  ``apply_void(plan, confirm, env=)`` (:mod:`.apply`: unassociate, void, re-associate; resumable).
* tables for the CLI and the notebook: :mod:`.view`.

Facts and their sbc-pay sources: docs/routing-slips.md. Loaded on first use.

Example::

    from paynb.ops.routing_slips import plan_void, apply_void
    plan = plan_void("980000015", reason="cheque returned", ticket="OPS-77", reverse_receipts=True)
    apply_void(plan, plan.sha256, ticket="OPS-77", reason="cheque returned")
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "show_slip": "paynb.ops.routing_slips.show",
    "situations": "paynb.ops.routing_slips.show",
    "plan_void": "paynb.ops.routing_slips.plan",
    "VoidBlocked": "paynb.ops.routing_slips.plan",
    "OperatorNotAllowed": "paynb.ops.routing_slips.plan",
    "PLAN_KIND": "paynb.ops.routing_slips.plan",
    "RoutingSlipVoidFix": "paynb.ops.routing_slips.apply",
    "VoidWaitingForJob": "paynb.ops.routing_slips.apply",
    "VoidNotVerified": "paynb.ops.routing_slips.apply",
    "verify_void": "paynb.ops.routing_slips.apply",
    "apply_void": "paynb.ops.routing_slips.apply",
    "get_void_fix": "paynb.ops.routing_slips.apply",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'paynb.ops.routing_slips' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
