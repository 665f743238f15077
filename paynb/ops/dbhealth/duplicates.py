"""Duplicate keys behind a unique index that cannot be rebuilt, with the rows that reference them.

The scan reads the table, never the suspect index (index scans are switched off for the transaction).
Each duplicate row gets a proposal: ``keep`` (the row most referenced, else the oldest), ``remove`` (no
other row points at it), or ``manual`` (it is referenced too: a person must merge the references first).
See docs/db-health.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paynb.canonical import to_jsonable
from paynb.db import fetch_all
from paynb.ops.dbhealth.catalog import IndexInfo, quote_ident

Proposal = Literal["keep", "remove", "manual"]


@dataclass(frozen=True)
class Reference:
    constraint: str
    table: str
    columns: tuple[str, ...]
    count: int
    #: the foreign key points at the duplicated key itself, so any one of the duplicates satisfies it
    shared: bool = False


@dataclass(frozen=True)
class DuplicateRow:
    key: dict[str, Any]  # the primary key of the row
    row: dict[str, Any]
    references: tuple[Reference, ...]
    proposal: Proposal

    @property
    def referenced(self) -> int:
        """References that only this row satisfies (a reference to the duplicated key survives on the keeper)."""
        return sum(r.count for r in self.references if not r.shared)


@dataclass(frozen=True)
class DuplicateGroup:
    index_key: dict[str, Any]  # the duplicated value of the unique key
    rows: tuple[DuplicateRow, ...] = field(default_factory=tuple)

    @property
    def needs_manual(self) -> bool:
        return any(r.proposal == "manual" for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))


def primary_key_columns(conn: Connection, schema: str, table: str) -> list[str]:
    rows = fetch_all(
        conn,
        """
        SELECT a.attname FROM pg_index x
        JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY(x.indkey)
        WHERE x.indrelid = CAST(:t AS regclass) AND x.indisprimary
        ORDER BY array_position(x.indkey::int2[], a.attnum)
        """,
        {"t": f"{schema}.{table}"},
    )
    return [r["attname"] for r in rows]


def _foreign_keys(conn: Connection, schema: str, table: str) -> list[dict[str, Any]]:
    """Foreign keys that point at ``table``: the referencing table and both column lists."""
    return fetch_all(
        conn,
        """
        SELECT c.conname, rn.nspname AS ref_schema, r.relname AS ref_table,
               ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i) AS ref_cols,
               ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                     JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i) AS cols
        FROM pg_constraint c
        JOIN pg_class r ON r.oid = c.conrelid
        JOIN pg_namespace rn ON rn.oid = r.relnamespace
        WHERE c.contype = 'f' AND c.confrelid = CAST(:t AS regclass)
        ORDER BY c.conname
        """,
        {"t": f"{schema}.{table}"},
    )


def find_duplicates(conn: Connection, info: IndexInfo, *, limit: int = 200) -> list[DuplicateGroup]:
    """Groups of rows that share the unique key of ``info`` (at most ``limit`` groups)."""
    if not info.is_unique:
        return []
    for setting in ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"):
        conn.exec_driver_sql(f"SET LOCAL {setting} = off")
    table = f"{quote_ident(conn, info.schema)}.{quote_ident(conn, info.table)}"
    keys = list(info.keys)
    pk = primary_key_columns(conn, info.schema, info.table)
    order = ", ".join(quote_ident(conn, c) for c in pk) if pk else "ctid"
    not_null = " AND ".join(f"({k}) IS NOT NULL" for k in keys)
    where = f"WHERE {not_null}" + (f" AND ({info.predicate})" if info.predicate else "")
    key_list = ", ".join(keys)
    # catalog identifiers and expressions only; the limit is an int we own
    groups_sql = (
        f"SELECT jsonb_build_array({key_list}) AS k FROM {table} {where} "  # noqa: S608
        f"GROUP BY {key_list} HAVING count(*) > 1 ORDER BY {key_list} LIMIT {int(limit)}"
    )
    found = [r["k"] for r in fetch_all(conn, groups_sql)]
    fks = _foreign_keys(conn, info.schema, info.table)
    groups: list[DuplicateGroup] = []
    for values in found:
        match = " AND ".join(f"to_jsonb({k}) = CAST(:v{i} AS jsonb)" for i, k in enumerate(keys))
        params = {f"v{i}": json.dumps(v) for i, v in enumerate(values)}
        rows = fetch_all(
            conn,
            f"SELECT to_jsonb(t) AS row FROM {table} t WHERE {match} ORDER BY {order}",  # noqa: S608
            params,
        )
        dup_rows = [_with_references(conn, r["row"], pk, fks, set(keys)) for r in rows]
        groups.append(DuplicateGroup(dict(zip(keys, values, strict=True)), _propose(dup_rows)))
    return groups


def _with_references(
    conn: Connection, row: Mapping[str, Any], pk: list[str], fks: list[dict[str, Any]], keys: set[str]
) -> DuplicateRow:
    refs: list[Reference] = []
    for fk in fks:
        values = [row.get(c) for c in fk["cols"]]
        if any(v is None for v in values):
            continue
        ref_table = f"{quote_ident(conn, fk['ref_schema'])}.{quote_ident(conn, fk['ref_table'])}"
        cond = " AND ".join(f"{quote_ident(conn, c)}::text = :p{i}" for i, c in enumerate(fk["ref_cols"]))
        count = conn.execute(
            sa.text(f"SELECT count(*) FROM {ref_table} WHERE {cond}"),  # noqa: S608
            {f"p{i}": str(v) for i, v in enumerate(values)},
        ).scalar_one()
        if count:
            shared = set(fk["cols"]) <= keys
            refs.append(Reference(fk["conname"], fk["ref_table"], tuple(fk["ref_cols"]), int(count), shared))
    key = {c: row.get(c) for c in pk} if pk else {}
    return DuplicateRow(key=key, row=dict(row), references=tuple(refs), proposal="keep")


def _propose(rows: list[DuplicateRow]) -> tuple[DuplicateRow, ...]:
    """Keep the most referenced row (ties: the first by primary key); others go unless referenced."""
    if not rows:
        return ()
    keeper = max(range(len(rows)), key=lambda i: (rows[i].referenced, -i))
    out: list[DuplicateRow] = []
    for i, r in enumerate(rows):
        if i == keeper:
            proposal: Proposal = "keep"
        elif r.referenced or not r.key:
            proposal = "manual"
        else:
            proposal = "remove"
        out.append(DuplicateRow(r.key, r.row, r.references, proposal))
    return tuple(out)
