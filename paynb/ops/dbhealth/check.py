"""``paynb db check``: find corrupted B-tree indexes without disturbing working hours.

Two methods, chosen per database:

* **amcheck** (``bt_index_check``, optionally ``heapallindexed``) when the extension is installed and
  the role may run it. It takes only an AccessShareLock, like a SELECT.
* **probe** otherwise: one ordered scan that the planner is forced to run through the index, so every
  leaf page is read. A zeroed or torn page fails with the server's own error. A probe cannot see
  missing entries (amcheck's ``heapallindexed`` can).

One index at a time, each in its own read-only transaction with a statement and a lock timeout. See
docs/db-health.md for what each status means and what to do next.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from paynb.context import Env, resolve_env
from paynb.db import amcheck_grant
from paynb.errors import InputError
from paynb.ops.dbhealth.catalog import (
    IndexInfo,
    amcheck_state,
    list_btree_indexes,
    quote_ident,
    table_names,
)

Status = Literal["ok", "corrupt", "invalid", "unchecked"]
Method = Literal["amcheck", "probe", "catalog"]
# SQLSTATE class XX: data_corrupted (XX001) and index_corrupted (XX002)
CORRUPTION_CODES = frozenset({"XX001", "XX002"})


@dataclass(frozen=True)
class IndexCheck:
    table: str
    index: str
    status: Status
    method: Method
    seconds: float
    message: str = ""
    unique: bool = False
    size_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckReport:
    checks: tuple[IndexCheck, ...]
    method: Method | Literal["mixed"]
    heapallindexed: bool
    notes: tuple[str, ...] = ()  # why the method is not the best one available, and how to get it

    @property
    def broken(self) -> list[IndexCheck]:
        return [c for c in self.checks if c.status in ("corrupt", "invalid")]

    @property
    def unchecked(self) -> list[IndexCheck]:
        return [c for c in self.checks if c.status == "unchecked"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "method": self.method,
            "heapallindexed": self.heapallindexed,
            "notes": list(self.notes),
            "counts": {
                s: sum(c.status == s for c in self.checks) for s in ("ok", "corrupt", "invalid", "unchecked")
            },
            "checks": [c.to_dict() for c in self.checks],
        }

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "table": c.table,
                    "index": c.index,
                    "status": c.status,
                    "method": c.method,
                    "seconds": f"{c.seconds:.3f}",
                    "message": c.message,
                }
                for c in self.checks
            ]
        )


def check_indexes(
    *,
    tables: Sequence[str] | None = None,
    indexes: Sequence[str] | None = None,
    heapallindexed: bool = False,
    method: Literal["auto", "amcheck", "probe"] = "auto",
    statement_timeout_ms: int = 60_000,
    lock_timeout_ms: int = 2_000,
    env: Env | None = None,
    progress: Callable[[Iterable[IndexInfo]], Iterable[IndexInfo]] | None = None,
) -> CheckReport:
    """Check every B-tree index (or those on ``tables`` / named in ``indexes``) one at a time."""
    env = resolve_env(env)
    with env.read() as conn:
        if tables:
            unknown = sorted(set(tables) - table_names(conn))
            if unknown:
                raise InputError(f"no such table in pay-db: {', '.join(unknown)}", field="--tables")
        found = list_btree_indexes(conn, tables=tables)
        amcheck = amcheck_state(conn) if method != "probe" else "missing"
        role = conn.exec_driver_sql("SELECT current_user").scalar_one()
    notes: list[str] = []
    if amcheck == "denied":
        grant = amcheck_grant(role)
        if method == "amcheck":
            raise InputError(
                f"amcheck is installed but {role} may not run bt_index_check: {grant} (as the extension's owner)",
                field="--method",
            )
        notes.append(
            f"amcheck is installed but {role} may not run it, so the probe was used; to use it: {grant}"
        )
    if method == "amcheck" and amcheck == "missing":
        raise InputError("the amcheck extension is not installed in this database", field="--method")
    use_amcheck = amcheck == "usable"
    if indexes:
        wanted = set(indexes)
        missing = sorted(wanted - {i.name for i in found})
        if missing:
            raise InputError(f"no such B-tree index: {', '.join(missing)}", field="--index")
        found = [i for i in found if i.name in wanted]
    items: Iterable[IndexInfo] = progress(found) if progress else found
    results = [
        _check_one(env, info, use_amcheck, heapallindexed, statement_timeout_ms, lock_timeout_ms)
        for info in items
    ]
    methods = {r.method for r in results if r.method != "catalog"}
    overall = methods.pop() if len(methods) == 1 else ("mixed" if methods else "catalog")
    return CheckReport(tuple(results), overall, heapallindexed, tuple(notes))


def _check_one(
    env: Env, info: IndexInfo, use_amcheck: bool, heapallindexed: bool, st_ms: int, lt_ms: int
) -> IndexCheck:
    base = {"table": info.table, "index": info.name, "unique": info.is_unique, "size_bytes": info.size_bytes}
    if not info.is_valid:
        hint = "left behind by a failed REINDEX CONCURRENTLY" if info.is_leftover else "marked invalid"
        return IndexCheck(**base, status="invalid", method="catalog", seconds=0.0, message=hint)
    method: Method = "amcheck" if use_amcheck else "probe"
    started = time.perf_counter()
    try:
        with env.engine.connect() as conn, conn.begin():
            # SET LOCAL takes no bind parameters; both values are ints we own
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(st_ms)}")
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(lt_ms)}")
            if use_amcheck:
                conn.execute(
                    sa.text(
                        "SELECT bt_index_check(index => CAST(:oid AS oid)::regclass, heapallindexed => :h)"
                    ),
                    {"oid": info.oid, "h": heapallindexed},
                )
                message = ""
            else:
                message = _probe(conn, info)
            conn.rollback()
    except sa_exc.DBAPIError as err:
        seconds = time.perf_counter() - started
        code = getattr(err.orig, "pgcode", None)
        text = _server_message(err)
        if code in CORRUPTION_CODES:
            return IndexCheck(**base, status="corrupt", method=method, seconds=seconds, message=text)
        if code == "57014":
            text = f"statement timeout after {st_ms} ms; check it off-hours with a larger --statement-timeout"
        elif code == "55P03":
            text = "could not take a lock in time (a DDL or VACUUM FULL holds the table); try again later"
        return IndexCheck(**base, status="unchecked", method=method, seconds=seconds, message=text)
    seconds = time.perf_counter() - started
    status: Status = "unchecked" if message else "ok"
    return IndexCheck(**base, status=status, method=method, seconds=seconds, message=message)


def _probe(conn: Connection, info: IndexInfo) -> str:
    """Read every leaf page of ``info`` through a forced ordered index scan. '' when it ran."""
    for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort", "enable_hashagg"):
        conn.exec_driver_sql(f"SET LOCAL {setting} = off")
    table = f"{quote_ident(conn, info.schema)}.{quote_ident(conn, info.table)}"
    keys = ", ".join(info.keys)  # catalog text from pg_get_indexdef, already quoted by the server
    where = f" WHERE {info.predicate}" if info.predicate else ""
    inner = f"SELECT {keys} FROM {table}{where} ORDER BY {keys}"  # noqa: S608 - catalog identifiers only
    plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {inner}").scalar_one()
    if info.name not in _index_names(plan):
        return "the planner would not scan this index (expression or mixed ordering); use amcheck"
    conn.exec_driver_sql(f"SELECT count(*) FROM ({inner}) AS probe")  # noqa: S608
    return ""


def _index_names(plan: Any) -> set[str]:
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "Index Name" in node:
                names.add(node["Index Name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(plan)
    return names


def _server_message(err: sa_exc.DBAPIError) -> str:
    """The server's own first line (e.g. 'index "x" contains unexpected zero page at block 3')."""
    orig = err.orig
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if primary:
        return primary
    text = str(orig or err).strip().splitlines()
    return text[0] if text else type(err).__name__
