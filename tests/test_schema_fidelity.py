"""The sandbox schema against the real pay-db `\\d` output (alembic 968a2e428d4c).

For every public sandbox table that the reference describes: same columns, types, nullability,
defaults, indexes, foreign keys and check constraints. Code tables hold exactly the seeded rows and
the enums in paynb.enums equal them.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb import enums
from paynb.sandbox.schema import code_table_files, read_code_table

REFERENCE = Path(__file__).parent / "fixtures/sbc-pay/schema/psql_describe_key_tables_968a2e428d4c.txt"

REQUIRED_TABLES = {
    "invoices",
    "invoice_references",
    "payment_line_items",
    "payment_accounts",
    "cfs_accounts",
    "payments",
    "receipts",
    "refunds",
    "refunds_partial",
    "credits",
    "applied_credits",
    "statements",
    "statement_invoices",
    "statement_settings",
    "statement_recipients",
    "cas_settlements",
    "ejv_files",
    "ejv_headers",
    "ejv_links",
    "distribution_codes",
    "distribution_code_links",
    "fee_schedules",
    "corp_types",
    "routing_slips",
    "partner_disbursements",
    "non_sufficient_funds",
    "eft_refunds",
    "alembic_version",
}


@dataclass
class RefTable:
    name: str
    columns: dict[str, tuple[str, bool, str]] = field(default_factory=dict)  # type, not null, default
    indexes: dict[str, str] = field(default_factory=dict)  # name -> "PRIMARY KEY (id)" style key
    fks: dict[str, str] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)


def _index_key(kind: str, cols: str) -> str:
    return f"{kind} ({cols.replace(' ', '')})"


def parse_reference(path: Path = REFERENCE) -> dict[str, RefTable]:
    tables: dict[str, RefTable] = {}
    cur: RefTable | None = None
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.rstrip()
        if m := re.match(r"^=+ (\w+)$", line):
            cur = tables.setdefault(m.group(1), RefTable(m.group(1)))
            section = "head"
            continue
        if cur is None or not line.strip():
            continue
        stripped = line.strip()
        if section == "head" and set(stripped) <= set("-+"):
            section = "columns"
            continue
        if stripped.endswith(":") and not line.startswith("     "):
            section = stripped[:-1]
            continue
        if section == "columns":
            parts = [p.strip() for p in line.split("|")]
            name, typ, _coll, nullable, default = parts[:5]
            cur.columns[name] = (typ, nullable == "not null", default)
        elif section == "Indexes":
            m = re.match(r'^"(\w+)" (PRIMARY KEY, |UNIQUE CONSTRAINT, |UNIQUE, )?btree \((.+)\)$', stripped)
            assert m, f"unparsed index line {stripped!r}"
            kind = {"PRIMARY KEY, ": "PRIMARY", "UNIQUE CONSTRAINT, ": "UNIQUE", "UNIQUE, ": "UNIQUE"}.get(
                m.group(2) or "", "INDEX"
            )
            cur.indexes[m.group(1)] = _index_key(kind, m.group(3))
        elif section == "Foreign-key constraints":
            m = re.match(r'^"(\w+)" (FOREIGN KEY .+)$', stripped)
            assert m, stripped
            cur.fks[m.group(1)] = m.group(2)
        elif section == "Check constraints":
            m = re.match(r'^"(\w+)" (CHECK .+)$', stripped)
            assert m, stripped
            cur.checks[m.group(1)] = m.group(2)
    return tables


REF = parse_reference()


@pytest.fixture(scope="module")
def db(pg_server, _empty_template) -> sa.Engine:
    # read-only inspection of the empty template; no test here writes
    eng = sa.create_engine(pg_server.url(_empty_template), poolclass=NullPool)
    yield eng
    eng.dispose()


def _public_tables(conn: sa.Connection) -> set[str]:
    rows = conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
    return {r[0] for r in rows}


def _columns(conn: sa.Connection, table: str) -> dict[str, tuple[str, bool, str]]:
    rows = conn.execute(
        sa.text(
            """SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                      coalesce(pg_get_expr(d.adbin, d.adrelid), '')
               FROM pg_attribute a
               LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
               WHERE a.attrelid = CAST(:t AS regclass) AND a.attnum > 0 AND NOT a.attisdropped"""
        ),
        {"t": f"public.{table}"},
    )
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _indexes(conn: sa.Connection, table: str) -> dict[str, str]:
    rows = conn.execute(
        sa.text(
            """SELECT c.relname, i.indisprimary, i.indisunique, pg_get_indexdef(i.indexrelid)
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               WHERE i.indrelid = CAST(:t AS regclass)"""
        ),
        {"t": f"public.{table}"},
    )
    out = {}
    for name, primary, unique, definition in rows:
        cols = re.search(r"USING btree \((.+)\)$", definition).group(1)
        out[name] = _index_key("PRIMARY" if primary else "UNIQUE" if unique else "INDEX", cols)
    return out


def _constraints(conn: sa.Connection, table: str, kind: str) -> dict[str, str]:
    rows = conn.execute(
        sa.text(
            """SELECT conname, pg_get_constraintdef(oid, true) FROM pg_constraint
               WHERE conrelid = CAST(:t AS regclass) AND contype = :k"""
        ),
        {"t": f"public.{table}", "k": kind},
    )
    return dict(rows.all())


def test_reference_parses() -> None:
    assert len(REF) == 39
    assert REF["invoices"].columns["gst"] == ("numeric(19,2)", True, "'0'::numeric")
    assert REF["ejv_links"].indexes["ejv_invoice_links_pkey"] == "PRIMARY (id)"
    assert "routing_slip_invoice_id_check" in REF["refunds"].checks


def test_required_tables_exist(db: sa.Engine) -> None:
    with db.connect() as conn:
        tables = _public_tables(conn)
    assert REQUIRED_TABLES <= tables, REQUIRED_TABLES - tables
    # every FK target of the required tables is there too
    for t in REQUIRED_TABLES:
        for fk in REF[t].fks.values():
            target = re.search(r"REFERENCES (\w+)\(", fk).group(1)
            assert target in tables, f"{t} references {target}, which the sandbox lacks"


def test_sandbox_bookkeeping_is_not_public(db: sa.Engine) -> None:
    with db.connect() as conn:
        tables = _public_tables(conn)
        sandbox = set(
            conn.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'paynb_sandbox'")
            ).scalars()
        )
    assert {"scenarios", "cfs_invoices", "store_objects", "meta"} <= sandbox
    assert not tables & sandbox


def test_tables_match_reference(db: sa.Engine) -> None:
    problems: list[str] = []
    with db.connect() as conn:
        tables = _public_tables(conn)
        described = sorted(tables & REF.keys())
        assert REQUIRED_TABLES <= set(described)
        for t in described:
            ref = REF[t]
            cols = _columns(conn, t)
            if set(cols) != set(ref.columns):
                problems.append(
                    f"{t}: missing columns {sorted(set(ref.columns) - set(cols))}, "
                    f"extra columns {sorted(set(cols) - set(ref.columns))}"
                )
            for name in set(cols) & set(ref.columns):
                if cols[name] != ref.columns[name]:
                    problems.append(f"{t}.{name}: sandbox {cols[name]} != real {ref.columns[name]}")
            idx = _indexes(conn, t)
            if idx != ref.indexes:
                problems.append(f"{t}: indexes differ: sandbox {idx} real {ref.indexes}")
            fks = _constraints(conn, t, "f")
            ref_fks = {
                n: d for n, d in ref.fks.items() if re.search(r"REFERENCES (\w+)\(", d).group(1) in tables
            }
            if fks != ref_fks:
                problems.append(f"{t}: foreign keys differ: sandbox {fks} real {ref_fks}")
            checks = _constraints(conn, t, "c")
            if checks != ref.checks:
                problems.append(f"{t}: check constraints differ: sandbox {checks} real {ref.checks}")
    assert not problems, "\n".join(problems)


def _dump(conn: sa.Connection, table: str, columns: list[str]) -> list[list[str]]:
    buf = io.StringIO()
    cols = ", ".join(f'"{c}"' for c in columns)
    cur = conn.connection.cursor()
    cur.copy_expert(f'COPY (SELECT {cols} FROM "{table}") TO STDOUT WITH (FORMAT csv)', buf)
    cur.close()
    return sorted(csv.reader(io.StringIO(buf.getvalue())))


def test_code_tables_hold_the_seeded_rows(db: sa.Engine) -> None:
    files = code_table_files()
    assert {"invoice_status_codes", "payment_methods", "corp_types", "alembic_version"} <= files.keys()
    with db.connect() as conn:
        for table, path in files.items():
            header, rows = read_code_table(path)
            assert _dump(conn, table, header) == sorted(rows), table
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "968a2e428d4c"


ENUM_TABLES: list[tuple[type[StrEnum], str]] = [
    (enums.InvoiceStatus, "invoice_status_codes"),
    (enums.PaymentMethod, "payment_methods"),
    (enums.DisbursementStatus, "disbursement_status_codes"),
    (enums.CfsAccountStatus, "cfs_account_status_codes"),
    (enums.InvoiceReferenceStatus, "invoice_reference_status_codes"),
    (enums.RoutingSlipStatus, "routing_slip_status_codes"),
    (enums.PaymentStatus, "payment_status_codes"),
    (enums.PaymentSystem, "payment_systems"),
    (enums.LineItemStatus, "line_item_status_codes"),
    (enums.NotificationStatus, "notification_status_codes"),
]


@pytest.mark.parametrize(("enum_cls", "table"), ENUM_TABLES, ids=[t for _, t in ENUM_TABLES])
def test_enums_equal_code_tables(db: sa.Engine, enum_cls: type[StrEnum], table: str) -> None:
    with db.connect() as conn:
        codes = set(conn.execute(sa.text(f'SELECT code FROM "{table}"')).scalars())
    assert {m.value for m in enum_cls} == codes
