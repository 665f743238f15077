"""The ``settlement.replay`` fix: write the filtered CSV once, make the guard change, verify
(docs/settlement-replay.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from paynb.canonical import sha256_hex
from paynb.errors import PlanError, StoreError
from paynb.fixes import Fix, FixRun, Outcome, register_fix
from paynb.formats.settlement_csv import (
    parse_settlement_csv,
    write_settlement_csv,
)
from paynb.ops.intents import write_object_once
from paynb.ops.settlements.classify import guard_rows, guard_state
from paynb.ops.settlements.files import (
    SettlementSource,
    read_settlement_ref,
    resolve_settlement_file,
    settlement_sources,
)
from paynb.ops.settlements.plan import PLAN_KIND, plan_replay
from paynb.plan import Plan
from paynb.settings import Settings
from paynb.store import Store

if TYPE_CHECKING:
    from paynb.context import Env


def _filtered_bytes(env: Env, plan: Plan, sources: Sequence[SettlementSource]) -> bytes:
    """The filtered CSV rebuilt from the source file, checked against the plan's sha256."""
    body = plan.body
    ref = resolve_settlement_file(body["params"]["file"], sources)
    parsed = parse_settlement_csv(read_settlement_ref(ref, sources), file=ref.ref)
    lines = set(body["filtered_csv"]["lines"])
    rows = [r for r in parsed.rows if r.line_number in lines]
    data = write_settlement_csv(rows, body["filtered_csv"]["header_style"]).encode("utf-8")
    if sha256_hex(data) != body["filtered_csv"]["sha256"]:
        raise PlanError(f"the filtered CSV rebuilt from {ref.ref} is not the planned one; re-plan")
    return data


def _target_source(sources: Sequence[SettlementSource]) -> SettlementSource:
    target = next((s for s in sources if s.name == "bucket"), None)
    if target is None:
        raise StoreError("no current bucket to write the filtered CSV to (set PAYNB_BUCKET)")
    return target


def _object_state(store: Store, key: str, digest: str) -> str:
    """``absent``, ``same`` (the planned bytes), or refused when another object holds the key."""
    info = store.stat(key)
    if info is None:
        return "absent"
    actual = info.sha256 or sha256_hex(store.get(key, verify=False))
    if actual != digest:
        raise StoreError(f"{store.url_for(key)} already exists with other content; not overwriting it")
    return "same"


class ReplayFix(Fix):
    """``settlement.replay``: write the filtered CSV under its new ``ar/`` name (never overwriting), make the
    original's guard change in pay-db, and hand over the queue message to publish. Store parts given here
    (tests) win over the ``Env``'s buckets."""

    kind = PLAN_KIND
    title = "replay the safe, not-yet-applied rows of a settlement CSV under a new name"

    def __init__(self, *, store: Store | None = None, legacy_store: Store | None = None) -> None:
        self.store = store
        self.legacy_store = legacy_store

    def _sources(self, env: Env) -> list[SettlementSource]:
        sources, _problems = settlement_sources(
            env.settings, store=self.store, legacy_store=self.legacy_store
        )
        return sources

    def plan(self, env: Env, **params: Any) -> Plan:
        return plan_replay(
            str(params.get("file") or ""), env=env, store=self.store, legacy_store=self.legacy_store
        )

    def execute(self, env: Env, plan: Plan, run: FixRun) -> Outcome:
        body = plan.body
        filtered = body.get("filtered_csv")
        if filtered is None:
            raise PlanError("this plan has nothing to replay (no filtered CSV); there is nothing to apply")
        sources = self._sources(env)
        target = _target_source(sources)
        key, digest = filtered["key"], filtered["sha256"]
        # the object first: a kill before the pay-db commit leaves a plan that re-plans the same and resumes
        meta = {"paynb-source": body["file"]["ref"], "paynb-kind": PLAN_KIND, "paynb-apply": run.apply_id}
        # always through the journal: a killed apply's pending intent is confirmed by what is there
        written = write_object_once(
            run,
            target.store.url_for(key),
            digest,
            present=lambda: _object_state(target.store, key, digest) == "same",
            write=lambda: target.store.put(
                key, _filtered_bytes(env, plan, sources), content_type="text/csv", metadata=meta
            ),
        )
        change = body["guard_change"]
        statements = [*change["statements"], *change["original"]["statements"]]
        rows: list[dict[str, Any]] = []
        if statements:
            import sqlalchemy as sa

            with run.transaction() as conn:
                for st in statements:
                    count = conn.execute(sa.text(st["sql"]), st["params"]).rowcount
                    if count != st["expect_rows"]:
                        raise PlanError(
                            f"cas_settlements changed under the apply ({st['sql'].split()[0]} touched {count} row(s),"
                            f" planned {st['expect_rows']}); nothing was committed",
                            hint="re-plan and review again",
                        )
                    rows.append(
                        {
                            "table": "cas_settlements",
                            "id": st["params"].get("id"),
                            "file_name": st["params"]["file_name"],
                            "action": st["sql"].split()[0].lower(),
                        }
                    )
        return Outcome(
            status="applied" if written or rows else "already_applied",
            rows_affected=len(rows),
            before={"guard": body["guard"], "filtered_csv_present": not written},
            after={"filtered_csv": key, "guard_rows_changed": len(rows)},
            touched={
                "objects": [{"store": target.store.url_for(key), "key": key, "sha256": digest}],
                "rows": rows,
                "cfs": [],
            },
            detail={
                "written": written,
                "key": key,
                "queue_message": body["queue_message"],
                "gcloud_command": body["gcloud_command"],
            },
        )

    def verify(self, env: Env, plan: Plan, outcome: Outcome) -> dict[str, Any]:
        target = _target_source(self._sources(env))
        filtered = plan.body["filtered_csv"]
        if _object_state(target.store, filtered["key"], filtered["sha256"]) != "same":
            raise StoreError(f"{filtered['key']} is not in the bucket after the apply")
        name = plan.body["guard"]["file_name"]
        with env.read() as conn:
            state = guard_state(guard_rows(conn, [name])[name])
        if state != "processed":
            raise PlanError(f"the guard row of {name} is {state} after the apply, not processed")
        return {"filtered_csv": filtered["key"], "original_guard": state}


REPLAY_FIX = register_fix(ReplayFix())


def apply_replay(
    plan: Plan,
    confirm: str | None,
    *,
    env: Env | None = None,
    ticket: str = "",
    reason: str = "",
    settings: Settings | None = None,
    engine: Engine | None = None,
    store: Store | None = None,
    legacy_store: Store | None = None,
) -> Any:
    """Apply a confirmed replay plan through :func:`paynb.fixes.apply_fix` (recorded in the ledger).
    Returns the :class:`paynb.fixes.ApplyResult`; its ``outcome.detail`` holds the queue message."""
    from paynb.context import resolve_env
    from paynb.fixes import apply_fix

    env = resolve_env(env, settings=settings, engine=engine)
    return apply_fix(
        ReplayFix(store=store, legacy_store=legacy_store),
        plan,
        confirm,
        env=env,
        ticket=ticket,
        reason=reason,
    )
