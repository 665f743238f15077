"""Create the sandbox pay-db schema and load the code tables.

The DDL (``schema.sql``) is a faithful subset of sbc-pay's migrated database; the code-table rows
come verbatim from ``code_tables/*.csv`` (the rows sbc-pay's migrations seed).
"""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

from sqlalchemy.engine import Connection

SANDBOX_SCHEMA = "paynb_sandbox"
CODE_TABLES_DIR = Path(__file__).with_name("code_tables")


def schema_sql() -> str:
    return resources.files("paynb.sandbox").joinpath("schema.sql").read_text(encoding="utf-8")


def code_table_files() -> dict[str, Path]:
    """Table name -> CSV file, for every code table shipped with the sandbox."""
    return {p.stem: p for p in sorted(CODE_TABLES_DIR.glob("*.csv"))}


def read_code_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a code-table CSV, as text ('' = NULL)."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, [row for row in reader if row]


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def load_code_tables(conn: Connection) -> dict[str, int]:
    """COPY every code-table CSV into its table; returns rows loaded per table."""
    counts: dict[str, int] = {}
    cursor = conn.connection.cursor()
    try:
        for table, path in code_table_files().items():
            header, rows = read_code_table(path)
            cols = ", ".join(_quote_ident(c) for c in header)
            # names come from the shipped CSV files, not from input
            sql = f"COPY {_quote_ident(table)} ({cols}) FROM STDIN WITH (FORMAT csv, HEADER true)"
            with path.open(encoding="utf-8") as fh:
                cursor.copy_expert(sql, fh)
            counts[table] = len(rows)
    finally:
        cursor.close()
    return counts


def apply_schema(conn: Connection) -> dict[str, int]:
    """Run the DDL and load the code tables, inside the caller's write transaction."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(schema_sql())
    finally:
        cursor.close()
    return load_code_tables(conn)
