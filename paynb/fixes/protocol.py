"""The protocol behind :mod:`paynb.fixes`: the Fix base class, the registry and :func:`apply_fix`."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from paynb.canonical import to_jsonable
from paynb.errors import AfterCommitError, InputError, PlanError
from paynb.plan import Plan, check_confirm, check_fresh

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from paynb.context import Env
    from paynb.ledger import Intent

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
    #: where the chain head was anchored after this apply (``archived`` / ``spooled`` / ``failed``)
    anchor_state: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(
            {
                "kind": self.kind,
                "plan_sha256": self.plan_sha256,
                "apply_id": self.apply_id,
                "status": self.outcome.status,
                "rows_affected": self.outcome.rows_affected,
                "before": dict(self.outcome.before),
                "after": dict(self.outcome.after),
                "touched": dict(self.outcome.touched),
                "verification": dict(self.verification),
                "ledger_seq": self.ledger_seq,
                "anchor": self.anchor_state,
            }
        )


class FixRun:
    """Handed to ``Fix.execute``: the one write transaction and the intent journal of this apply.

    After anything outside pay-db is done for good (a CFS document posted, an object written), call
    :meth:`committed` with what it was and, optionally, what to run next: if the apply fails after that,
    the error says what was committed instead of looking like nothing happened. Leaving
    :meth:`transaction` normally (its commit) notes the commit by itself.
    """

    def __init__(self, env: Env, plan: Plan, apply_id: str) -> None:
        self.env = env
        self.plan = plan
        self.apply_id = apply_id
        #: what is committed so far, oldest first: {"what": …, "next_step": …, …facts}
        self.commits: list[dict[str, Any]] = []
        self.next_step = ""

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One READ WRITE transaction on the writer role, stamped with this apply's id."""
        from paynb import db

        with db.write_transaction(self.env.write_engine, run_id=self.apply_id) as conn:
            yield conn
        self.commits.append({"what": f"the pay-db transaction of apply {self.apply_id}"})

    def committed(self, what: str, *, next_step: str = "", **facts: Any) -> None:
        """Note that ``what`` is now done for good (call it right after the commit or the call)."""
        self.commits.append(
            to_jsonable({"what": what, **({"next_step": next_step} if next_step else {}), **facts})
        )
        if next_step:
            self.next_step = next_step

    # -- the intent journal (exactly-once calls out to CFS or a store) ----------------------------------
    def intent(self, key: str, payload: Any) -> Intent:
        """Record that ``key`` is about to happen (``pending``); the same key and payload again returns
        the existing intent, so a resumed apply finds how far the killed one got."""
        from paynb import ledger

        return ledger.record_intent(
            key,
            payload,
            run_id=ledger.current_run_id(self.env),
            apply_id=self.apply_id,
            settings=self.env.settings,
        )

    def mark(self, key: str, state: str, **evidence: Any) -> Intent:
        """Move intent ``key`` to ``state`` (``sent``, ``confirmed``, …) with its evidence."""
        from paynb import ledger

        return ledger.mark_intent(key, state, apply_id=self.apply_id, settings=self.env.settings, **evidence)

    def get_intent(self, key: str) -> Intent | None:
        from paynb import ledger

        return ledger.get_intent(key, settings=self.env.settings)


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

    def table(self, plan: Plan) -> Any:
        """A pandas DataFrame that shows the plan to a person (CLI and notebook), or None for the
        default view (:func:`paynb.fixes.view.plan_frame`)."""
        return None

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
    operator: str | None = None,
) -> ApplyResult:
    """Re-plan, refuse on any difference, execute, verify, and record the apply in the ledger.

    Refusals (nothing written, nothing recorded): ``PlanError`` for another kind, ``PlanEditedError``
    for an edited plan file, ``ConfirmMismatch``, ``StalePlanError`` ("the data changed"). Once
    ``apply-started`` is chained, any exception (KeyboardInterrupt included) chains ``apply-failed``;
    one raised after something was committed becomes :class:`AfterCommitError` saying what.
    """
    from paynb import ledger
    from paynb.context import resolve_env

    env = resolve_env(env)
    if plan.kind != fix.kind:
        raise PlanError(f"this is a {plan.kind!r} plan; the {fix.kind!r} fix cannot apply it")
    check_confirm(plan, confirm)
    fresh = fix.replan(env, plan)
    check_fresh(plan, fresh)
    started = ledger.record_apply_started(
        fix.kind, plan, env=env, ticket=ticket, reason=reason, operator=operator
    )
    run = FixRun(env, plan, started.apply_id)
    try:
        outcome = fix.execute(env, plan, run)
        verification = fix.verify(env, plan, outcome)
    except BaseException as exc:
        _record_failure(ledger, started, exc, run)
        if run.commits and isinstance(exc, Exception):
            raise _after_commit(fix, run, exc) from exc
        raise
    entry = ledger.record_apply_finished(started, outcome, verification, env=env)
    anchor = entry.anchor.state if entry.anchor is not None else None
    return ApplyResult(fix.kind, plan.sha256, outcome, verification, started.apply_id, entry.seq, anchor)


def _record_failure(ledger: Any, started: Any, exc: BaseException, run: FixRun) -> None:
    """Chain apply-failed; if even the ledger fails now, say so without hiding the first error."""
    try:
        ledger.record_apply_failed(started, exc, committed=run.commits)
    except Exception as err:  # the original error matters more; keep both visible
        exc.add_note(f"paynb could not record apply-failed for {started.apply_id}: {err}")


def _after_commit(fix: Fix, run: FixRun, exc: Exception) -> AfterCommitError:
    done = "; ".join(str(c.get("what")) for c in run.commits)
    cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    next_step = run.next_step or (
        f"do not apply this plan again; see `paynb runs show {run.apply_id}`, then make a new plan: it "
        "shows what is left to do"
    )
    return AfterCommitError(
        f"apply {run.apply_id} ({fix.kind}) committed {done}, then failed: {cause}", hint=next_step
    )
