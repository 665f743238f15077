"""`paynb db check` and `paynb db reindex` against real corruption on a PostgreSQL of their own.

Each test gets a private server (so it can be restarted to drop a page from shared buffers) holding the
pay-db schema and enough rows for multi-page indexes. A page is zeroed on disk exactly as the FAQ's
incident looked: the server itself then reports "index ... contains unexpected zero page at block N".
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.context import Env
from paynb.ops.dbhealth import check_indexes, find_duplicates, list_btree_indexes
from paynb.ops.dbhealth.reindex import ReindexFix
from paynb.sandbox.postgres import EmbeddedPostgres
from paynb.settings import Settings

pytestmark = pytest.mark.slow

PAGE = 8192
INDEX = "ix_invoices_payment_account_id"


def debian_pg_bin() -> str | None:
    """Debian's PostgreSQL server binaries, which ship amcheck (the embedded wheel does not)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return str(Path(found[-1]).parent) if found else None


class Server:
    def __init__(self, root: Path) -> None:
        self.pg = EmbeddedPostgres(root)
        self.pg.destroy()
        self.pg.start()
        admin = sa.create_engine(self.pg.url("postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.exec_driver_sql('CREATE DATABASE "paydb"')
        admin.dispose()
        self.dsn = self.pg.dsn("paydb")
        self.engine = sa.create_engine(self.dsn, poolclass=NullPool)
        from paynb.sandbox.schema import apply_schema

        with self.engine.begin() as conn:
            apply_schema(conn)
            conn.exec_driver_sql(
                "INSERT INTO payment_accounts (id, auth_account_id, name) "
                "SELECT g, 'A' || g, 'acct ' || g FROM generate_series(1, 400) g"
            )
            conn.exec_driver_sql(
                "INSERT INTO invoices (created_by, created_on, invoice_status_code, total, payment_method_code, "
                "payment_account_id) SELECT 'test', now(), 'PAID', 10, 'PAD', 1 + mod(g, 400) "
                "FROM generate_series(1, 40000) g"
            )

    def env(self) -> Env:
        settings = Settings.load(
            env={"PAYNB_DATABASE_URL": self.dsn, "PAYNB_DATABASE_ADMIN_URL": self.dsn}, dotenv=None
        )
        return Env(settings=settings)

    def production_env(self) -> Env:
        """The roles production has: the reader for checks and plans, and for the repairs a role that owns
        the pay tables and may signal backends, but is no superuser (docs/db-health.md#roles)."""
        from paynb.sandbox.postgres import READER, WRITER, ensure_roles, role_url
        from tests.db_roles import make_owner

        ensure_roles(self.pg.url("postgres"), {READER: "reader-pw-1", WRITER: "writer-pw-1"})
        urls = {
            "PAYNB_DATABASE_URL": role_url(self.pg, READER, "reader-pw-1", "paydb"),
            "PAYNB_DATABASE_ADMIN_URL": make_owner(self.dsn),
        }
        return Env(settings=Settings.load(env=urls, dotenv=None))

    def zero_page(self, index: str, block: int | None = None) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql("CHECKPOINT")
            rel, pages = conn.execute(
                sa.text("SELECT pg_relation_filepath(:i), pg_relation_size(:i) / 8192"), {"i": index}
            ).one()
            block = block if block is not None else max(1, int(pages) // 2)  # a page the tree really uses
        self.engine.dispose()
        from paynb.db import dispose_engines

        dispose_engines()
        self.pg.stop()  # the page must leave shared buffers, or the server keeps serving its copy
        with open(self.pg.data_dir / rel, "r+b") as fh:
            fh.seek(block * PAGE)
            fh.write(b"\0" * PAGE)
        self.pg.start()

    def close(self) -> None:
        from paynb.db import dispose_engines

        dispose_engines()
        self.engine.dispose()
        self.pg.destroy()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "pg")
    yield srv
    srv.close()


def test_check_passes_on_healthy_indexes(server: Server) -> None:
    report = check_indexes(env=server.env(), tables=["invoices"])
    assert report.checks and not report.broken
    assert {c.status for c in report.checks} == {"ok"}
    assert report.method == "probe"


def test_zeroed_page_is_found_and_repaired(server: Server) -> None:
    from paynb.fixes import apply_fix

    env = server.production_env()
    server.zero_page(INDEX)
    report = check_indexes(env=env, tables=["invoices"])
    broken = {c.index: c for c in report.broken}
    assert set(broken) == {INDEX}
    assert "unexpected zero page" in broken[INDEX].message
    assert broken[INDEX].status == "corrupt"

    fix = ReindexFix()
    plan = fix.plan(env, tables=["invoices"])
    assert [t["index"] for t in plan.body["targets"]] == [INDEX]
    assert plan.body["statements"] == [f"REINDEX INDEX CONCURRENTLY public.{INDEX}"]
    result = apply_fix(fix, plan, plan.sha256, env=env, ticket="OPS-1", reason="zeroed page")
    assert result.verification["status"] == "ok"
    assert not check_indexes(env=env, tables=["invoices"]).broken


def test_duplicates_are_planned_removed_and_rebuilt(server: Server) -> None:
    from paynb.fixes import apply_fix

    # Keep the unique index from seeing new rows (as a corrupted index would), add duplicates, restore.
    with server.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO routing_slips (number, created_on, created_by, routing_slip_date, status) "
            "VALUES ('RS1', now(), 't', current_date, 'ACTIVE'), ('RS2', now(), 't', current_date, 'ACTIVE')"
        )
        conn.exec_driver_sql(
            "UPDATE pg_index SET indisready = false WHERE indexrelid = 'routing_slips_number_key'::regclass"
        )
    with server.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO routing_slips (number, created_on, created_by, routing_slip_date, status) "
            "VALUES ('RS1', now(), 'dup', current_date, 'ACTIVE')"
        )
        # a child slip points at RS2's number, and a second RS2 exists with no references
        conn.exec_driver_sql(
            "INSERT INTO routing_slips (number, created_on, created_by, routing_slip_date, status, parent_number) "
            "VALUES ('RS2', now(), 'dup', current_date, 'ACTIVE', NULL), "
            "('RS3', now(), 't', current_date, 'ACTIVE', 'RS2')"
        )
    with server.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE pg_index SET indisready = true WHERE indexrelid = 'routing_slips_number_key'::regclass"
        )
    env = server.production_env()
    with server.engine.begin() as conn:
        info = next(i for i in list_btree_indexes(conn) if i.name == "routing_slips_number_key")
        groups = find_duplicates(conn, info)
    assert [g.index_key for g in groups] == [{"number": "RS1"}, {"number": "RS2"}]

    fix = ReindexFix()
    plan = fix.plan(env, indexes=["routing_slips_number_key"])
    target = plan.body["targets"][0]
    proposals = {
        (g["index_key"]["number"], r["row"]["created_by"]): r["proposal"]
        for g in target["duplicates"]
        for r in g["rows"]
    }
    assert proposals[("RS1", "t")] == "keep" and proposals[("RS1", "dup")] == "remove"
    # a child points at the number RS2 itself: either copy satisfies it, so one goes and the reference stays
    rs2 = next(g for g in target["duplicates"] if g["index_key"]["number"] == "RS2")
    assert sorted(r["proposal"] for r in rs2["rows"]) == ["keep", "remove"]
    assert all(ref["shared"] for r in rs2["rows"] for ref in r["references"])
    assert plan.body["removals"] == 2 and not plan.body["blocked"]

    result = apply_fix(fix, plan, plan.sha256, env=env, ticket="OPS-2", reason="duplicate keys")
    assert result.outcome.rows_affected == 2
    with server.engine.begin() as conn:
        counts = dict(
            conn.exec_driver_sql("SELECT number, count(*) FROM routing_slips GROUP BY number").all()
        )
    assert counts == {"RS1": 1, "RS2": 1, "RS3": 1}


def test_leftover_ccnew_index_is_planned_for_drop(server: Server) -> None:
    with server.engine.begin() as conn:
        conn.exec_driver_sql("CREATE INDEX ix_invoices_total_ccnew ON invoices (total)")
        conn.exec_driver_sql(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'ix_invoices_total_ccnew'::regclass"
        )
    env = server.env()
    report = check_indexes(env=env, tables=["invoices"])
    assert [c.index for c in report.broken] == ["ix_invoices_total_ccnew"]
    plan = ReindexFix().plan(env, tables=["invoices"])
    assert [d["index"] for d in plan.body["drop"]] == ["ix_invoices_total_ccnew"]
    assert plan.body["targets"] == []


@pytest.mark.skipif(
    debian_pg_bin() is None, reason="no Debian PostgreSQL (apt-get install postgresql) for amcheck"
)
def test_amcheck_path_on_debian_postgresql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYNB_PG_BIN", debian_pg_bin() or "")
    srv = Server(tmp_path / "deb")
    try:
        with srv.engine.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION amcheck")
        env = srv.env()
        healthy = check_indexes(env=env, tables=["invoices"], heapallindexed=True)
        assert healthy.method == "amcheck" and not healthy.broken
        srv.zero_page(INDEX)
        report = check_indexes(env=env, tables=["invoices"])
        assert report.method == "amcheck"
        assert [c.index for c in report.broken] == [INDEX]
        assert report.broken[0].status == "corrupt"
    finally:
        srv.close()
        os.environ.pop("PAYNB_PG_BIN", None)


@pytest.mark.skipif(
    debian_pg_bin() is None, reason="no Debian PostgreSQL (apt-get install postgresql) for amcheck"
)
def test_a_reader_without_amcheck_rights_gets_the_probe_and_the_grant_to_ask_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in production: `db check` runs as the reader, and amcheck's functions are not granted to PUBLIC."""
    from paynb.errors import InputError
    from paynb.ops.doctor import run_checks
    from paynb.sandbox.postgres import READER, ensure_roles, role_url

    monkeypatch.setenv("PAYNB_PG_BIN", debian_pg_bin() or "")
    srv = Server(tmp_path / "deb")
    try:
        with srv.engine.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION amcheck")
        ensure_roles(srv.pg.url("postgres"), {READER: "reader-pw-1", "paynb_writer": "writer-pw-1"})
        reader = role_url(srv.pg, READER, "reader-pw-1", "paydb")
        env = Env(settings=Settings.load(env={"PAYNB_DATABASE_URL": reader}, dotenv=None))
        srv.zero_page(INDEX)

        report = check_indexes(env=env, tables=["invoices"])
        assert report.method == "probe" and [c.index for c in report.broken] == [INDEX]
        assert report.notes and f"TO {READER}" in report.notes[0] and "GRANT EXECUTE" in report.notes[0]
        assert report.to_dict()["notes"] == list(report.notes)
        with pytest.raises(InputError, match="may not run bt_index_check"):
            check_indexes(env=env, tables=["invoices"], method="amcheck")
        doctor = {c.name: c for c in run_checks(env.settings)}["index checks"]
        assert doctor.status == "warn" and f"TO {READER}" in doctor.detail

        with srv.engine.begin() as conn:
            conn.exec_driver_sql(f"GRANT EXECUTE ON FUNCTION bt_index_check(regclass, boolean) TO {READER}")
        granted = check_indexes(env=env, tables=["invoices"])
        assert granted.method == "amcheck" and not granted.notes
        assert {c.name: c for c in run_checks(env.settings)}["index checks"].status == "ok"
        assert [c.index for c in granted.broken] == [INDEX]
    finally:
        srv.close()
        os.environ.pop("PAYNB_PG_BIN", None)
