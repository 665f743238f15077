"""``paynb.jobs.record(...)``: the one call a notebook makes to report its results to the run record.

It emits a display output with the MIME type ``application/vnd.paynb.record+json`` (plus a short
``text/plain`` line for people). The output is part of the executed notebook, so the report is in the
evidence itself and survives a later failing cell or a dead kernel; ``paynb run`` reads every such
output after execution, in order, and merges them (a later call wins per field; extra fields merge).
Run interactively, the call just shows the line. Imports stay light: this module loads in every kernel.

Example (in a notebook cell)::

    import paynb.jobs
    paynb.jobs.record(rows_affected=len(plan.rows), plan_sha256=plan.sha256, dry_run=dry_run,
                      summary=df.groupby("method").size().to_frame("count"))
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from paynb.errors import InputError

MIMETYPE = "application/vnd.paynb.record+json"
FIELDS = ("rows_affected", "plan_sha256", "dry_run", "idempotency_key", "summary")
MAX_SUMMARY_ROWS = 200
_SHA256 = re.compile(r"[0-9a-f]{64}")
_EXTRA_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


def record(
    rows_affected: int | None = None,
    plan_sha256: str | None = None,
    dry_run: bool | None = None,
    idempotency_key: str | None = None,
    summary: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    """Report this run's results; returns the payload that lands in the run record.

    Parameters
    ----------
    rows_affected : rows the run changed (or would change, on a dry run)
    plan_sha256 : the sha256 of the plan it reviewed or applied
    dry_run : whether nothing was changed
    idempotency_key : the key the apply was recorded under
    summary : a small DataFrame (first 200 rows kept) or a dict
    **extra : more named facts (names in snake_case; JSON-able values, Decimal kept exact)
    """
    payload = build_report(
        rows_affected=rows_affected,
        plan_sha256=plan_sha256,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
        summary=summary,
        **extra,
    )
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python: the return value is the report
        return payload
    if get_ipython() is None:
        return payload
    display({MIMETYPE: payload, "text/plain": describe(payload)}, raw=True)
    return payload


def build_report(**values: Any) -> dict[str, Any]:
    """Check and convert the values (see :func:`record`); InputError names the field at fault."""
    out: dict[str, Any] = {}
    rows = values.pop("rows_affected", None)
    if rows is not None:
        rows = _plain(rows)
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
            raise InputError("must be a whole number, 0 or more", field="rows_affected")
        out["rows_affected"] = rows
    plan = values.pop("plan_sha256", None)
    if plan is not None:
        if not isinstance(plan, str) or not _SHA256.fullmatch(plan):
            raise InputError("must be a sha256 as 64 lowercase hex digits", field="plan_sha256")
        out["plan_sha256"] = plan
    dry = values.pop("dry_run", None)
    if dry is not None:
        if not isinstance(dry, bool):
            raise InputError("must be True or False", field="dry_run")
        out["dry_run"] = dry
    key = values.pop("idempotency_key", None)
    if key is not None:
        if not isinstance(key, str) or not 0 < len(key) <= 200:
            raise InputError("must be text of 1 to 200 characters", field="idempotency_key")
        out["idempotency_key"] = key
    summary = values.pop("summary", None)
    if summary is not None:
        out["summary"] = summarize(summary)
    extra: dict[str, Any] = {}
    for name, value in values.items():
        if not _EXTRA_NAME.fullmatch(name):
            raise InputError("extra fields need snake_case names", field=name)
        extra[name] = _plain(value)
    if extra:
        out["extra"] = extra
    return out


def summarize(summary: Any) -> Any:
    """A DataFrame becomes ``{"columns", "rows", "row_count", "truncated"}``; a dict or list is
    converted value by value."""
    if hasattr(summary, "to_dict") and hasattr(summary, "columns") and hasattr(summary, "itertuples"):
        frame = summary
        if getattr(frame.index, "name", None) is not None or any(n is not None for n in frame.index.names):
            frame = frame.reset_index()
        head = frame.head(MAX_SUMMARY_ROWS)
        return {
            "columns": [str(c) for c in head.columns],
            "rows": [[_plain(v) for v in row] for row in head.itertuples(index=False, name=None)],
            "row_count": int(len(frame)),
            "truncated": len(frame) > MAX_SUMMARY_ROWS,
        }
    if isinstance(summary, Mapping | list | tuple):
        return _plain(summary)
    raise InputError("must be a pandas DataFrame, a dict or a list", field="summary")


def _plain(value: Any) -> Any:
    """JSON-able and exact: Decimal and float become decimal strings (canonical JSON holds no floats),
    dates ISO text, numpy scalars Python values, NaN/NaT/NA None."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else str(Decimal(repr(value)))
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    if hasattr(value, "isoformat"):  # pandas Timestamp
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return _plain(value.item())
    return str(value)


def describe(payload: Mapping[str, Any]) -> str:
    parts = [f"{k}={payload[k]}" for k in FIELDS[:4] if k in payload]
    if "summary" in payload:
        parts.append("summary")
    parts += [f"{k}" for k in payload.get("extra", {})]
    return "paynb record: " + (", ".join(parts) or "(empty)")


def collect_reports(nb: Any) -> tuple[dict[str, Any], list[str]]:
    """Merge every report a notebook emitted, in cell and output order. Outputs that do not hold a valid
    report (hand-made or damaged) are skipped and described in the second value."""
    merged: dict[str, Any] = {}
    problems: list[str] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") not in ("display_data", "execute_result", "update_display_data"):
                continue
            payload = output.get("data", {}).get(MIMETYPE)
            if payload is None:
                continue
            try:
                if not isinstance(payload, Mapping):
                    raise InputError("is not a mapping", field="report")
                fields = {k: v for k, v in payload.items() if k not in ("summary", "extra")}
                extra = payload.get("extra") or {}
                if not isinstance(extra, Mapping):
                    raise InputError("is not a mapping", field="extra")
                clean = build_report(**fields, **{str(k): v for k, v in extra.items()})
            except (InputError, TypeError) as err:
                problems.append(f"cell {index}: report skipped ({err})")
                continue
            if "summary" in payload:
                clean["summary"] = _plain(payload["summary"])
            extra_clean = clean.pop("extra", None)
            merged.update(clean)
            if extra_clean:
                merged.setdefault("extra", {}).update(extra_clean)
    return merged, problems
