"""A small hand-made PAD world for the triage and replay tests: accounts, stuck invoices, what CAS knows
(``paynb_sandbox.cfs_invoices``) and the settlement CSVs in the store (``paynb_sandbox.store_objects``).

It writes the same sandbox tables the generator fills, so the sandbox machinery (CfsState.from_database,
upload_store_objects) serves it exactly as it serves the generated data.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.cfs import CfsClient
from paynb.formats.settlement_csv import SettlementRow, write_settlement_csv
from paynb.sandbox.cfs_server import CfsState, RunningCfsServer, start_cfs_server
from paynb.sandbox.postgres import READER, WRITER
from paynb.secrets import Secret
from paynb.settings import Settings
from paynb.timez import utcnow_naive
from tests.plugins.db import as_role
from tests.plugins.sandbox import SANDBOX_CFS_ID, SANDBOX_CFS_SECRET, SANDBOX_CONNECTOR, upload_store_objects

NOW = utcnow_naive().replace(microsecond=0)


@dataclass
class Account:
    payment_account_id: int
    auth_account_id: str
    cfs_id: int | None
    party: str
    account: str
    site: str


def padp(
    number: str,
    account: str,
    amount: str,
    *,
    status: str = "Fully PAID",
    record: str = "PADP",
    source: str = "RCPT-1",
    app_id: int = 1,
    day: date | None = None,
) -> SettlementRow:
    amt = Decimal(amount)
    paid = status.lower() == "fully paid"
    return SettlementRow(
        record_type=record,
        source_transaction_type="BCR-PAD Daily",
        source_transaction_number=source,
        application_id=app_id,
        application_date=day or NOW.date(),
        application_amount=amt if paid else Decimal("0"),
        customer_account=account,
        target_transaction_type="INV",
        target_transaction_number=number,
        target_transaction_original_amount=amt,
        target_transaction_outstanding_amount=Decimal("0") if paid else amt,
        target_transaction_status=status,
        reversal_reason_code=None if paid else "001",
        reversal_reason_desc=None if paid else "NSF",
    )


@dataclass
class PadWorld:
    url: str
    expected: dict[int, str] = field(default_factory=dict)
    _n: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.engine = sa.create_engine(self.url, poolclass=NullPool)

    def close(self) -> None:
        self.engine.dispose()

    def _insert(self, sql: str, params: dict) -> int | None:
        with self.engine.begin() as c:
            row = c.execute(sa.text(sql), params).first()
            return row[0] if row else None

    def account(
        self,
        *,
        cfs_status: str | None = "ACTIVE",
        pad_activation: datetime | None = None,
        has_nsf: datetime | None = None,
        inactive_rows: int = 0,
    ) -> Account:
        n = next(self._n)
        auth = f"9{n:04d}"
        pa = self._insert(
            "INSERT INTO payment_accounts (auth_account_id, name, payment_method, billable, pad_activation_date,"
            " has_nsf_invoices) VALUES (:a, :name, 'PAD', true, :act, :nsf) RETURNING id",
            {"a": auth, "name": f"Account {n}", "act": pad_activation, "nsf": has_nsf},
        )
        assert pa is not None
        party, acct, site = f"P{n:05d}", f"A{n:05d}", f"S{n:05d}"
        for i in range(inactive_rows):  # older rows after a bank change
            self._insert(
                "INSERT INTO cfs_accounts (account_id, cfs_party, cfs_account, cfs_site, status, payment_method)"
                " VALUES (:pa, :p, :a, :s, 'INACTIVE', 'PAD') RETURNING id",
                {"pa": pa, "p": party, "a": f"OLD{i}{acct}", "s": site},
            )
        cfs_id = None
        if cfs_status is not None:
            cfs_id = self._insert(
                "INSERT INTO cfs_accounts (account_id, cfs_party, cfs_account, cfs_site, status, payment_method)"
                " VALUES (:pa, :p, :a, :s, :st, 'PAD') RETURNING id",
                {"pa": pa, "p": party, "a": acct, "s": site, "st": cfs_status},
            )
        return Account(pa, auth, cfs_id, party, acct, site)

    def invoice(
        self,
        acct: Account,
        *,
        days_old: int = 30,
        total: str = "10.00",
        status: str = "APPROVED",
        method: str = "PAD",
        ref: str | None = None,
        ref_status: str = "ACTIVE",
        link_cfs: bool = True,
    ) -> int:
        inv = self._insert(
            "INSERT INTO invoices (created_by, created_on, invoice_status_code, total, paid, payment_account_id,"
            " cfs_account_id, payment_method_code, corp_type_code) VALUES ('test', :c, :st, :t, 0, :pa, :cfs, :m,"
            " 'BC') RETURNING id",
            {
                "c": NOW - timedelta(days=days_old, hours=1),
                "st": status,
                "t": Decimal(total),
                "pa": acct.payment_account_id,
                "cfs": acct.cfs_id if (ref and link_cfs) else None,
                "m": method,
            },
        )
        assert inv is not None
        if ref:
            self._insert(
                "INSERT INTO invoice_references (invoice_id, invoice_number, reference_number, status_code,"
                " created_on) VALUES (:i, :n, :r, :s, :c) RETURNING id",
                {
                    "i": inv,
                    "n": ref,
                    "r": f"PBC{inv}",
                    "s": ref_status,
                    "c": NOW - timedelta(days=days_old - 1),
                },
            )
        return inv

    def cfs_invoice(
        self, acct: Account, number: str, total: str, amount_due: str, *, present: bool = True
    ) -> None:
        self._insert(
            "INSERT INTO paynb_sandbox.cfs_invoices (cfs_party, cfs_account, cfs_site, invoice_number, total,"
            " amount_due, present, payment_method) VALUES (:p, :a, :s, :n, :t, :d, :pr, 'PAD') RETURNING 1",
            {
                "p": acct.party,
                "a": acct.account,
                "s": acct.site,
                "n": number,
                "t": Decimal(total),
                "d": Decimal(amount_due),
                "pr": present,
            },
        )

    def csv(self, key: str, rows: list[SettlementRow], header_style: str = "test") -> bytes:
        data = write_settlement_csv(rows, header_style).encode()
        self.put_object(key, data)
        return data

    def put_object(self, key: str, data: bytes, content_type: str = "text/csv") -> None:
        self._insert(
            "INSERT INTO paynb_sandbox.store_objects (key, content, content_type) VALUES (:k, :c, :t) RETURNING 1",
            {"k": key, "c": data, "t": content_type},
        )

    def settlement(self, file_name: str, *, processed: bool) -> int:
        rid = self._insert(
            "INSERT INTO cas_settlements (received_on, file_name, processed_on) VALUES (:r, :f, :p) RETURNING id",
            {
                "r": NOW - timedelta(days=5),
                "f": file_name,
                "p": NOW - timedelta(days=5) if processed else None,
            },
        )
        assert rid is not None
        return rid

    def payment(self, number: str, receipt: str, amount: str, status: str = "COMPLETED") -> None:
        self._insert(
            "INSERT INTO payments (payment_system_code, payment_method_code, payment_status_code, paid_amount,"
            " invoice_number, receipt_number, payment_date) VALUES ('PAYBC', 'PAD', :s, :a, :n, :r, :d)"
            " RETURNING id",
            {"s": status, "a": Decimal(amount), "n": number, "r": receipt, "d": NOW - timedelta(days=3)},
        )

    def expect(self, invoice_ids: list[int] | int, action: str) -> None:
        for i in [invoice_ids] if isinstance(invoice_ids, int) else invoice_ids:
            self.expected[i] = action


def day_name(days_ago: int) -> str:
    d = (NOW - timedelta(days=days_ago)).date()
    return f"BCR_PAYMENT_APPL_{d:%Y%m%d}.csv"


def build_pad_world(url: str) -> PadWorld:
    """Every branch of the PAD decision tree (docs/runbook.md#pad-decision-tree), with the expected action per invoice in ``world.expected``."""
    w = PadWorld(url)
    # -- no ACTIVE reference ------------------------------------------------------------------------------
    frozen = w.account(cfs_status="FREEZE", has_nsf=NOW - timedelta(days=40))
    w.expect([w.invoice(frozen), w.invoice(frozen, days_old=25)], "account_frozen_nsf")
    w.invoice(frozen, status="SETTLEMENT_SCHED", ref="REG09000001")  # NSF'd earlier: not APPROVED, not listed
    waiting = w.account(cfs_status="PENDING_PAD_ACTIVATION", pad_activation=NOW + timedelta(days=2))
    w.expect(w.invoice(waiting, days_old=22), "wait_pad_activation")
    pending = w.account(cfs_status="PENDING")
    w.expect(w.invoice(pending), "wait_cfs_account")
    errored = w.account(cfs_status="ACTIVE", inactive_rows=1)
    w.expect(w.invoice(errored), "check_create_invoices")
    nothing = w.account(cfs_status=None)
    w.expect(w.invoice(nothing), "no_pad_cfs_account")
    w.invoice(errored, days_old=5)  # too young: not stuck
    # -- ACTIVE reference, CAS not charged -------------------------------------------------------------------
    unpaid = w.account()
    w.cfs_invoice(unpaid, "REG00100001", "30.00", "30.00")
    w.expect([w.invoice(unpaid, ref="REG00100001") for _ in range(3)], "escalate_cas_not_debited")
    # -- ACTIVE reference, CAS says 404 --------------------------------------------------------------------
    missing = w.account()
    w.cfs_invoice(missing, "REG00200001", "10.00", "10.00", present=False)
    w.expect(w.invoice(missing, ref="REG00200001"), "cas_invoice_missing")
    # -- paid in CAS, CSV never processed (ar/) ----------------------------------------------------------------
    paid = w.account()
    w.cfs_invoice(paid, "REG00300001", "20.00", "0")
    ids = [w.invoice(paid, ref="REG00300001"), w.invoice(paid, ref="REG00300001")]
    w.expect(ids, "replay_settlement_csv")
    # the same file carries an NSF for another account and one already-applied row
    nsf = w.account()
    w.invoice(nsf, status="PAID", ref="REG00300009", ref_status="COMPLETED")
    done = w.account()
    w.invoice(done, status="PAID", ref="REG00300008", ref_status="COMPLETED")
    w.payment("REG00300008", "RCPT-DONE", "15.00")
    w.csv(
        f"ar/{day_name(10)}",
        [
            padp("REG00300008", done.account, "15.00", source="RCPT-DONE", app_id=11),
            padp("REG00300001", paid.account, "20.00", source="RCPT-A", app_id=12),
            padp("REG00300009", nsf.account, "12.00", status="Not PAID", source="RCPT-N", app_id=13),
            padp(
                "REG00300009",
                nsf.account,
                "12.00",
                status="Not PAID",
                record="PADR",
                source="RCPT-N",
                app_id=14,
            ),
        ],
    )
    # -- paid in CAS, CSV failed mid-way (cas_settlements row, processed_on NULL) -----------------------------
    midway = w.account()
    w.cfs_invoice(midway, "REG00400001", "40.00", "0")
    w.expect(w.invoice(midway, ref="REG00400001", total="40.00"), "settlement_failed_midway")
    w.csv(
        f"ar/{day_name(8)}",
        [padp("REG00400001", midway.account, "40.00", source="RCPT-M", app_id=21)],
        header_style="parser",
    )
    w.settlement(day_name(8), processed=False)
    # -- paid in CAS, only the legacy MinIO bucket has the file ----------------------------------------------
    legacy = w.account()
    w.cfs_invoice(legacy, "REG00500001", "50.00", "0")
    w.expect(w.invoice(legacy, ref="REG00500001", total="50.00"), "replay_settlement_csv")
    w.csv(
        f"payment-sftp/{day_name(12)}",
        [padp("REG00500001", legacy.account, "50.00", source="RCPT-L", app_id=31)],
    )
    # -- paid in CAS, processed file, but the row did not apply ----------------------------------------------
    skipped = w.account()
    w.cfs_invoice(skipped, "REG00600001", "60.00", "0")
    w.expect(w.invoice(skipped, ref="REG00600001", total="60.00"), "settlement_row_not_applied")
    w.csv(f"ar/{day_name(6)}", [padp("REG00600001", skipped.account, "60.00", source="RCPT-S", app_id=41)])
    w.settlement(day_name(6), processed=True)
    # -- paid in CAS, no CSV anywhere ---------------------------------------------------------------------
    lost = w.account()
    w.cfs_invoice(lost, "REG00700001", "70.00", "0")
    w.expect(w.invoice(lost, ref="REG00700001", total="70.00"), "ask_cas_for_csv")
    # noise the search must survive: an ACK file and a file that is not a settlement CSV
    w.put_object(f"ar/{day_name(7)}.ACK", b"ack", content_type="text/plain")
    w.put_object("ar/notes_20990101.csv", b"this is not a settlement file\n")
    return w


_bucket_counter = itertools.count()


@dataclass
class PadEnv:
    world: PadWorld
    settings: Settings
    env: dict[str, str]
    cfs: RunningCfsServer
    bucket: str

    def client(self, **overrides) -> CfsClient:
        kwargs = {
            "base_url": self.cfs.url,
            "client_id": SANDBOX_CFS_ID,
            "client_secret": Secret(SANDBOX_CFS_SECRET),
            "pay_connector": Secret(SANDBOX_CONNECTOR),
            "backoff_s": 0.01,
            "concurrency": 4,
        }
        kwargs.update(overrides)
        return CfsClient(**kwargs)


@pytest.fixture
def pad_env(
    empty_db_url: str, s3_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PadEnv]:
    """The hand-made PAD world served like the sandbox: pay-db, S3 bucket (+ legacy bucket), CFS server."""
    world = build_pad_world(empty_db_url)
    bucket = f"pad-{os.getpid()}-{next(_bucket_counter)}"
    upload_store_objects(empty_db_url, s3_server.client(), bucket)
    server = start_cfs_server(
        CfsState.from_database(empty_db_url),
        credentials={SANDBOX_CFS_ID: SANDBOX_CFS_SECRET},
        pay_connector=SANDBOX_CONNECTOR,
    )
    env = {
        "PAYNB_ENVIRONMENT": "test",
        "PAYNB_DATABASE_URL": as_role(empty_db_url, READER),  # triage only reads
        "PAYNB_DATABASE_WRITE_URL": as_role(empty_db_url, WRITER),  # settlement replay's guard rows
        **s3_server.env(),
        "PAYNB_BUCKET": bucket,
        "PAYNB_LEGACY_SETTLEMENT_BUCKET": f"{bucket}-payment-sftp",
        "PAYNB_CFS_BASE_URL": server.url,
        "PAYNB_CFS_CLIENT_ID": SANDBOX_CFS_ID,
        "PAYNB_CFS_CLIENT_SECRET": SANDBOX_CFS_SECRET,
        "PAYNB_PAY_CONNECTOR_AUTH": SANDBOX_CONNECTOR,
        "PAYNB_DATA_DIR": str(tmp_path / "paynb-data"),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    try:
        yield PadEnv(world, Settings.load(env=env, dotenv=None), env, server, bucket)
    finally:
        server.stop()
        world.close()
