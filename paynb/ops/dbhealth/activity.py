"""``paynb db activity``: long-running queries, chains of blocking locks, sessions idle in a transaction.

Each finding carries the statement that would end it (``pg_cancel_backend`` for a running query,
``pg_terminate_backend`` for an idle transaction or a session at the root of a blocking chain). Running
one is the ``db.signal_backend`` fix: the plan pins the session by pid, start times and a hash of its
query, so an apply cannot hit a different session that reused the pid. See docs/db-health.md.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.engine import Connection

from paynb.canonical import to_jsonable
from paynb.context import Env, resolve_env
from paynb.db import fetch_all, sees_all_sessions, stats_grant
from paynb.errors import InputError, PlanError
from paynb.fixes import Fix, FixRun, Outcome, register_fix
from paynb.ops.dbhealth.admin import admin_engine
from paynb.plan import Plan

Action = Literal["cancel", "terminate"]
SIGNAL_KIND = "db.signal_backend"
QUERY_SHOWN = 300

_SESSIONS = """
    SELECT pid, usename, application_name, client_addr::text AS client_addr, state, backend_start,
           xact_start, query_start, state_change, wait_event_type, wait_event, query,
           pg_blocking_pids(pid) AS blocked_by,
           EXTRACT(EPOCH FROM now() - query_start)::float8 AS query_seconds,
           EXTRACT(EPOCH FROM now() - state_change)::float8 AS state_seconds,
           EXTRACT(EPOCH FROM now() - xact_start)::float8 AS xact_seconds
    FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
"""


@dataclass(frozen=True)
class Session:
    pid: int
    user: str | None
    application: str | None
    client: str | None
    state: str | None
    backend_start: datetime | None
    xact_start: datetime | None
    query_start: datetime | None
    wait: str | None
    query: str
    blocked_by: tuple[int, ...]
    query_seconds: float
    state_seconds: float


@dataclass(frozen=True)
class Finding:
    kind: Literal["long_running", "idle_in_transaction", "blocking", "blocked"]
    pid: int
    seconds: float
    user: str | None
    application: str | None
    state: str | None
    query: str
    blocked_by: tuple[int, ...]
    blocks: tuple[int, ...]
    action: Action | None
    statement: str | None

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))


@dataclass(frozen=True)
class ActivityReport:
    findings: tuple[Finding, ...]
    sessions: int
    #: what this role could not see (without pg_read_all_stats, other roles' sessions have no state,
    #: query or wait): the findings are then incomplete
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "sessions": self.sessions,
            "complete": not self.notes,
            "notes": list(self.notes),
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "kind": f.kind,
                    "pid": f.pid,
                    "seconds": f"{f.seconds:.0f}",
                    "user": f.user or "",
                    "state": f.state or "",
                    "blocked_by": ",".join(map(str, f.blocked_by)),
                    "query": f.query[:60],
                    "to end it": f.statement or "",
                }
                for f in self.findings
            ]
        )


def blind_spot(conn: Connection) -> str:
    """Empty when this role sees every session in full; otherwise what it misses and the grant to ask for."""
    if sees_all_sessions(conn):
        return ""
    role = conn.exec_driver_sql("SELECT current_user").scalar_one()
    return (
        f"{role} sees other roles' sessions without their state, query or wait, so their long queries and"
        f" blocking chains cannot be found: {stats_grant(role)} (a read-only monitoring role)"
    )


def list_sessions(env: Env) -> list[Session]:
    with env.read() as conn:
        return read_sessions(conn)


def read_sessions(conn: Connection) -> list[Session]:
    rows = fetch_all(conn, _SESSIONS)
    return [
        Session(
            pid=r["pid"],
            user=r["usename"],
            application=r["application_name"],
            client=r["client_addr"],
            state=r["state"],
            backend_start=r["backend_start"],
            xact_start=r["xact_start"],
            query_start=r["query_start"],
            wait=f"{r['wait_event_type']}:{r['wait_event']}" if r["wait_event_type"] else None,
            query=(r["query"] or "")[:QUERY_SHOWN],
            blocked_by=tuple(r["blocked_by"] or ()),
            query_seconds=float(r["query_seconds"] or 0),
            state_seconds=float(r["state_seconds"] or 0),
        )
        for r in rows
    ]


def find_activity(*, min_seconds: float = 60.0, env: Env | None = None) -> ActivityReport:
    """Sessions worth a look: active longer than ``min_seconds``, idle in a transaction longer than
    ``min_seconds``, and every session in a blocking chain (whatever its age)."""
    if min_seconds < 0 or min_seconds > 7 * 86400:
        raise InputError("must be between 0 and 604800 seconds", field="--min-seconds")
    env = resolve_env(env)
    with env.read() as conn:  # one connection: on Cloud SQL each one is a TLS handshake away
        blind = blind_spot(conn)
        sessions = read_sessions(conn)
    blocks: dict[int, list[int]] = {}
    for s in sessions:
        for blocker in s.blocked_by:
            blocks.setdefault(blocker, []).append(s.pid)
    findings: list[Finding] = []
    for s in sessions:
        blocked = tuple(sorted(blocks.get(s.pid, ())))
        idle_tx = (s.state or "").startswith("idle in transaction")
        if blocked and not s.blocked_by:
            kind, seconds = "blocking", s.state_seconds if idle_tx else s.query_seconds
            action: Action | None = "terminate" if idle_tx else "cancel"
        elif s.blocked_by:
            kind, seconds, action = "blocked", s.query_seconds, None
        elif idle_tx and s.state_seconds >= min_seconds:
            kind, seconds, action = "idle_in_transaction", s.state_seconds, "terminate"
        elif s.state == "active" and s.query_seconds >= min_seconds:
            kind, seconds, action = "long_running", s.query_seconds, "cancel"
        else:
            continue
        statement = f"SELECT pg_{action}_backend({s.pid})" if action else None
        findings.append(
            Finding(
                kind=kind,
                pid=s.pid,
                seconds=seconds,
                user=s.user,
                application=s.application,
                state=s.state,
                query=s.query,
                blocked_by=s.blocked_by,
                blocks=blocked,
                action=action,
                statement=statement,
            )
        )
    order = {"blocking": 0, "idle_in_transaction": 1, "long_running": 2, "blocked": 3}
    findings.sort(key=lambda f: (order[f.kind], -f.seconds))
    return ActivityReport(tuple(findings), len(sessions), (blind,) if blind else ())


class SignalBackendFix(Fix):
    """Cancel a session's query or terminate the session, pinned to the exact session planned."""

    kind = SIGNAL_KIND
    title = "Cancel a query or terminate a session"

    def plan(self, env: Env, pid: int, action: str = "cancel") -> Plan:
        if action not in ("cancel", "terminate"):
            raise InputError("must be cancel or terminate", field="action")
        session = next((s for s in list_sessions(env) if s.pid == int(pid)), None)
        if session is None:
            raise InputError(f"no session with pid {pid} in this database", field="pid")
        body = {
            "params": {"pid": int(pid), "action": action},
            "session": {
                "pid": session.pid,
                "user": session.user,
                "application": session.application,
                "backend_start": session.backend_start,
                "query_start": session.query_start if action == "cancel" else None,
                "query_sha256": hashlib.sha256(session.query.encode()).hexdigest(),
                "query": session.query,
            },
            "statement": f"SELECT pg_{action}_backend({session.pid})",
        }
        summary = f"{action} pid {session.pid} ({session.user}, {session.application or 'no application'})"
        return Plan(kind=SIGNAL_KIND, body=to_jsonable(body), summary=summary)

    def execute(self, env: Env, plan: Plan, run: FixRun) -> Outcome:
        params = plan.body["params"]
        engine = admin_engine(env)
        with engine.connect() as conn:
            fn = "pg_cancel_backend" if params["action"] == "cancel" else "pg_terminate_backend"
            sent = conn.exec_driver_sql(f"SELECT {fn}(%(pid)s)", {"pid": int(params["pid"])}).scalar_one()
        engine.dispose()
        if not sent:
            raise PlanError(
                f"the server refused to signal pid {params['pid']} (not allowed, or already gone)"
            )
        return Outcome(
            status="applied",
            rows_affected=0,
            before={"pid": params["pid"], "state": "running"},
            after={"signal": params["action"]},
            touched={"sessions": [plan.body["session"]]},
        )

    def verify(self, env: Env, plan: Plan, outcome: Outcome) -> dict[str, Any]:
        pinned = plan.body["session"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now = next((s for s in list_sessions(env) if s.pid == pinned["pid"]), None)
            gone = now is None or to_jsonable(now.backend_start) != pinned["backend_start"]
            if gone or (
                plan.body["params"]["action"] == "cancel"
                and (now.state != "active" or to_jsonable(now.query_start) != pinned["query_start"])
            ):
                return {"ended": True}
            time.sleep(0.2)
        raise PlanError(
            f"pid {pinned['pid']} was signalled but is still running after 10 s",
            hint="run `paynb db activity` again; terminate it if a cancel was not enough",
        )


register_fix(SignalBackendFix())
