"""``paynb db reindex plan|apply``: rebuild only the broken indexes, as a planned, confirmed fix.

The plan lists each target index with its check result; for a unique index, the duplicate keys that
would make the rebuild fail, the rows behind them, what references those rows, and a keep/remove
proposal; and the invalid ``_ccnew``/``_ccold`` leftovers of failed concurrent rebuilds, to drop.

The apply, in this order: drop the leftovers (``DROP INDEX CONCURRENTLY``); delete the duplicates
proposed ``remove`` in one transaction (each by primary key, exactly one row each, or nothing); then
``REINDEX INDEX CONCURRENTLY`` each target, one at a time; then check the targets again. A crash
midway leaves at worst an invalid ``_ccnew`` index, which the next plan lists to drop, so planning and
applying again finishes the job. See docs/db-health.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from paynb.canonical import to_jsonable
from paynb.context import Env
from paynb.errors import PlanError
from paynb.fixes import Fix, FixRun, Outcome, register_fix
from paynb.ops.dbhealth.admin import admin_engine, one_transaction
from paynb.ops.dbhealth.catalog import list_btree_indexes, quote_ident
from paynb.ops.dbhealth.check import check_indexes
from paynb.ops.dbhealth.duplicates import find_duplicates
from paynb.plan import Plan

KIND = "db.reindex"


class ReindexFix(Fix):
    kind = KIND
    title = "Rebuild broken B-tree indexes (removing duplicate keys first)"

    def plan(
        self,
        env: Env,
        indexes: Sequence[str] = (),
        tables: Sequence[str] = (),
        method: str = "auto",
        heapallindexed: bool = False,
    ) -> Plan:
        params = {
            "indexes": sorted(indexes),
            "tables": sorted(tables),
            "method": method,
            "heapallindexed": bool(heapallindexed),
        }
        report = check_indexes(
            tables=params["tables"] or None,
            indexes=params["indexes"] or None,
            method=method,  # type: ignore[arg-type]
            heapallindexed=heapallindexed,
            env=env,
        )
        named = set(params["indexes"])
        # a named index is rebuilt whatever its check says: a probe cannot see missing entries
        chosen = [
            c
            for c in report.checks
            if c.index in named or c.status == "corrupt" or (c.status == "invalid" and "_cc" not in c.index)
        ]
        with env.read() as conn:
            catalog = {i.name: i for i in list_btree_indexes(conn)}
            targets: list[dict[str, Any]] = []
            for c in chosen:
                info = catalog[c.index]
                groups = [g.to_dict() for g in find_duplicates(conn, info)] if info.is_unique else []
                targets.append(
                    {
                        "index": info.name,
                        "schema": info.schema,
                        "table": info.table,
                        "definition": info.definition,
                        "unique": info.is_unique,
                        "check": {"status": c.status, "method": c.method, "message": c.message},
                        "duplicates": groups,
                    }
                )
            leftovers = [
                {"index": i.name, "schema": i.schema, "table": i.table, "definition": i.definition}
                for i in catalog.values()
                if i.is_leftover and (not params["tables"] or i.table in params["tables"])
            ]
            statements = [f"DROP INDEX CONCURRENTLY IF EXISTS {_qualified(conn, d)}" for d in leftovers]
            statements += [f"REINDEX INDEX CONCURRENTLY {_qualified(conn, t)}" for t in targets]
        removals = sum(
            row["proposal"] == "remove" for t in targets for g in t["duplicates"] for row in g["rows"]
        )
        manual = [
            f"{t['index']}: duplicate key {g['index_key']} has more than one referenced row; merge the "
            "references by hand, then plan again"
            for t in targets
            for g in t["duplicates"]
            if any(r["proposal"] == "manual" for r in g["rows"])
        ]
        body = {
            "params": params,
            "targets": targets,
            "drop": leftovers,
            "statements": statements,
            "removals": removals,
            "blocked": manual,
        }
        summary = (
            f"rebuild {len(targets)} index(es), drop {len(leftovers)} leftover(s), remove {removals} duplicate row(s)"
            if targets or leftovers
            else "nothing to rebuild: every checked index is ok"
        )
        return Plan(kind=KIND, body=to_jsonable(body), summary=summary, warnings=tuple(manual))

    def execute(self, env: Env, plan: Plan, run: FixRun) -> Outcome:
        body = plan.body
        if body["blocked"]:
            raise PlanError("the plan has duplicate keys that need a person: " + "; ".join(body["blocked"]))
        engine = admin_engine(env)
        removed: list[dict[str, Any]] = []
        with engine.connect() as conn:
            for leftover in body["drop"]:
                conn.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {_qualified(conn, leftover)}")
            removed = _remove_duplicates(conn, body["targets"])
            for target in body["targets"]:
                conn.exec_driver_sql(f"REINDEX INDEX CONCURRENTLY {_qualified(conn, target)}")
        engine.dispose()
        return Outcome(
            status="applied",
            rows_affected=len(removed),
            before={t["index"]: t["check"]["status"] for t in body["targets"]},
            after={t["index"]: "rebuilt" for t in body["targets"]},
            touched={
                "rows": removed,
                "indexes": [t["index"] for t in body["targets"]],
                "dropped": [d["index"] for d in body["drop"]],
            },
        )

    def verify(self, env: Env, plan: Plan, outcome: Outcome) -> dict[str, Any]:
        names = [t["index"] for t in plan.body["targets"]]
        if not names:
            return {"checked": 0}
        params = plan.body["params"]
        report = check_indexes(
            indexes=names, method=params["method"], heapallindexed=params["heapallindexed"], env=env
        )
        bad = [f"{c.index}: {c.status} {c.message}".strip() for c in report.checks if c.status != "ok"]
        if bad:
            raise PlanError(
                "rebuilt, but the check still fails: " + "; ".join(bad),
                hint="run `paynb db check` and plan the reindex again",
            )
        return {"checked": len(names), "status": "ok"}


def _qualified(conn: sa.Connection, item: dict[str, Any]) -> str:
    return f"{quote_ident(conn, item['schema'])}.{quote_ident(conn, item['index'])}"


def _remove_duplicates(conn: sa.Connection, targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Delete every row proposed ``remove``, by primary key, in one transaction; all or nothing."""
    doomed = [
        (t, row) for t in targets for g in t["duplicates"] for row in g["rows"] if row["proposal"] == "remove"
    ]
    if not doomed:
        return []
    removed: list[dict[str, Any]] = []
    with one_transaction(conn):
        for setting in ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"):
            conn.exec_driver_sql(f"SET LOCAL {setting} = off")  # never trust the index being repaired
        for target, row in doomed:
            table = f"{quote_ident(conn, target['schema'])}.{quote_ident(conn, target['table'])}"
            cond = " AND ".join(f"{quote_ident(conn, c)}::text = :k{i}" for i, c in enumerate(row["key"]))
            params = {f"k{i}": str(v) for i, v in enumerate(row["key"].values())}
            count = conn.execute(sa.text(f"DELETE FROM {table} WHERE {cond}"), params).rowcount  # noqa: S608
            if count != 1:
                raise PlanError(
                    f"expected to delete one row of {target['table']} {row['key']}, found {count}; "
                    "nothing was deleted",
                    hint="plan again: the duplicates changed since the plan",
                )
            removed.append({"table": target["table"], "key": row["key"], "row": row["row"]})
    return removed


register_fix(ReindexFix())
