"""What pay-db's catalog says about its B-tree indexes: names, tables, key columns, validity, size.

Read-only queries on ``pg_index``/``pg_class``; no table data is read here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paynb.db import amcheck_state, fetch_all

# A concurrent REINDEX that failed leaves an invalid copy named <index>_ccnew (or _ccold); see
# docs/db-health.md.
LEFTOVER_SUFFIXES = ("_ccnew", "_ccold")


@dataclass(frozen=True)
class IndexInfo:
    schema: str
    table: str
    name: str
    oid: int
    is_unique: bool
    is_primary: bool
    is_valid: bool
    keys: tuple[str, ...]  # key columns or expressions, as pg_get_indexdef prints them
    predicate: str | None  # a partial index's WHERE clause
    definition: str
    size_bytes: int

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def is_leftover(self) -> bool:
        return not self.is_valid and any(s in self.name for s in LEFTOVER_SUFFIXES)


_INDEXES = sa.text(
    """
    SELECT n.nspname AS schema, t.relname AS "table", i.relname AS name, i.oid::bigint AS oid,
           x.indisunique AS is_unique, x.indisprimary AS is_primary, x.indisvalid AS is_valid,
           x.indnkeyatts AS nkeys, pg_get_expr(x.indpred, x.indrelid) AS predicate,
           pg_get_indexdef(x.indexrelid) AS definition, pg_relation_size(i.oid) AS size_bytes,
           ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true) FROM generate_series(1, x.indnkeyatts) k)
             AS keys
    FROM pg_index x
    JOIN pg_class i ON i.oid = x.indexrelid
    JOIN pg_class t ON t.oid = x.indrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    JOIN pg_am am ON am.oid = i.relam
    WHERE am.amname = 'btree' AND n.nspname = :schema
      AND (CAST(:tables AS text[]) IS NULL OR t.relname = ANY(CAST(:tables AS text[])))
    ORDER BY t.relname, i.relname
    """
)


def list_btree_indexes(
    conn: Connection, *, tables: Sequence[str] | None = None, schema: str = "public"
) -> list[IndexInfo]:
    """Every B-tree index of ``schema`` (optionally only on ``tables``), in table then index order."""
    rows = fetch_all(conn, _INDEXES, {"schema": schema, "tables": list(tables) if tables else None})
    return [
        IndexInfo(
            schema=r["schema"],
            table=r["table"],
            name=r["name"],
            oid=int(r["oid"]),
            is_unique=r["is_unique"],
            is_primary=r["is_primary"],
            is_valid=r["is_valid"],
            keys=tuple(r["keys"]),
            predicate=r["predicate"],
            definition=r["definition"],
            size_bytes=int(r["size_bytes"]),
        )
        for r in rows
    ]


def find_index(conn: Connection, name: str, schema: str = "public") -> IndexInfo | None:
    for info in list_btree_indexes(conn, schema=schema):
        if info.name == name:
            return info
    return None


def table_names(conn: Connection, schema: str = "public") -> set[str]:
    rows = fetch_all(
        conn,
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :s AND c.relkind IN ('r', 'p')",
        {"s": schema},
    )
    return {r["relname"] for r in rows}


def amcheck_available(conn: Connection) -> bool:
    """True when the amcheck extension is installed in this database (whoever may run it)."""
    return amcheck_state(conn) != "missing"


def quote_ident(conn: Connection, name: str) -> str:
    """An identifier quoted by the server itself (names come from the catalog, never from users)."""
    return conn.execute(sa.text("SELECT quote_ident(:n)"), {"n": name}).scalar_one()
