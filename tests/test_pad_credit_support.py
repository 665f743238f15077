"""Shared data and fixtures for the PAD credit tests (no tests here).

``open_world`` (the body of each module's ``world`` fixture): a small pay-db written by hand on ``empty_db_url`` (every case the credit flow must
refuse or handle), a CFS sandbox server loaded from it over real HTTP, and Settings pointing at both with
the intent ledger in a temporary folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.cfs import CfsClient
from paynb.sandbox.cfs_server import CfsState, RunningCfsServer, start_cfs_server
from paynb.sandbox.postgres import READER, WRITER
from paynb.secrets import Secret
from paynb.settings import Settings
from tests.plugins.db import as_role

CFS_ID = "paynb-credit-test"
CFS_SECRET = "credit-cfs-secret-61f0b2d9"
CONNECTOR = "credit-connector-0d93a7"
SITE_OK = ("41001", "42001", "43001")
SITE_FREEZE = ("41002", "42002", "43002")
PAID_ON = datetime(2026, 1, 15, 8, 0, 0)
EXTRA_PAD_INVOICES = 4  # more PAID PAD invoices on the same account, for the fault sequences


@dataclass
class CreditWorld:
    db_url: str
    settings: Settings
    server: RunningCfsServer
    ids: dict[str, Any] = field(default_factory=dict)
    _clients: list[CfsClient] = field(default_factory=list)

    def cfs(self, **overrides: Any) -> CfsClient:
        kwargs: dict[str, Any] = {"timeout_s": 5.0, "backoff_s": 0.01, "max_retries": 3}
        kwargs.update(overrides)
        client = CfsClient(self.settings, **kwargs)
        self._clients.append(client)
        return client

    def db_env(self) -> dict[str, str]:
        """The reader and writer URLs a paynb process gets (docs/roles.md)."""
        return {
            "PAYNB_DATABASE_URL": as_role(self.db_url, READER),
            "PAYNB_DATABASE_WRITE_URL": as_role(self.db_url, WRITER),
        }

    def admin(self) -> sa.Engine:
        return sa.create_engine(self.db_url, poolclass=NullPool)

    def execute(self, sql: str, **params: Any) -> None:
        eng = self.admin()
        try:
            with eng.begin() as c:
                c.execute(sa.text(sql), params)
        finally:
            eng.dispose()

    def scalar(self, sql: str, **params: Any) -> Any:
        eng = self.admin()
        try:
            with eng.connect() as c:
                return c.execute(sa.text(sql), params).scalar()
        finally:
            eng.dispose()

    def memos(self, key: str | None = None) -> list[dict]:
        with self.server.state.lock:
            memos = list(self.server.state.credit_memos.values())
        return [m for m in memos if key is None or key in m["comments"]]

    def snapshot(self) -> dict[str, Any]:
        """Everything a refused plan or apply must leave untouched."""
        eng = self.admin()
        try:
            with eng.connect() as c:
                snap = {
                    "credits": c.execute(sa.text("SELECT count(*) FROM credits")).scalar(),
                    "refunds_partial": c.execute(sa.text("SELECT count(*) FROM refunds_partial")).scalar(),
                    "invoices": c.execute(
                        sa.text(
                            "SELECT string_agg(id || ':' || invoice_status_code || ':' || coalesce(refund::text, '-') "
                            "|| ':' || coalesce(refund_date::text, '-'), ',' ORDER BY id) FROM invoices"
                        )
                    ).scalar(),
                    "pad_credit": c.execute(
                        sa.text(
                            "SELECT string_agg(id || ':' || coalesce(pad_credit::text, '-'), ',' ORDER BY id) "
                            "FROM payment_accounts"
                        )
                    ).scalar(),
                }
        finally:
            eng.dispose()
        snap["cfs_memos"] = len(self.memos())
        snap["intents"] = _intent_count(self.settings)
        return snap

    def close(self) -> None:
        for client in self._clients:
            client.close()


def _intent_count(settings: Settings) -> int:
    """Intents in paynb's ledger (a SQLite file in the data folder)."""
    path = Path(settings.data_dir) / "ledger.sqlite"
    if not path.exists():
        return 0
    eng = sa.create_engine(f"sqlite:///{path}", poolclass=NullPool)
    try:
        with eng.connect() as c:
            if not c.execute(
                sa.text("SELECT count(*) FROM sqlite_master WHERE name = 'paynb_intents'")
            ).scalar():
                return 0
            return int(c.execute(sa.text("SELECT count(*) FROM paynb_intents")).scalar() or 0)
    finally:
        eng.dispose()


# -- data ---------------------------------------------------------------------------------------------------------
def _one(c: sa.Connection, sql: str, **params: Any) -> Any:
    return c.execute(sa.text(sql), params).scalar_one()


def _dist(c: sa.Connection, name: str, project: str, *, end: date | None = None, **links: int | None) -> int:
    return _one(
        c,
        "INSERT INTO distribution_codes (created_on, created_by, name, client, responsibility_centre, service_line, "
        "stob, project_code, start_date, end_date, service_fee_distribution_code_id, "
        "statutory_fees_gst_distribution_code_id, service_fee_gst_distribution_code_id) VALUES (now(), 'test', :n, "
        "'112', '32363', '34725', '4375', :p, '2020-01-01', :end, :svc, :sgst, :vgst) RETURNING distribution_code_id",
        n=name,
        p=project,
        end=end,
        svc=links.get("svc"),
        sgst=links.get("sgst"),
        vgst=links.get("vgst"),
    )


def _account(c: sa.Connection, name: str, method: str, pad_credit: str | None) -> int:
    return _one(
        c,
        "INSERT INTO payment_accounts (auth_account_id, name, payment_method, billable, pad_credit) "
        "VALUES (:auth, :n, :m, true, :pc) RETURNING id",
        auth=name.lower().replace(" ", "-"),
        n=name,
        m=method,
        pc=pad_credit,
    )


def _cfs_account(c: sa.Connection, account_id: int, site: tuple[str, str, str], status: str) -> int:
    return _one(
        c,
        "INSERT INTO cfs_accounts (cfs_party, cfs_account, cfs_site, account_id, status, payment_method) "
        "VALUES (:p, :a, :s, :acc, :st, 'PAD') RETURNING id",
        p=site[0],
        a=site[1],
        s=site[2],
        acc=account_id,
        st=status,
    )


def _invoice(
    c: sa.Connection,
    *,
    account: int,
    cfs_account: int | None,
    method: str,
    status: str,
    lines: list[dict[str, Any]],
    ref_status: str | None,
    site: tuple[str, str, str] | None,
    cfs_present: bool = True,
) -> dict[str, Any]:
    total = sum(
        Decimal(ln["total"])
        + Decimal(ln.get("service", "0"))
        + Decimal(ln.get("sgst", "0"))
        + Decimal(ln.get("vgst", "0"))
        for ln in lines
    )
    service = sum(Decimal(ln.get("service", "0")) for ln in lines)
    gst = sum(Decimal(ln.get("sgst", "0")) + Decimal(ln.get("vgst", "0")) for ln in lines)
    paid = total if status == "PAID" else Decimal("0")
    inv = _one(
        c,
        "INSERT INTO invoices (created_by, created_on, invoice_status_code, total, paid, payment_date, service_fees, "
        "gst, corp_type_code, payment_account_id, cfs_account_id, payment_method_code) VALUES ('test', :on, :st, "
        ":total, :paid, :pdate, :svc, :gst, 'BC', :acc, :cfs, :m) RETURNING id",
        on=PAID_ON - timedelta(days=2),
        st=status,
        total=total,
        paid=paid,
        pdate=PAID_ON if status == "PAID" else None,
        svc=service,
        gst=gst,
        acc=account,
        cfs=cfs_account,
        m=method,
    )
    line_ids = []
    for ln in lines:
        line_ids.append(
            _one(
                c,
                "INSERT INTO payment_line_items (invoice_id, filing_fees, fee_schedule_id, quantity, description, "
                "total, line_item_status_code, fee_distribution_id, service_fees, statutory_fees_gst, "
                "service_fees_gst) VALUES (:inv, :total, :fs, 1, :d, :total, :lst, :dist, :svc, :sgst, :vgst) "
                "RETURNING id",
                inv=inv,
                total=Decimal(ln["total"]),
                fs=ln["fee_schedule"],
                d=ln["description"],
                lst=ln.get("status", "ACTIVE"),
                dist=ln["dist"],
                svc=Decimal(ln.get("service", "0")),
                sgst=Decimal(ln.get("sgst", "0")),
                vgst=Decimal(ln.get("vgst", "0")),
            )
        )
    number = f"REG{inv:08d}"
    if ref_status is not None:
        c.execute(
            sa.text(
                "INSERT INTO invoice_references (invoice_id, invoice_number, status_code, created_on) "
                "VALUES (:inv, :n, :st, :on)"
            ),
            {"inv": inv, "n": number, "st": ref_status, "on": PAID_ON - timedelta(days=1)},
        )
        if site is not None:
            c.execute(
                sa.text(
                    "INSERT INTO paynb_sandbox.cfs_invoices (cfs_party, cfs_account, cfs_site, invoice_number, "
                    "total, amount_due, present, payment_method) VALUES (:p, :a, :s, :n, :t, :due, :present, 'PAD')"
                ),
                {
                    "p": site[0],
                    "a": site[1],
                    "s": site[2],
                    "n": number,
                    "t": total,
                    "due": Decimal("0") if status == "PAID" else total,
                    "present": cfs_present,
                },
            )
    return {"id": inv, "lines": line_ids, "number": number, "total": total}


def seed_credit_data(url: str, extra_invoices: int = EXTRA_PAD_INVOICES) -> dict[str, Any]:
    """The hand-made pay-db of the credit tests. Returns named ids."""
    eng = sa.create_engine(url, poolclass=NullPool)
    ids: dict[str, Any] = {}
    try:
        with eng.begin() as c:
            c.execute(
                sa.text(
                    "INSERT INTO fee_codes (code, amount) VALUES ('EN101', 30), ('EN102', 20), ('EN103', 10)"
                )
            )
            c.execute(
                sa.text(
                    "INSERT INTO filing_types (code, description) VALUES ('OTANN', 'Annual Report'), "
                    "('OTADD', 'Change of Address'), ('OTCGM', 'Change of Directors')"
                )
            )
            fs = {}
            for ftype, fee in (("OTANN", "EN101"), ("OTADD", "EN102"), ("OTCGM", "EN103")):
                fs[ftype] = _one(
                    c,
                    "INSERT INTO fee_schedules (filing_type_code, corp_type_code, fee_code, fee_start_date, created_on, "
                    "created_by) VALUES (:f, 'BC', :fee, '2020-01-01', now(), 'test') RETURNING fee_schedule_id",
                    f=ftype,
                    fee=fee,
                )
            svc = _dist(c, "Service Fee", "3200046")
            sgst = _dist(c, "Statutory GST", "3200047")
            vgst = _dist(c, "Service GST", "3200048")
            fee1 = _dist(c, "Annual Report", "3200000", svc=svc, sgst=sgst, vgst=vgst)
            fee2 = _dist(c, "Change of Address", "3200001", svc=svc, sgst=sgst, vgst=vgst)
            expired = _dist(c, "Old GL", "3200099", end=date(2021, 12, 31), svc=svc, sgst=sgst, vgst=vgst)
            ids["dist"] = {
                "svc": svc,
                "sgst": sgst,
                "vgst": vgst,
                "fee1": fee1,
                "fee2": fee2,
                "expired": expired,
            }

            pa = _account(c, "Credit Co", "PAD", "0.00")
            pa_freeze = _account(c, "Frozen Co", "PAD", None)
            pa_cc = _account(c, "Card Co", "DIRECT_PAY", None)
            ca = _cfs_account(c, pa, SITE_OK, "ACTIVE")
            ca_freeze = _cfs_account(c, pa_freeze, SITE_FREEZE, "FREEZE")
            ids.update(account=pa, account_freeze=pa_freeze, cfs_account=ca, cfs_account_freeze=ca_freeze)

            two_lines = [
                {
                    "total": "30.00",
                    "service": "1.50",
                    "description": "Annual Report",
                    "fee_schedule": fs["OTANN"],
                    "dist": fee1,
                },
                {
                    "total": "20.00",
                    "service": "1.50",
                    "description": "Change of Address",
                    "fee_schedule": fs["OTADD"],
                    "dist": fee2,
                },
            ]
            common = {"account": pa, "cfs_account": ca, "method": "PAD", "site": SITE_OK}
            ids["pad"] = _invoice(c, status="PAID", lines=two_lines, ref_status="COMPLETED", **common)
            ids["pad_extra"] = [
                _invoice(c, status="PAID", lines=two_lines, ref_status="COMPLETED", **common)
                for _ in range(extra_invoices)
            ]
            ids["pad_gst"] = _invoice(
                c,
                status="PAID",
                ref_status="COMPLETED",
                lines=[
                    {
                        "total": "10.00",
                        "service": "1.50",
                        "sgst": "0.50",
                        "vgst": "0.08",
                        "description": "Directors",
                        "fee_schedule": fs["OTCGM"],
                        "dist": fee1,
                    }
                ],
                **common,
            )
            ids["approved_in_cfs"] = _invoice(
                c, status="APPROVED", lines=two_lines[:1], ref_status="ACTIVE", **common
            )
            ids["approved_new"] = _invoice(
                c, status="APPROVED", lines=two_lines[:1], ref_status=None, **common
            )
            ids["settlement_sched"] = _invoice(
                c, status="SETTLEMENT_SCHED", lines=two_lines[:1], ref_status="ACTIVE", **common
            )
            ids["cfs_missing"] = _invoice(
                c, status="PAID", lines=two_lines[:1], ref_status="COMPLETED", cfs_present=False, **common
            )
            ids["expired_gl"] = _invoice(
                c,
                status="PAID",
                ref_status="COMPLETED",
                lines=[{**two_lines[0], "dist": expired}],
                **common,
            )
            ids["freeze"] = _invoice(
                c,
                account=pa_freeze,
                cfs_account=ca_freeze,
                method="PAD",
                status="PAID",
                lines=two_lines,
                ref_status="COMPLETED",
                site=SITE_FREEZE,
            )
            ids["direct_pay"] = _invoice(
                c,
                account=pa_cc,
                cfs_account=None,
                method="DIRECT_PAY",
                status="PAID",
                lines=two_lines,
                ref_status="COMPLETED",
                site=None,
            )
            c.execute(
                sa.text(
                    "INSERT INTO paynb_sandbox.scenarios (name, description, runbook_ref, table_name, ids) "
                    "VALUES ('pad_partial_credit_candidate', 'test candidate', 'docs/pad-credit.md', 'invoices', :ids)"
                ),
                {"ids": [ids["pad"]["id"]]},
            )
    finally:
        eng.dispose()
    return ids


def credit_settings(db_url: str, cfs_url: str, data_dir: Path) -> Settings:
    # paynb reads as the reader and applies as the writer, as in production (docs/roles.md)
    return Settings(
        database_url=Secret(as_role(db_url, READER)),
        database_write_url=Secret(as_role(db_url, WRITER)),
        cfs_base_url=cfs_url,
        cfs_client_id=CFS_ID,
        cfs_client_secret=Secret(CFS_SECRET),
        pay_connector_auth=Secret(CONNECTOR),
        data_dir=data_dir,
        environment="test",
    )


def open_world(
    empty_db_url: str, tmp_path: Path, extra_invoices: int = EXTRA_PAD_INVOICES
) -> Iterator[CreditWorld]:
    """Body of the ``world`` fixture of each credit test module: ``yield from open_world(...)``."""
    ids = seed_credit_data(empty_db_url, extra_invoices)
    server = start_cfs_server(
        CfsState.from_database(empty_db_url), credentials={CFS_ID: CFS_SECRET}, pay_connector=CONNECTOR
    )
    world = CreditWorld(
        empty_db_url, credit_settings(empty_db_url, server.url, tmp_path / "paynb-data"), server, ids
    )
    try:
        yield world
    finally:
        world.close()
        server.stop()
