"""``paynb db lint-migrations PATH``: check alembic migration files before they reach pay-db.

paynb's own rules (from the operators' FAQ; see docs/db-health.md):

* ``PAYNB001`` DDL or a data change on a large table with no ``statement_timeout`` set before it in the
  same ``upgrade()``/``downgrade()``. Large: the tables the FAQ names, plus any table whose row estimate
  in pay-db is at least ``--threshold-rows`` when a database is configured.
* ``PAYNB002`` structure and data changes in one migration: do them in two.

The unsafe-operation rules of a well-kept linter come from squawk (``squawk-cli``), run on the SQL that
alembic renders offline for each migration (what ``alembic upgrade --sql`` prints). Each finding names
the migration file and line; squawk findings are mapped back to the ``op.*`` call that emitted the SQL.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from paynb.errors import InputError, PaynbError

# Tables the FAQ calls large, and their neighbours of the same size class in pay-db.
LARGE_TABLES = frozenset(
    {
        "invoices",
        "invoice_references",
        "payment_line_items",
        "payments",
        "receipts",
        "statements",
        "statement_invoices",
        "refunds_partial",
        "credits",
        "cfs_accounts",
        "payment_accounts",
        "ejv_links",
        "partner_disbursements",
    }
)
DDL_OPS = frozenset(
    {
        "add_column",
        "drop_column",
        "alter_column",
        "create_table",
        "drop_table",
        "rename_table",
        "create_index",
        "drop_index",
        "create_foreign_key",
        "create_unique_constraint",
        "create_check_constraint",
        "create_primary_key",
        "drop_constraint",
        "batch_alter_table",
        "create_exclude_constraint",
    }
)
DATA_OPS = frozenset({"bulk_insert"})
# which positional argument of an op.* call names the table (0 unless listed; None: none does)
_TABLE_ARG: dict[str, int | None] = {
    "create_index": 1,
    "drop_index": None,
    "create_foreign_key": 1,
    "create_unique_constraint": 1,
    "create_check_constraint": 1,
    "create_primary_key": 1,
    "drop_constraint": 1,
}
_TIMEOUT = re.compile(r"\bset\s+(local\s+)?statement_timeout\b", re.I)
_SQL_DDL = re.compile(r"^\s*(alter|create|drop|truncate)\b", re.I)
_SQL_DATA = re.compile(r"^\s*(update|insert|delete)\b", re.I)
_SQL_TABLE = re.compile(
    r"\b(?:alter\s+table(?:\s+only)?(?:\s+if\s+exists)?|update|insert\s+into|delete\s+from|truncate(?:\s+table)?"
    r"|create\s+(?:unique\s+)?index(?:\s+concurrently)?(?:\s+if\s+not\s+exists)?\s+\S+\s+on(?:\s+only)?)\s+"
    r"([\w\".]+)",
    re.I,
)
# squawk's type-preference rules are style, not safety; pay-db's existing types are a given
SQUAWK_EXCLUDED = (
    # type preferences are style, not safety, and pay-db's existing types are a given
    "prefer-bigint-over-int",
    "prefer-bigint-over-smallint",
    "prefer-identity",
    "prefer-text-field",
    "prefer-timestamptz",
    "ban-char-field",
    # alembic runs each migration in a transaction, so a half-applied file cannot be re-run anyway
    "prefer-robust-stmts",
    # the FAQ's rule is a statement_timeout; PAYNB001 checks it with pay-db's notion of a large table
    "require-statement-timeout",
    "require-lock-timeout",
)


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    rule: str
    message: str
    source: str = "paynb"  # or "squawk"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LintReport:
    files: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    squawk: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "files": self.files,
            "squawk": self.squawk,
            "findings": [f.to_dict() for f in self.findings],
            "notes": self.notes,
        }

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [{"where": f"{f.file}:{f.line}", "rule": f.rule, "message": f.message} for f in self.findings]
        )


@dataclass(frozen=True)
class _OpCall:
    name: str
    line: int
    tables: tuple[str, ...]
    kind: str  # "ddl", "data", "timeout" or "other"


def lint_migrations(
    paths: Sequence[str | Path],
    *,
    large_tables: Iterable[str] = LARGE_TABLES,
    use_squawk: bool = True,
) -> LintReport:
    """Lint every ``*.py`` migration under ``paths`` (files or folders)."""
    files = _collect(paths)
    report = LintReport(files=[str(f) for f in files])
    large = {t.lower() for t in large_tables}
    for path in files:
        try:
            tree = ast.parse(path.read_text(), filename=str(path))
        except SyntaxError as err:
            raise InputError(f"not valid Python ({err.msg})", file=str(path), line=err.lineno) from None
        report.findings.extend(_lint_tree(path, tree, large))
    if use_squawk:
        binary = squawk_binary()
        if binary is None:
            report.notes.append("squawk is not installed (pip install squawk-cli); its rules were not run")
        else:
            report.squawk = True
            for path in files:
                report.findings.extend(_squawk_file(binary, path, report.notes))
    report.findings.sort(key=lambda f: (f.file, f.line, f.rule))
    return report


def _collect(paths: Sequence[str | Path]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*.py") if q.name != "__init__.py"))
        elif p.is_file():
            found.append(p)
        else:
            raise InputError("no such file or folder", file=str(p))
    if not found:
        raise InputError("no migration files (*.py) found", file=", ".join(str(p) for p in paths))
    return found


def _lint_tree(path: Path, tree: ast.Module, large: set[str]) -> list[Finding]:
    findings: list[Finding] = []
    kinds: dict[str, set[str]] = {}
    for func in tree.body:
        if not isinstance(func, ast.FunctionDef) or func.name not in ("upgrade", "downgrade"):
            continue
        calls = _op_calls(func)
        kinds[func.name] = {c.kind for c in calls}
        timeout_set = False
        for call in calls:
            if call.kind == "timeout":
                timeout_set = True
                continue
            hit = sorted(t for t in call.tables if t in large)
            if call.kind in ("ddl", "data") and hit and not timeout_set:
                findings.append(
                    Finding(
                        str(path),
                        call.line,
                        "PAYNB001",
                        f"{func.name}(): op.{call.name} on large table {', '.join(hit)} without a statement_timeout; "
                        'put op.execute("set statement_timeout=20000;") first',
                    )
                )
    up = kinds.get("upgrade", set())
    if {"ddl", "data"} <= up:
        line = next(
            (f.lineno for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "upgrade"), 1
        )
        findings.append(
            Finding(
                str(path),
                line,
                "PAYNB002",
                "upgrade() changes structure and data in one migration; split it into a structure migration "
                "and a data migration",
            )
        )
    return findings


def _op_calls(func: ast.FunctionDef) -> list[_OpCall]:
    calls: list[_OpCall] = []
    for node in ast.walk(func):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        target = node.func.value
        name = node.func.attr
        if isinstance(target, ast.Name) and target.id == "op":
            calls.append(_classify_op(name, node))
        elif name == "execute" and node.args:
            # conn.execute(text("UPDATE …")) through op.get_bind(): a data change too
            sql = _string_arg(node.args[0])
            if sql and _SQL_DATA.match(sql):
                calls.append(_OpCall("execute", node.lineno, _sql_tables(sql), "data"))
    return sorted(calls, key=lambda c: c.line)


def _classify_op(name: str, node: ast.Call) -> _OpCall:
    if name == "execute":
        sql = _string_arg(node.args[0]) if node.args else None
        if sql is None:
            return _OpCall(name, node.lineno, (), "other")
        if _TIMEOUT.search(sql):
            return _OpCall(name, node.lineno, (), "timeout")
        kind = "ddl" if _SQL_DDL.match(sql) else "data" if _SQL_DATA.match(sql) else "other"
        return _OpCall(name, node.lineno, _sql_tables(sql), kind)
    kind = "ddl" if name in DDL_OPS else "data" if name in DATA_OPS else "other"
    return _OpCall(name, node.lineno, _op_tables(name, node), kind)


def _op_tables(name: str, node: ast.Call) -> tuple[str, ...]:
    keywords = {k.arg: k.value for k in node.keywords if k.arg}
    wanted: list[ast.AST] = []
    for key in ("table_name", "source_table", "source"):
        if key in keywords:
            wanted.append(keywords[key])
    pos = _TABLE_ARG.get(name, 0)
    if pos is not None and len(node.args) > pos:
        wanted.append(node.args[pos])
    if name == "bulk_insert" and node.args:
        wanted.append(node.args[0])
    tables = []
    for value in wanted:
        text = _string_arg(value)
        if text is None and isinstance(value, ast.Name):
            text = value.id
        if text:
            tables.append(text.lower())
    return tuple(tables)


def _string_arg(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call) and node.args:  # text("…") / sa.text("…")
        return _string_arg(node.args[0])
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
        )
    return None


def _sql_tables(sql: str) -> tuple[str, ...]:
    return tuple(m.group(1).strip('"').split(".")[-1].strip('"').lower() for m in _SQL_TABLE.finditer(sql))


def large_tables_from_db(threshold_rows: int) -> set[str]:
    """Tables whose row estimate in the configured pay-db is at least ``threshold_rows``."""
    from paynb.context import resolve_env
    from paynb.db import fetch_all

    with resolve_env().read() as conn:
        rows = fetch_all(
            conn,
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.reltuples >= :t",
            {"t": threshold_rows},
        )
    return {r["relname"].lower() for r in rows}


# -- squawk ------------------------------------------------------------------------------------------------
def squawk_binary() -> str | None:
    found = shutil.which("squawk")
    if found:
        return found
    candidate = Path(sys.executable).parent / "squawk"
    return str(candidate) if candidate.exists() else None


def render_sql(path: Path) -> tuple[str, list[tuple[int, int, int]]]:
    """The SQL alembic renders offline for ``upgrade()`` of one migration, and for each op call the
    (first SQL line, last SQL line, migration line) it produced."""
    try:
        from alembic.operations import Operations
        from alembic.runtime.migration import MigrationContext
    except ImportError:
        raise PaynbError("alembic is not installed", hint="pip install 'paynb[migrations]'") from None
    buffer = io.StringIO()
    context = MigrationContext.configure(
        dialect_name="postgresql", opts={"as_sql": True, "output_buffer": buffer, "literal_binds": True}
    )
    spec = importlib.util.spec_from_file_location(f"_paynb_migration_{abs(hash(path))}", path)
    if spec is None or spec.loader is None:
        raise PaynbError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    spans: list[tuple[int, int, int]] = []
    filename = str(path.resolve())
    state = {"pos": 0, "line": 0}

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != filename:
            return None
        if event in ("line", "return"):
            _note(buffer, state, spans)
            state["line"] = frame.f_lineno
        return tracer

    with Operations.context(context):
        sys.settrace(tracer)
        try:
            module.upgrade()
        finally:
            sys.settrace(None)
    _note(buffer, state, spans)
    return buffer.getvalue(), spans


def _note(buffer: io.StringIO, state: dict[str, int], spans: list[tuple[int, int, int]]) -> None:
    text = buffer.getvalue()
    if len(text) > state["pos"]:
        first = text.count("\n", 0, state["pos"]) + 1
        last = text.count("\n", 0, len(text))
        spans.append((first, max(first, last), state["line"]))
        state["pos"] = len(text)


def _squawk_file(binary: str, path: Path, notes: list[str]) -> list[Finding]:
    try:
        sql, spans = render_sql(path)
    except Exception as err:  # a migration that imports its app's models cannot render here
        notes.append(
            f"{path}: squawk skipped, the migration could not be rendered offline ({type(err).__name__}: {err})"
        )
        return []
    if not sql.strip():
        return []
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as fh:
        fh.write(sql)
        sql_path = fh.name
    try:
        proc = subprocess.run(
            [
                binary,
                "--reporter",
                "json",
                "--assume-in-transaction",
                f"--exclude={','.join(SQUAWK_EXCLUDED)}",
                sql_path,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        Path(sql_path).unlink(missing_ok=True)
    try:
        items = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        notes.append(f"{path}: squawk gave no JSON ({(proc.stderr or proc.stdout).strip()[:200]})")
        return []
    findings = []
    for item in items:
        sql_line = int(item.get("line", 0)) + 1
        line = next((m for first, last, m in spans if first <= sql_line <= last), 1)
        rule = item.get("rule_name") or item.get("rule") or "squawk"
        message = item.get("message", "")
        helps = item.get("help") or ""
        findings.append(Finding(str(path), line, rule, f"{message} {helps}".strip(), source="squawk"))
    return findings
