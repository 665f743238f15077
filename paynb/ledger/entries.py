"""What the chain says about applies and runs: the entry records, checked against ``entry.schema.json``.

An apply leaves ``apply-started`` (fix kind, plan sha256 and body with secrets scrubbed, operator, ticket,
reason, run id) and then exactly one of ``apply-finished`` (outcome, rows_affected, before/after, what
was touched, verification) or ``apply-failed`` (error, and what had been committed already). A run leaves
``run-started`` before its kernel starts, then its run record when it ends; a started run with no record
and no live process was killed (:func:`run_state`).
"""

from __future__ import annotations

import functools
import getpass
import json
import math
import os
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from typing import TYPE_CHECKING, Any

from paynb import __version__
from paynb.canonical import to_jsonable
from paynb.errors import JobError
from paynb.ids import new_run_id
from paynb.ledger.anchors import Anchor, write_anchor
from paynb.ledger.store import Ledger, LedgerEntry, now_iso, open_ledger, scrub_secrets
from paynb.settings import Settings

if TYPE_CHECKING:
    from paynb.context import Env
    from paynb.plan import Plan

ENTRY_SCHEMA_VERSION = 1
ENTRY_SCHEMA_FILE = "entry.schema.json"
RUN_ID_ENV = "PAYNB_RUN_ID"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_SECRET_NAME = re.compile(r"(password|passwd|secret|token|api[_-]?key|credential|private[_-]?key)", re.I)


@functools.lru_cache(maxsize=1)
def _validator():  # type: ignore[no-untyped-def]
    from jsonschema import Draft202012Validator

    doc = json.loads(resources.files("paynb.ledger").joinpath(ENTRY_SCHEMA_FILE).read_text("utf-8"))
    return Draft202012Validator(doc)


def validate_entry(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """Raise JobError naming the first field that breaks the entry schema (never the value in it)."""
    version = record.get("schema_version")
    if isinstance(version, int) and version > ENTRY_SCHEMA_VERSION:
        raise JobError(f"ledger entry schema version {version} is newer than this paynb understands")
    errors = sorted(_validator().iter_errors(record), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise JobError(f"ledger entry field {where} breaks schema v{ENTRY_SCHEMA_VERSION}: {first.validator}")
    return record


def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        return f"uid:{os.getuid()}"


def current_run_id(env: Env | None = None) -> str | None:
    """The ``paynb run`` this process belongs to (``PAYNB_RUN_ID`` in its kernel), if any."""
    value = (env.run_id if env is not None else None) or os.environ.get(RUN_ID_ENV, "")
    return value if _UUID.match(value or "") else None


def redact_plan(plan: Mapping[str, Any], secret_values: list[str]) -> Any:
    """The plan as the ledger keeps it: secret values scrubbed, fields named like credentials hidden."""

    def hide(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: ("***" if _SECRET_NAME.search(str(k)) and v else hide(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [hide(v) for v in value]
        return value

    return scrub_secrets(hide(to_jsonable(plan)), secret_values)


# -- applies -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AnchoredEntry(LedgerEntry):
    """A ledger entry and the anchor written for it (None when it was not anchored)."""

    anchor: Anchor | None = None


def _anchored(entry: LedgerEntry, anchor: Anchor | None) -> AnchoredEntry:
    return AnchoredEntry(**{f.name: getattr(entry, f.name) for f in fields(LedgerEntry)}, anchor=anchor)


@dataclass
class ApplyStarted:
    """Handed back by :func:`record_apply_started`; pass it to ``record_apply_finished`` / ``_failed``."""

    apply_id: str
    kind: str
    plan_sha256: str
    operator: Mapping[str, str]
    ticket: str
    reason: str
    run_id: str | None
    settings: Settings = field(repr=False)
    ledger: Ledger = field(repr=False)
    entry: AnchoredEntry | None = None
    started: float = field(default_factory=time.monotonic, repr=False)

    @property
    def seq(self) -> int:
        return self.entry.seq if self.entry is not None else 0

    def common(self) -> dict[str, Any]:
        return {
            "schema_version": ENTRY_SCHEMA_VERSION,
            "apply_id": self.apply_id,
            "fix": self.kind,
            "plan_sha256": self.plan_sha256,
            "operator": dict(self.operator),
            "ticket": self.ticket,
            "reason": self.reason,
            "run_id": self.run_id,
            "paynb_version": __version__,
        }


def _env(env: Env | None) -> Env:
    from paynb.context import resolve_env

    return resolve_env(env)


def record_apply_started(
    kind: str,
    plan: Plan,
    *,
    env: Env | None = None,
    ticket: str = "",
    reason: str = "",
    operator: str | None = None,
    anchor: bool = True,
) -> ApplyStarted:
    """Chain ``apply-started`` for ``plan`` (before any write) and anchor it. Returns the handle that
    ``record_apply_finished`` / ``record_apply_failed`` take."""
    env = _env(env)
    settings = env.settings
    ledger = open_ledger(settings)
    secrets = settings.secret_values()
    apply_id = new_run_id()
    run_id = current_run_id(env)
    who = {
        "name": (operator or env.operator or os_user()).strip() or os_user(),
        "os_user": os_user(),
        "host": socket.gethostname(),
    }
    handle = ApplyStarted(
        apply_id,
        kind,
        plan.sha256,
        who,
        scrub_secrets(ticket or "", secrets),
        scrub_secrets(reason or "", secrets),
        run_id,
        settings,
        ledger,
    )
    record = {
        **handle.common(),
        "entry": "apply-started",
        "plan": redact_plan(plan.to_dict(), secrets),
        "started_at": now_iso(),
        "pid": os.getpid(),
        "process_start": process_start(os.getpid()),
    }
    entry = ledger.append_entry(
        kind="apply",
        event="started",
        ref=apply_id,
        record=record,
        run_id=run_id,
        subject=kind,
        status="started",
        validate=validate_entry,
    )
    handle.entry = _anchored(entry, write_anchor(ledger, entry, settings) if anchor else None)
    return handle


def _duration_ms(started: ApplyStarted) -> int:
    return max(0, int((time.monotonic() - started.started) * 1000))


def record_apply_finished(
    started: ApplyStarted,
    outcome: Any,
    verification: Mapping[str, Any] | None = None,
    *,
    env: Env | None = None,
    anchor: bool = True,
) -> AnchoredEntry:
    """Chain ``apply-finished`` with what the fix did (an :class:`paynb.fixes.Outcome`) and anchor it."""
    secrets = started.settings.secret_values()
    touched = dict(to_jsonable(getattr(outcome, "touched", {}) or {}))
    for part in ("rows", "objects", "cfs"):
        touched.setdefault(part, [])
    record = {
        **started.common(),
        "entry": "apply-finished",
        "started_seq": started.seq,
        "outcome": outcome.status,
        "rows_affected": int(outcome.rows_affected or 0),
        "before": scrub_secrets(to_jsonable(dict(outcome.before or {})), secrets),
        "after": scrub_secrets(to_jsonable(dict(outcome.after or {})), secrets),
        "touched": scrub_secrets(touched, secrets),
        "detail": scrub_secrets(to_jsonable(dict(getattr(outcome, "detail", {}) or {})), secrets),
        "verification": scrub_secrets(to_jsonable(dict(verification or {})), secrets),
        "ended_at": now_iso(),
        "duration_ms": _duration_ms(started),
    }
    entry = started.ledger.append_entry(
        kind="apply",
        event="finished",
        ref=started.apply_id,
        record=record,
        run_id=started.run_id,
        subject=started.kind,
        status=outcome.status,
        validate=validate_entry,
    )
    return _anchored(entry, write_anchor(started.ledger, entry, started.settings) if anchor else None)


def record_apply_failed(
    started: ApplyStarted,
    error: BaseException,
    *,
    env: Env | None = None,
    committed: list[Any] | None = None,
    anchor: bool = True,
) -> AnchoredEntry:
    """Chain ``apply-failed`` (any exception, KeyboardInterrupt included) and anchor it. ``committed``
    says what had been committed before the failure (empty: nothing was)."""
    secrets = started.settings.secret_values()
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, KeyboardInterrupt):
        message = "interrupted (KeyboardInterrupt)"
    record = {
        **started.common(),
        "entry": "apply-failed",
        "started_seq": started.seq,
        "error": {"type": type(error).__name__, "message": scrub_secrets(message[:2000], secrets)},
        "committed": scrub_secrets(to_jsonable(list(committed or [])), secrets),
        "ended_at": now_iso(),
        "duration_ms": _duration_ms(started),
    }
    entry = started.ledger.append_entry(
        kind="apply",
        event="failed",
        ref=started.apply_id,
        record=record,
        run_id=started.run_id,
        subject=started.kind,
        status="failed",
        validate=validate_entry,
    )
    return _anchored(entry, write_anchor(started.ledger, entry, started.settings) if anchor else None)


def applies_of_run(ledger: Ledger, run_id: str) -> list[LedgerEntry]:
    """The ``apply-finished`` entries recorded inside ``paynb run`` ``run_id``."""
    return ledger.entries(kind="apply", event="finished", run_id=run_id)


def rows_affected_by_run(ledger: Ledger, run_id: str) -> tuple[int, int]:
    """(rows, applies): what paynb's own applies counted inside a run, and how many finished."""
    found = applies_of_run(ledger, run_id)
    return sum(int(e.record.get("rows_affected") or 0) for e in found), len(found)


# -- runs ----------------------------------------------------------------------------------------------
def process_start(pid: int) -> str | None:
    """The start tick of process ``pid`` (Linux ``/proc``), so a reused pid is not taken for a run."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()[19]


def record_run_started(
    ledger: Ledger, settings: Settings, record: Mapping[str, Any], *, timeout_s: float | None
) -> AnchoredEntry:
    """Chain ``run-started`` before the kernel starts (``record`` is the run record's known part)."""
    pid = os.getpid()
    entry_record = {
        "schema_version": ENTRY_SCHEMA_VERSION,
        "entry": "run-started",
        "run_id": record["run_id"],
        "notebook": record["notebook"],
        "parameters": record.get("parameters", {}),
        "actor": record.get("actor", ""),
        "host": socket.gethostname(),
        "pid": pid,
        "process_start": process_start(pid),
        "started_at": record["started_at"],
        "timeout_s": None if timeout_s is None else math.ceil(timeout_s),
        "paynb_version": __version__,
    }
    entry = ledger.append_entry(
        kind="run",
        event="started",
        ref=record["run_id"],
        record=entry_record,
        run_id=record["run_id"],
        subject=record["notebook"]["path"],
        status="started",
        validate=validate_entry,
    )
    return _anchored(entry, write_anchor(ledger, entry, settings))


def run_state(started: Mapping[str, Any]) -> str:
    """``running``, ``killed`` or ``unknown`` for a started run that has no record yet: on this host its
    process is alive (same pid and start tick) or not; on another host paynb cannot tell."""
    if started.get("host") != socket.gethostname():
        return "unknown"
    pid = started.get("pid")
    if isinstance(pid, int) and process_start(pid) is not None:
        if process_start(pid) == started.get("process_start"):
            return "running"
    return "killed"
