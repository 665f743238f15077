"""The one data-fix protocol: every write paynb makes is a planned, confirmed, recorded fix.

A fix is a :class:`Fix` subclass registered under its plan ``kind``. It supplies three things:

* ``plan(env, **params) -> Plan``: read-only. ``Plan.body["params"]`` must hold the canonical params, so
  the protocol can re-plan from the plan alone.
* ``execute(env, plan, run) -> Outcome``: the writes. pay-db writes go through ``run.transaction()``
  (the writer role, one transaction, run id stamped); calls out to CFS or a store record an intent first
  (``run.intent(key, payload)``, then ``run.mark(key, "sent", **evidence)``) so a killed apply can resume
  without doing anything twice. Right after something is done for good, call
  ``run.committed("what", next_step="what to run next")``: an error after that point is raised as
  ``AfterCommitError`` saying what was committed.
* ``verify(env, plan, outcome) -> dict``: re-read what was written; raise on any difference.

:func:`apply_fix` does the rest, in this order: the plan's kind matches, ``confirm`` equals the plan's
sha256 (else ``ConfirmMismatch``), the plan file was not edited (its sha256 is recomputed from its body),
re-planning now gives the same sha256 (else ``StalePlanError``: "the data changed"), an ``apply-started``
ledger entry, ``execute``, ``verify``, an ``apply-finished`` ledger entry with operator, ticket, reason,
before/after, what was touched and the outcome, and the chain head anchored in the archive.

The CLI (``<area> … plan --out FILE`` / ``apply --plan FILE --confirm SHA``, built by
:func:`paynb.fixes.cli.fix_commands`) and the notebook helper (:func:`paynb.fixes.widgets.show_plan`) are
built on this module, so every fix has the same shape. The ledger entries are described in
``docs/audit.md``.

Example::

    from paynb.fixes import get_fix, apply_fix
    fix = get_fix("pad.partial_credit")
    plan = fix.plan(env, invoice_id=10, amount="1.00", reason="duplicate", ticket="OPS-1")
    result = apply_fix(fix, plan, confirm=plan.sha256, env=env, ticket="OPS-1", reason="duplicate")
"""

from __future__ import annotations

from paynb.fixes.protocol import (
    ApplyResult,
    Fix,
    FixRun,
    Outcome,
    apply_fix,
    get_fix,
    known_fixes,
    register_fix,
)

__all__ = [
    "ApplyResult",
    "Fix",
    "FixRun",
    "Outcome",
    "apply_fix",
    "get_fix",
    "known_fixes",
    "register_fix",
]
