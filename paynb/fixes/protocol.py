"""The protocol behind :mod:`paynb.fixes`: the Fix base class, the registry and :func:`apply_fix`."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from paynb.errors import InputError, PlanError
from paynb.plan import Plan, check_confirm, check_fresh

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from paynb.context import Env

OutcomeStatus = Literal["applied", "already_applied", "resumed", "nothing_to_do"]


@dataclass(frozen=True)
class Outcome:
    """What ``Fix.execute`` did. ``rows_affected`` is what paynb counted, never a notebook's say-so."""

    status: OutcomeStatus
    rows_affected: int = 0
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)
    #: what was touched: {"rows": [{"table":…, "id":…}], "objects": [{"store":…, "key":…}], "cfs": […]}
    touched: Mapping[str, Any] = field(default_factory=dict)
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ApplyResult:
    kind: str
    plan_sha256: str
    outcome: Outcome
    verification: Mapping[str, Any]
    apply_id: str
    ledger_seq: int | None = None


class FixRun:
    """Handed to ``Fix.execute``: the one write transaction and the intent journal of this apply."""

    def __init__(self, env: Env, plan: Plan, apply_id: str) -> None:
        self.env = env
        self.plan = plan
        self.apply_id = apply_id

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One READ WRITE transaction on the writer role, stamped with this apply's id."""
        from paynb import db

        with db.write_transaction(self.env.write_engine, run_id=self.apply_id) as conn:
            yield conn


class Fix(abc.ABC):
    """One kind of data fix. Subclass, set ``kind``, and ``register_fix(MyFix())``."""

    kind: ClassVar[str]
    #: one line for ``--help`` and the ledger
    title: ClassVar[str] = ""

    @abc.abstractmethod
    def plan(self, env: Env, **params: Any) -> Plan:
        """Read-only. The returned plan's ``body["params"]`` must let ``plan(env, **params)`` re-plan."""

    @abc.abstractmethod
    def execute(self, env: Env, plan: Plan, run: FixRun) -> Outcome:
        """Do the writes of a confirmed, fresh plan. Must be safe to call again after a crash."""

    def verify(self, env: Env, plan: Plan, outcome: Outcome) -> Mapping[str, Any]:
        """Re-read what was written; raise a PaynbError on any difference."""
        return {}

    def replan(self, env: Env, plan: Plan) -> Plan:
        params = plan.body.get("params")
        if not isinstance(params, Mapping):
            raise InputError("the plan has no params to re-plan from", field="body.params")
        return self.plan(env, **dict(params))


_REGISTRY: dict[str, Fix] = {}


def register_fix(fix: Fix) -> Fix:
    _REGISTRY[fix.kind] = fix
    return fix


def get_fix(kind: str) -> Fix:
    try:
        return _REGISTRY[kind]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise InputError(f"unknown fix kind {kind!r} (known: {known})", field="kind") from None


def known_fixes() -> dict[str, Fix]:
    return dict(_REGISTRY)


def apply_fix(
    fix: Fix,
    plan: Plan,
    confirm: str | None,
    *,
    env: Env | None = None,
    ticket: str = "",
    reason: str = "",
) -> ApplyResult:
    """Re-plan, refuse on any difference, execute, verify, and record the apply in the ledger."""
    from paynb.context import resolve_env

    env = resolve_env(env)
    if plan.kind != fix.kind:
        raise PlanError(f"this is a {plan.kind!r} plan; the {fix.kind!r} fix cannot apply it")
    check_confirm(plan, confirm)
    fresh = fix.replan(env, plan)
    check_fresh(plan, fresh)
    # the ledger entries, anchoring and the apply id come from paynb.ledger (see the module docstring)
    from paynb import ledger

    started = ledger.record_apply_started(fix.kind, plan, env=env, ticket=ticket, reason=reason)
    run = FixRun(env, plan, started.apply_id)
    try:
        outcome = fix.execute(env, plan, run)
        verification = fix.verify(env, plan, outcome)
    except BaseException as exc:
        ledger.record_apply_failed(started, exc, env=env)
        raise
    entry = ledger.record_apply_finished(started, outcome, verification, env=env)
    return ApplyResult(fix.kind, plan.sha256, outcome, verification, started.apply_id, entry.seq)
