"""Shared data for the routing slip tests (no tests here): a small hand-made pay-db on ``empty_db_url``
written with the sandbox's own :func:`paynb.sandbox.routing_slips.insert_slip`, a CFS sandbox server loaded
from it over real HTTP (one receipt per slip), and an Env pointing at both with a private ledger."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.cfs import CfsClient
from paynb.context import Env
from paynb.sandbox.cfs_server import CfsState, RunningCfsServer, start_cfs_server
from paynb.sandbox.postgres import READER, WRITER
from paynb.sandbox.routing_slips import insert_slip, slip_number
from paynb.secrets import Secret
from paynb.settings import Settings
from tests.plugins.db import as_role

CFS_ID, CFS_SECRET = "paynb-rs-test", "rs-cfs-secret-4a9d11c7"
FAS_ID, FAS_SECRET = "paynb-rs-test-fas", "rs-fas-secret-77e0b2a5"
CONNECTOR = "rs-connector-1f3b"
OPERATOR = "ops-alice"

# name -> (slip kwargs, children kwargs)
SLIPS: dict[str, dict[str, Any]] = {
    "ready": {
        "total": "100.00",
        "invoices": [("REFUNDED", "30.00"), ("REFUNDED", "20.00"), ("CANCELLED", "7.00")],
    },
    "parent": {"total": "60.00", "invoices": [("REFUNDED", "40.00")]},
    "hold": {"total": "50.00", "status": "HOLD", "invoices": [("CREDITED", "10.00")]},
    "complete": {"total": "30.00", "status": "COMPLETE", "invoices": [("REFUNDED", "30.00")]},
    "blocked": {"total": "80.00", "invoices": [("REFUNDED", "30.00"), ("PAID", "25.00")]},
    "refund_pending": {"total": "40.00", "invoices": [("REFUND_REQUESTED", "40.00")]},
    "void": {"total": "20.00", "status": "VOID", "invoices": []},
    "nsf": {"total": "20.00", "status": "NSF", "invoices": [("REFUNDED", "5.00")]},
    "refund_requested": {"total": "20.00", "status": "REFUND_REQUESTED", "invoices": []},
    "link_stuck": {"total": "30.00", "invoices": [("REFUNDED", "10.00")]},
    "cfs_inactive": {"total": "30.00", "invoices": [("REFUNDED", "10.00")]},
    "receipt_reversed": {"total": "30.00", "invoices": [("REFUNDED", "10.00")]},
    "receipt_missing": {"total": "30.00", "invoices": [("REFUNDED", "10.00")]},
    "partial_pending": {"total": "30.00", "invoices": [("REFUNDED", "10.00")]},
}


@dataclass
class RsWorld:
    db_url: str
    settings: Settings
    server: RunningCfsServer
    numbers: dict[str, str] = field(default_factory=dict)
    ids: dict[str, dict[str, Any]] = field(default_factory=dict)
    _clients: list[CfsClient] = field(default_factory=list)

    def fas(self) -> CfsClient:
        client = CfsClient(self.settings, credential="FAS", timeout_s=5.0, backoff_s=0.01, max_retries=3)
        self._clients.append(client)
        return client

    def env(self, operator: str = OPERATOR, **overrides: Any) -> Env:
        return Env(settings=self.settings, operator=operator, overrides={"cfs_fas": self.fas(), **overrides})

    def scalar(self, sql: str, **params: Any) -> Any:
        eng = sa.create_engine(self.db_url, poolclass=NullPool)
        try:
            with eng.connect() as c:
                return c.execute(sa.text(sql), params).scalar()
        finally:
            eng.dispose()

    def execute(self, sql: str, **params: Any) -> None:
        eng = sa.create_engine(self.db_url, poolclass=NullPool)
        try:
            with eng.begin() as c:
                c.execute(sa.text(sql), params)
        finally:
            eng.dispose()

    def receipt_status(self, number: str) -> str:
        with self.server.state.lock:
            found = [r["status"] for k, r in self.server.state.receipts.items() if k[3] == number]
        return found[0] if found else "MISSING"

    def state(self, name: str) -> dict[str, Any]:
        """What matters of one slip: pay-db status, suffix, CFS account, which invoices are attached, and
        the CFS status of each receipt the void would reverse."""
        number = self.numbers[name]
        eng = sa.create_engine(self.db_url, poolclass=NullPool)
        try:
            with eng.connect() as c:
                slip = (
                    c.execute(
                        sa.text(
                            "SELECT status, cas_version_suffix, remaining_amount, payment_account_id FROM "
                            "routing_slips WHERE number = :n"
                        ),
                        {"n": number},
                    )
                    .mappings()
                    .one()
                )
                acc = c.execute(
                    sa.text("SELECT status FROM cfs_accounts WHERE account_id = :a ORDER BY id DESC LIMIT 1"),
                    {"a": slip["payment_account_id"]},
                ).scalar()
                attached = [
                    r[0]
                    for r in c.execute(
                        sa.text("SELECT id FROM invoices WHERE routing_slip = :n ORDER BY id"), {"n": number}
                    )
                ]
        finally:
            eng.dispose()
        receipts = [number] + [f"{n}L" for n in self.children(name)]
        return {
            "status": slip["status"],
            "suffix": int(slip["cas_version_suffix"]),
            "remaining": slip["remaining_amount"],
            "cfs_account": acc,
            "attached": attached,
            "receipts": {r: self.receipt_status(r) for r in receipts},
        }

    def add_slip(self, name: str, *, children: int = 0, invoices: int = 2) -> str:
        """One more voidable slip (refunded invoices, ``children`` LINKED children) in pay-db and its
        receipts in CFS. Returns its number."""
        base = 93000000 + 100 * len(self.numbers)
        eng = sa.create_engine(self.db_url, poolclass=NullPool)
        try:
            with eng.begin() as c:
                made = insert_slip(
                    c, number=slip_number(base), total="90.00", invoices=[("REFUNDED", "10.00")] * invoices
                )
                kids = [
                    insert_slip(
                        c,
                        number=slip_number(base + 10 + 10 * j),
                        total="15.00",
                        status="LINKED",
                        parent_number=made["number"],
                        remaining="0",
                    )
                    for j in range(children)
                ]
                site = c.execute(
                    sa.text("SELECT cfs_party, cfs_account, cfs_site FROM cfs_accounts WHERE id = :i"),
                    {"i": made["cfs_account"]},
                ).one()
        finally:
            eng.dispose()
        self.numbers[name], self.ids[name] = made["number"], made
        self.server.state.add_site(*site, payment_method="INTERNAL")
        self.server.state.add_receipt(*site, made["number"], "90.00", payment_method="CASH RCPT")
        for j, kid in enumerate(kids):
            self.numbers[f"{name}.child{j}"], self.ids[f"{name}.child{j}"] = kid["number"], kid
            self.server.state.add_receipt(*site, kid["number"] + "L", "15.00", payment_method="CASH RCPT")
        return made["number"]

    def children(self, name: str) -> list[str]:
        return [self.numbers[k] for k in self.numbers if k.startswith(f"{name}.child")]

    def close(self) -> None:
        for client in self._clients:
            client.close()


def seed(url: str) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    eng = sa.create_engine(url, poolclass=NullPool)
    numbers: dict[str, str] = {}
    ids: dict[str, dict[str, Any]] = {}
    try:
        with eng.begin() as c:
            for i, (name, kw) in enumerate(SLIPS.items()):
                ids[name] = insert_slip(c, number=slip_number(91000000 + 10 * i), **kw)
                numbers[name] = ids[name]["number"]
            for name, count in (("parent", 1), ("link_stuck", 1)):
                for j in range(count):
                    child = f"{name}.child{j}"
                    ids[child] = insert_slip(
                        c,
                        number=slip_number(92000000 + 10 * len(ids)),
                        total="40.00",
                        status="LINKED",
                        parent_number=numbers[name],
                        remaining="0",
                    )
                    numbers[child] = ids[child]["number"]
            c.execute(
                sa.text("UPDATE cfs_accounts SET status = 'ACTIVE' WHERE id = :i"),
                {"i": ids["link_stuck.child0"]["cfs_account"]},
            )
            c.execute(
                sa.text("UPDATE cfs_accounts SET status = 'INACTIVE' WHERE id = :i"),
                {"i": ids["cfs_inactive"]["cfs_account"]},
            )
            c.execute(
                sa.text("UPDATE cfs_accounts SET status = 'FREEZE' WHERE id = :i"),
                {"i": ids["nsf"]["cfs_account"]},
            )
            inv = ids["partial_pending"]["invoices"][0]
            pli = c.execute(
                sa.text("SELECT min(id) FROM payment_line_items WHERE invoice_id = :i"), {"i": inv}
            ).scalar_one()
            c.execute(
                sa.text(
                    "INSERT INTO refunds_partial (payment_line_item_id, invoice_id, refund_type, refund_amount, "
                    "created_on, created_by, status, is_credit) VALUES (:p, :i, 'BASE_FEES', 5, now(), 'test', "
                    "'REFUND_REQUESTED', false)"
                ),
                {"p": pli, "i": inv},
            )
    finally:
        eng.dispose()
    return numbers, ids


def rs_settings(db_url: str, cfs_url: str, data_dir: Path, operators: str = OPERATOR) -> Settings:
    return Settings(
        database_url=Secret(as_role(db_url, READER)),  # the sandbox's roles (docs/roles.md)
        database_write_url=Secret(as_role(db_url, WRITER)),
        cfs_base_url=cfs_url,
        cfs_client_id=CFS_ID,
        cfs_client_secret=Secret(CFS_SECRET),
        cfs_fas_client_id=FAS_ID,
        cfs_fas_client_secret=Secret(FAS_SECRET),
        pay_connector_auth=Secret(CONNECTOR),
        data_dir=data_dir,
        rs_void_operators=operators,
        environment="test",
    )


def open_world(empty_db_url: str, tmp_path: Path) -> Iterator[RsWorld]:
    numbers, ids = seed(empty_db_url)
    state = CfsState.from_database(empty_db_url)
    with state.lock:
        for key in list(state.receipts):
            if key[3] == numbers["receipt_reversed"]:
                state.receipts[key]["status"] = "REV"
            if key[3] == numbers["receipt_missing"]:
                del state.receipts[key]
    server = start_cfs_server(
        state, credentials={CFS_ID: CFS_SECRET, FAS_ID: FAS_SECRET}, pay_connector=CONNECTOR
    )
    world = RsWorld(
        empty_db_url, rs_settings(empty_db_url, server.url, tmp_path / "paynb-data"), server, numbers, ids
    )
    try:
        yield world
    finally:
        world.close()
        server.stop()
