"""``paynb db migrate-manually plan|apply``: the FAQ's manual procedure for DDL on a busy pay-db.

The steps, each checked before the next:

1. close the database to new connections (``ALTER DATABASE … ALLOW_CONNECTIONS false``, the supported
   spelling of the FAQ's ``UPDATE pg_database SET datallowconn = 'false'``);
2. terminate every other backend of the database;
3. run the DDL and 4. set ``alembic_version``, both in one transaction, so the version never claims a
   change that did not happen;
5. re-open the database, always, even when step 3 fails.

It runs only on the sandbox (``PAYNB_ENVIRONMENT=sandbox``) unless the plan is made with
``production_ack``. A killed apply can leave the database closed; planning again notices
(``allow_connections`` is false) and the apply re-opens it. See docs/db-health.md.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from paynb.context import Env
from paynb.db import alembic_version, fetch_one
from paynb.errors import InputError, PlanError
from paynb.fixes import Fix, FixRun, Outcome, register_fix
from paynb.ops.dbhealth.admin import admin_engine, one_transaction
from paynb.plan import Plan

KIND = "db.manual_migration"
MAINTENANCE_DATABASE = "postgres"


class ManualMigrationFix(Fix):
    kind = KIND
    title = "Run DDL with the database closed to other sessions, then set alembic_version"

    def plan(
        self,
        env: Env,
        sql_file: str,
        revision: str,
        production_ack: bool = False,
        statement_timeout_ms: int = 0,
    ) -> Plan:
        path = Path(sql_file)
        try:
            sql = path.read_text()
        except OSError as err:
            raise InputError(f"cannot read the DDL file ({err.strerror})", file=str(path)) from None
        if not sql.strip():
            raise InputError("the DDL file is empty", file=str(path))
        if not revision or len(revision) > 32 or not revision.replace("_", "").isalnum():
            raise InputError("an alembic revision id (up to 32 letters, digits, _)", field="--revision")
        if env.settings.environment != "sandbox" and not production_ack:
            raise InputError(
                f"this closes pay-db to every other session; PAYNB_ENVIRONMENT is {env.settings.environment!r}",
                field="--production-ack",
                hint="it runs on the sandbox only, unless you pass --production-ack in a planned maintenance window",
            )
        with env.read() as conn:
            database = conn.execute(sa.text("SELECT current_database()")).scalar_one()
            current = alembic_version(conn)
            allow = fetch_one(conn, "SELECT datallowconn FROM pg_database WHERE datname = current_database()")
        params = {
            "sql_file": str(path),
            "revision": revision,
            "production_ack": bool(production_ack),
            "statement_timeout_ms": int(statement_timeout_ms),
        }
        body: dict[str, Any] = {
            "params": params,
            "database": database,
            "environment": env.settings.environment,
            "alembic_version": {"before": current, "after": revision},
            "allow_connections": bool(allow and allow["datallowconn"]),
            "sql_sha256": hashlib.sha256(sql.encode()).hexdigest(),
            "sql": sql,
            "steps": [
                f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false',
                "terminate every other backend of the database",
                "BEGIN; <the DDL file>; UPDATE alembic_version SET version_num = :revision; COMMIT",
                f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true',
            ],
        }
        warnings = []
        if not body["allow_connections"]:
            warnings.append("the database is closed to new connections now (an earlier apply stopped midway)")
        if current == revision:
            warnings.append(f"alembic_version is already {revision}; the apply only re-opens connections")
        return Plan(
            kind=KIND, body=body, summary=f"{current} -> {revision} on {database}", warnings=tuple(warnings)
        )

    def execute(self, env: Env, plan: Plan, run: FixRun) -> Outcome:
        body = plan.body
        database = body["database"]
        already = body["alembic_version"]["before"] == body["alembic_version"]["after"]
        engine = admin_engine(env, statement_timeout_ms=body["params"]["statement_timeout_ms"])
        # a database cannot close itself to connections: steps 1, 2 and 5 run from the maintenance database
        maintenance = admin_engine(env, database=MAINTENANCE_DATABASE)
        terminated = 0
        with engine.connect() as conn, maintenance.connect() as admin:
            quoted = admin.execute(sa.text("SELECT quote_ident(:d)"), {"d": database}).scalar_one()
            own_pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            try:
                if not already:
                    admin.exec_driver_sql(f"ALTER DATABASE {quoted} ALLOW_CONNECTIONS false")
                    terminated = sum(
                        1
                        for (ok,) in admin.execute(
                            sa.text(
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = :d AND pid <> :own"
                            ),
                            {"d": database, "own": own_pid},
                        )
                        if ok
                    )
                    with one_transaction(conn):
                        conn.exec_driver_sql(body["sql"])
                        updated = conn.execute(
                            sa.text("UPDATE alembic_version SET version_num = :r"),
                            {"r": body["alembic_version"]["after"]},
                        ).rowcount
                        if updated != 1:
                            raise PlanError("alembic_version has no row to update; nothing was changed")
            finally:
                admin.exec_driver_sql(f"ALTER DATABASE {quoted} ALLOW_CONNECTIONS true")
        engine.dispose()
        maintenance.dispose()
        return Outcome(
            status="nothing_to_do" if already else "applied",
            rows_affected=0 if already else 1,
            before={"alembic_version": body["alembic_version"]["before"]},
            after={"alembic_version": body["alembic_version"]["after"], "terminated_backends": terminated},
            touched={"database": database, "sql_sha256": body["sql_sha256"]},
        )

    def verify(self, env: Env, plan: Plan, outcome: Outcome) -> dict[str, Any]:
        with env.read() as conn:
            version = alembic_version(conn)
            allow = fetch_one(conn, "SELECT datallowconn FROM pg_database WHERE datname = current_database()")
        if version != plan.body["alembic_version"]["after"] or not (allow and allow["datallowconn"]):
            raise PlanError(
                f"after the apply alembic_version is {version} and connections are "
                f"{'open' if allow and allow['datallowconn'] else 'closed'}",
                hint="plan again: the plan re-opens a closed database",
            )
        return {"alembic_version": version, "allow_connections": True}


register_fix(ManualMigrationFix())
