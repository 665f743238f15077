"""A notebook's ``parameters`` cell as a typed schema, and strict conversion of the values given.

The cell holds annotated assignments, one per parameter, with an optional trailing comment as help::

    invoice_id: int = 0                    # the invoice to look at
    from_date: date = date(2026, 1, 1)
    methods: list[str] = []
    mode: Literal["summary", "detail"] = "summary"
    account_name: str = ""                 # paynb: redact   (value hidden in every copy; HMAC kept)

Supported types: ``int``, ``str``, ``bool``, ``date``, ``datetime``, ``Decimal``, ``list[int]``,
``list[str]``, ``Literal[...]`` and ``Optional[...]``/``X | None`` of those. ``float`` is refused:
amounts are money and money is ``Decimal`` (a float cannot hold 0.10 exactly). Text from the command
line or a YAML file is converted strictly: ``0042`` for a ``str`` stays ``"0042"``, a ``date`` must be a
real ``YYYY-MM-DD`` date, a ``bool`` is ``true/false/1/0``, a list is comma-separated, and for an
``Optional`` parameter the empty string means None. Names and values that look like credentials are
refused: secrets are read inside the kernel from settings, never passed in.
"""

from __future__ import annotations

import ast
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import nbformat

from paynb.errors import InputError, JobError
from paynb.jobs.patterns import iter_findings, name_looks_secret, value_looks_secret

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
REDACT_MARK = "paynb: redact"
REDACTED = "***"
_SCALARS = {"int", "str", "bool", "date", "datetime", "decimal"}
_TYPE_NAMES = {
    "int": "int",
    "str": "str",
    "bool": "bool",
    "date": "date",
    "datetime": "datetime",
    "Decimal": "decimal",
    "datetime.date": "date",
    "datetime.datetime": "datetime",
    "decimal.Decimal": "decimal",
}
_INT = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?\d+(\.\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class _NoDefault:
    def __repr__(self) -> str:
        return "<computed>"


COMPUTED = _NoDefault()


@dataclass(frozen=True)
class ParamType:
    """``kind`` is one of int/str/bool/date/datetime/decimal/list/literal."""

    kind: str
    item: ParamType | None = None
    choices: tuple[Any, ...] = ()
    optional: bool = False

    def __str__(self) -> str:
        if self.kind == "list":
            base = f"list[{self.item}]"
        elif self.kind == "literal":
            base = "Literal[" + ", ".join(repr(c) for c in self.choices) + "]"
        else:
            base = "Decimal" if self.kind == "decimal" else self.kind
        return f"{base} | None" if self.optional else base


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: ParamType
    default: Any
    default_source: str
    help: str = ""
    redact: bool = False
    line: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": str(self.type),
            "default": self.default_source,
            "help": self.help,
            "redact": self.redact,
        }


@dataclass(frozen=True)
class ParamSchema:
    notebook: str
    cell_index: int
    params: dict[str, ParamSpec] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"notebook": self.notebook, "parameters": [p.to_dict() for p in self.params.values()]}


# -- reading the schema --------------------------------------------------------------------------------
def find_parameters_cell(nb: nbformat.NotebookNode) -> int | None:
    for index, cell in enumerate(nb.cells):
        if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", []):
            return index
    return None


# CPython 3.11 before 3.11.9 can fail ast.parse in two threads at once ("AST constructor recursion depth
# mismatch", gh-106905); parallel runs in one process parse their parameters cells one at a time.
_AST_LOCK = threading.Lock()


def read_schema(
    nb: nbformat.NotebookNode, *, notebook: str = "notebook", secret_values: Iterable[str] = ()
) -> ParamSchema:
    """Parse the ``parameters`` cell. Raises JobError when the notebook itself is unfit to run."""
    index = find_parameters_cell(nb)
    if index is None:
        raise JobError(
            f"{notebook} has no cell tagged 'parameters'",
            hint="tag the first code cell `parameters` (View > Cell Toolbar > Tags) and put every "
            "parameter there as an annotated assignment, e.g. `invoice_id: int = 0`",
        )
    cell = nb.cells[index]
    where = f"{notebook}, parameters cell (cell {index})"
    if cell.cell_type != "code":
        raise JobError(f"{where} is a {cell.cell_type} cell; it must be a code cell")
    source = cell.source
    for kind in iter_findings(source, secret_values):
        raise JobError(f"{where} holds {kind}; a notebook must not carry credentials, not even as defaults")
    try:
        with _AST_LOCK:
            tree = ast.parse(source)
    except SyntaxError as exc:
        raise JobError(f"{where} line {exc.lineno}: not valid Python ({exc.msg})") from None
    lines = source.splitlines()
    params: dict[str, ParamSpec] = {}
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom | ast.Pass):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring
        if isinstance(node, ast.Assign):
            names = ", ".join(ast.unparse(t) for t in node.targets)
            raise JobError(
                f"{where} line {node.lineno}: {names} has no type annotation",
                hint=f"write it as `{names}: <type> = ...` (int, str, bool, date, datetime, Decimal, list[...])",
            )
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            raise JobError(
                f"{where} line {node.lineno}: only annotated assignments and imports belong in the "
                "parameters cell; move other code to the next cell"
            )
        spec = _read_param(node, lines, where, secret_values)
        params[spec.name] = spec
    return ParamSchema(notebook=notebook, cell_index=index, params=params)


def read_notebook_schema(path: str | Path, *, secret_values: Iterable[str] = ()) -> ParamSchema:
    path = Path(path)
    try:
        nb = nbformat.read(path, as_version=4)
    except FileNotFoundError:
        raise InputError("no such notebook", file=str(path)) from None
    except Exception as exc:
        raise InputError(f"not a readable notebook ({type(exc).__name__})", file=str(path)) from None
    return read_schema(nb, notebook=str(path), secret_values=secret_values)


def _read_param(node: ast.AnnAssign, lines: list[str], where: str, secret_values: Iterable[str]) -> ParamSpec:
    name = node.target.id  # type: ignore[union-attr]
    at = f"{where} line {node.lineno}"
    if name_looks_secret(name):
        raise JobError(
            f"{at}: parameter {name!r} looks like a credential",
            hint="secrets are never parameters: read them inside the notebook from paynb settings "
            "(the environment or a secret file)",
        )
    ptype = _parse_type(node.annotation, f"{at}: parameter {name!r}")
    if node.value is None:
        raise JobError(f"{at}: parameter {name!r} needs a safe default value")
    default_source = ast.get_source_segment("\n".join(lines), node.value) or ast.unparse(node.value)
    try:
        default = _literal(node.value)
    except ValueError:
        default = COMPUTED
    if isinstance(default, float):
        raise JobError(f"{at}: parameter {name!r} has a float default; write Decimal('…') for amounts")
    if default is not COMPUTED:
        try:
            default = convert_value(name, ptype, default)
        except InputError as err:
            raise JobError(f"{at}: the default of {name!r} does not fit its type {ptype} ({err})") from None
        for text in _strings(default):
            reason = value_looks_secret(text, secret_values)
            if reason:
                raise JobError(
                    f"{at}: the default of {name!r} looks like {reason}; a notebook must not carry it"
                )
    line = lines[node.end_lineno - 1] if node.end_lineno and node.end_lineno <= len(lines) else ""
    comment = line[node.end_col_offset or 0 :].strip()
    comment = comment[1:].strip() if comment.startswith("#") else ""
    redact = REDACT_MARK in comment
    help_text = comment.replace(REDACT_MARK, "").strip(" ;,-")
    return ParamSpec(name, ptype, default, default_source, help_text, redact, node.lineno)


def _parse_type(node: ast.expr, what: str) -> ParamType:
    text = ast.unparse(node)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return _parse_type(ast.parse(node.value, mode="eval").body, what)
        except SyntaxError:
            raise JobError(f"{what}: cannot read the annotation {text}") from None
    if text in ("float", "builtins.float"):
        raise JobError(f"{what} is a float; use Decimal (money must be exact) or int")
    if text in _TYPE_NAMES:
        return ParamType(_TYPE_NAMES[text])
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = node.left, node.right
        if _is_none(right) or _is_none(left):
            inner = _parse_type(left if _is_none(right) else right, what)
            return ParamType(inner.kind, inner.item, inner.choices, optional=True)
    if isinstance(node, ast.Subscript):
        head = ast.unparse(node.value).removeprefix("typing.")
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if head == "Optional" and len(args) == 1:
            inner = _parse_type(args[0], what)
            return ParamType(inner.kind, inner.item, inner.choices, optional=True)
        if head in ("list", "List") and len(args) == 1:
            item = _parse_type(args[0], what)
            if item.kind not in ("int", "str") or item.optional:
                raise JobError(f"{what}: only list[int] and list[str] are supported, not {text}")
            return ParamType("list", item=item)
        if head == "Literal":
            try:
                choices = tuple(_literal(a) for a in args)
            except ValueError:
                choices = ()
            if not choices or not all(isinstance(c, str | int) for c in choices):
                raise JobError(f"{what}: Literal[...] takes strings or whole numbers, not {text}")
            return ParamType("literal", choices=choices)
    raise JobError(
        f"{what} has an unsupported type {text}",
        hint="use int, str, bool, date, datetime, Decimal, list[int], list[str], Literal[...] or Optional[...]",
    )


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


_CALLABLES = {
    "date": date,
    "datetime.date": date,
    "datetime": datetime,
    "datetime.datetime": datetime,
    "Decimal": Decimal,
    "decimal.Decimal": Decimal,
}


def _literal(node: ast.expr) -> Any:
    """Evaluate a default made of literals, lists and date()/datetime()/Decimal() calls; else ValueError."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _literal(node.operand)
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Call) and not node.keywords:
        fn = _CALLABLES.get(ast.unparse(node.func))
        if fn is not None:
            args = [_literal(a) for a in node.args]
            if fn is Decimal and (len(args) != 1 or not isinstance(args[0], str | int)):
                raise ValueError("Decimal() takes one string")
            try:
                return fn(*args)
            except (TypeError, ValueError, InvalidOperation):
                raise ValueError("bad call") from None
    raise ValueError("not a literal")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


# -- converting values ---------------------------------------------------------------------------------
def convert_value(name: str, ptype: ParamType, value: Any) -> Any:
    """Convert text (CLI, YAML) strictly to ``ptype``; check an already-typed value. InputError if unfit."""
    if value is None or (isinstance(value, str) and value == "" and ptype.optional):
        if ptype.optional:
            return None
        raise InputError(f"needs a {ptype} value, got nothing", field=name)
    if ptype.kind == "list":
        assert ptype.item is not None
        if isinstance(value, str):
            items: list[Any] = [] if not value.strip() else [v.strip() for v in value.split(",")]
        elif isinstance(value, list | tuple):
            items = list(value)
        else:
            raise InputError(
                f"needs a list of {ptype.item} (comma-separated on the command line)", field=name
            )
        return [convert_value(name, ptype.item, v) for v in items]
    if ptype.kind == "literal":
        for choice in ptype.choices:
            if value == choice or (
                isinstance(value, str) and not isinstance(choice, str) and value == str(choice)
            ):
                return choice
        allowed = ", ".join(repr(c) for c in ptype.choices)
        raise InputError(f"must be one of {allowed}", field=name)
    return _convert_scalar(name, ptype.kind, value)


def _convert_scalar(name: str, kind: str, value: Any) -> Any:
    if isinstance(value, float):
        raise InputError(
            "floats are not accepted; pass the number as text (amounts become Decimal)", field=name
        )
    if kind == "str":
        if not isinstance(value, str):
            raise InputError(f"needs text, got a {type(value).__name__} (quote it in YAML)", field=name)
        return value
    if isinstance(value, str):
        return _from_text(name, kind, value)
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "date": type(value) is date,
        "datetime": isinstance(value, datetime),
        "decimal": isinstance(value, Decimal) or (isinstance(value, int) and not isinstance(value, bool)),
    }[kind]
    if not ok:
        raise InputError(f"needs a {_label(kind)}, got a {type(value).__name__}", field=name)
    if kind == "decimal":
        value = Decimal(value)
        if not value.is_finite():
            raise InputError("needs a finite amount", field=name)
    return value


def _from_text(name: str, kind: str, text: str) -> Any:
    raw = text.strip()
    if kind == "int":
        if not _INT.fullmatch(raw):
            raise InputError(f"needs a whole number, got {_shown(text)}", field=name)
        return int(raw)
    if kind == "bool":
        lowered = raw.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise InputError(f"needs true, false, 1 or 0, got {_shown(text)}", field=name)
    if kind == "decimal":
        if not _DECIMAL.fullmatch(raw):
            raise InputError(f"needs an amount like 12.50, got {_shown(text)}", field=name)
        return Decimal(raw)
    if kind == "date":
        if not _DATE.fullmatch(raw):
            raise InputError(f"needs a date as YYYY-MM-DD, got {_shown(text)}", field=name)
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise InputError(f"{raw} is not a real date", field=name) from None
    if kind == "datetime":
        if not _DATE.match(raw) or len(raw) < 16:
            raise InputError(
                f"needs a date and time as YYYY-MM-DDTHH:MM[:SS], got {_shown(text)}", field=name
            )
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            raise InputError(f"{raw} is not a real date and time", field=name) from None
    raise AssertionError(kind)


def _label(kind: str) -> str:
    return {"int": "whole number", "bool": "true/false", "decimal": "Decimal amount"}.get(kind, kind)


def _shown(text: str) -> str:
    # echo short values only: a long one might be something that should not be in a message
    return repr(text) if len(text) <= 40 else f"{len(text)} characters of text"


def resolve_parameters(
    schema: ParamSchema, given: Mapping[str, Any], *, secret_values: Iterable[str] = ()
) -> dict[str, Any]:
    """The given values, converted and checked; every unknown name or unfit value raises InputError."""
    secret_values = list(secret_values)
    out: dict[str, Any] = {}
    for name, raw in given.items():
        if name_looks_secret(name):
            raise InputError(
                "looks like a credential; secrets are read inside the notebook from settings, never passed in",
                field=name,
            )
        spec = schema.params.get(name)
        if spec is None:
            known = ", ".join(schema.params) or "(none)"
            raise InputError(f"{schema.notebook} has no such parameter; it has: {known}", field=name)
        value = convert_value(name, spec.type, raw)
        for text in _strings(value):
            reason = value_looks_secret(text, secret_values)
            if reason:
                raise InputError(
                    f"the value looks like {reason}; secrets are read inside the notebook, never passed in",
                    field=name,
                )
        out[name] = value
    return out


def load_params_file(path: str | Path) -> dict[str, Any]:
    """A YAML mapping of parameters. Every scalar stays text (``0042`` stays ``"0042"``, dates are not
    guessed) so the notebook's declared types decide; lists stay lists."""
    import yaml

    path = Path(path)
    try:
        data = yaml.load(path.read_text("utf-8"), Loader=yaml.BaseLoader)  # BaseLoader: only str/list/dict
    except FileNotFoundError:
        raise InputError("no such parameters file", file=str(path)) from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise InputError("not valid YAML", file=str(path), line=None if line is None else line + 1) from None
    if data in (None, ""):
        return {}
    if not isinstance(data, dict):
        raise InputError("must be a mapping of parameter names to values", file=str(path))
    for key, value in data.items():
        if isinstance(value, dict):
            raise InputError("nested mappings are not parameters", file=str(path), field=str(key))
    return {str(k): v for k, v in data.items()}


# -- rendering values into the notebook ----------------------------------------------------------------
def render_value(value: Any) -> str:
    """Python source for ``value``; dates and amounts via private module aliases."""
    if isinstance(value, datetime):
        return f"_paynb_dt.datetime.fromisoformat({value.isoformat()!r})"
    if isinstance(value, date):
        return f"_paynb_dt.date({value.year}, {value.month}, {value.day})"
    if isinstance(value, Decimal):
        return f"_paynb_decimal.Decimal({str(value)!r})"
    if isinstance(value, list):
        return "[" + ", ".join(render_value(v) for v in value) + "]"
    if value is None or isinstance(value, bool | int | str):
        return repr(value)
    raise TypeError(f"cannot render a {type(value).__name__} parameter")


def render_parameters_source(values: Mapping[str, Any], *, header: str) -> str:
    body = [f"{name} = {render_value(value)}" for name, value in values.items()]
    text = "\n".join(body)
    imports = []
    if "_paynb_dt." in text:
        imports.append("_paynb_dt")
    if "_paynb_decimal." in text:
        imports.append("_paynb_decimal")
    lines = [f"# {header}"]
    lines += ["import datetime as _paynb_dt"] if "_paynb_dt" in imports else []
    lines += ["import decimal as _paynb_decimal"] if "_paynb_decimal" in imports else []
    lines += body
    if imports:
        lines.append("del " + ", ".join(imports))
    return "\n".join(lines) + "\n"


def redacted_values(schema: ParamSchema, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values as they may be shown: parameters marked ``# paynb: redact`` become ``***``."""
    return {k: (REDACTED if schema.params[k].redact else v) for k, v in values.items()}
