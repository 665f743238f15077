"""A toy fix for tests only: set the note of one row of ``paynb_toy_notes`` in a sandbox database.

It exercises the whole protocol (plan, confirm, re-plan, one transaction on the writer engine, verify,
ledger entries, anchor) on real PostgreSQL without depending on any pay-db fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from paynb.context import Env
from paynb.errors import InputError, PlanError
from paynb.fixes import Fix, FixRun, Outcome, register_fix
from paynb.plan import Plan
from paynb.sandbox.postgres import READER, WRITER

KIND = "test.toy_note"
TABLE = "paynb_toy_notes"


def create_table(url: str, rows: Mapping[int, str]) -> None:
    """The toy table, made by the admin ``url``; the writer role may update it, as a real fix's tables."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (id integer PRIMARY KEY, note text NOT NULL)"
        )
        conn.exec_driver_sql(f"GRANT UPDATE ON {TABLE} TO {WRITER}")
        for row_id, note in rows.items():
            conn.execute(sa.text(f"INSERT INTO {TABLE} (id, note) VALUES (:i, :n)"), {"i": row_id, "n": note})
    engine.dispose()


def role_urls(url: str) -> dict[str, str]:
    """The reader and writer logins (docs/roles.md) on the database of the admin ``url``."""
    from tests.plugins.db import as_role

    return {"PAYNB_DATABASE_URL": as_role(url, READER), "PAYNB_DATABASE_WRITE_URL": as_role(url, WRITER)}


def read_note(env: Env, row_id: int) -> str | None:
    with env.read() as conn:
        return conn.execute(sa.text(f"SELECT note FROM {TABLE} WHERE id = :i"), {"i": row_id}).scalar()


class ToyNoteFix(Fix):
    kind = KIND
    title = "set the note of one toy row"
    #: tests set these to make execute/verify misbehave at a chosen point
    fail_in_execute: BaseException | None = None
    fail_after_commit: BaseException | None = None
    on_intent: Callable[[FixRun], None] | None = None

    def plan(self, env: Env, **params: Any) -> Plan:
        try:
            row_id = int(params["row_id"])
        except (KeyError, ValueError):
            raise InputError("give a whole number", field="row_id") from None
        note = str(params.get("note", ""))
        if not note:
            raise InputError("give the new note", field="note")
        before = read_note(env, row_id)
        if before is None:
            raise PlanError(f"no toy row {row_id}")
        return Plan(
            kind=KIND,
            body={
                "params": {"row_id": row_id, "note": note},
                "row_id": row_id,
                "before": before,
                "after": note,
            },
            summary=f"toy row {row_id}: {before!r} -> {note!r}",
        )

    def execute(self, env: Env, plan: Plan, run: FixRun) -> Outcome:
        body = plan.body
        if self.on_intent is not None:
            self.on_intent(run)
        if self.fail_in_execute is not None:
            raise self.fail_in_execute
        with run.transaction() as conn:
            done = conn.execute(
                sa.text(f"UPDATE {TABLE} SET note = :n WHERE id = :i AND note = :b"),
                {"n": body["after"], "i": body["row_id"], "b": body["before"]},
            )
        run.committed(f"toy row {body['row_id']} set to {body['after']!r}", next_step="nothing: it is a toy")
        if self.fail_after_commit is not None:
            raise self.fail_after_commit
        return Outcome(
            status="applied",
            rows_affected=done.rowcount,
            before={"note": body["before"]},
            after={"note": body["after"]},
            touched={"rows": [{"table": TABLE, "id": body["row_id"]}]},
        )

    def verify(self, env: Env, plan: Plan, outcome: Outcome) -> Mapping[str, Any]:
        now = read_note(env, plan.body["row_id"])
        if now != plan.body["after"]:
            raise PlanError(f"toy row {plan.body['row_id']} holds {now!r} after the apply")
        return {"note": now}


def toy_fix() -> ToyNoteFix:
    """A fresh registered instance (tests tweak its failure knobs)."""
    fix = ToyNoteFix()
    register_fix(fix)
    return fix
