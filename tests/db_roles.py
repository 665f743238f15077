"""A stand-in for the role that owns pay-db in production: no superuser, owns the database and its tables,
may signal other backends (``pg_signal_backend``). The maintenance fixes run as it (docs/db-health.md#roles)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

OWNER = "paynb_table_owner"
OWNER_PASSWORD = "owner-pw-1"  # synthetic, test clusters only


def make_owner(superuser_url: str) -> str:
    """Give the database of ``superuser_url`` and its public tables to :data:`OWNER`; returns its URL."""
    eng = sa.create_engine(superuser_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    database = make_url(superuser_url).database
    with eng.connect() as conn:
        conn.exec_driver_sql(
            f"""DO $$ BEGIN CREATE ROLE {OWNER} LOGIN NOSUPERUSER PASSWORD '{OWNER_PASSWORD}';
                EXCEPTION WHEN duplicate_object THEN NULL; END $$"""
        )
        conn.exec_driver_sql(f"GRANT pg_signal_backend TO {OWNER}")
        conn.exec_driver_sql(f'ALTER DATABASE "{database}" OWNER TO {OWNER}')
        conn.exec_driver_sql(
            f"""DO $$ DECLARE t text; BEGIN
                  FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
                    EXECUTE format('ALTER TABLE public.%%I OWNER TO {OWNER}', t);
                  END LOOP; END $$"""
        )
    eng.dispose()
    url = make_url(superuser_url).set(username=OWNER, password=OWNER_PASSWORD)
    return url.render_as_string(hide_password=False)
