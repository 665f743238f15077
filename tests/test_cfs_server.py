"""The CFS sandbox server itself: loading from pay-db, state changes, knobs, and the command line."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.cfs import CfsClient, CfsInvoiceRef
from paynb.errors import SandboxError
from paynb.sandbox.cfs_server import CfsState, PayloadError, encode_json, start_cfs_server
from paynb.secrets import Secret
from tests.plugins.cfs import ACCOUNT, CREDIT_MEMO, PAID, PARTY, SITE, UNPAID, cfs_control, small_cfs_state

SEED_SQL = """
INSERT INTO payment_accounts (id, auth_account_id, name, payment_method) VALUES
  (1, '1001', 'Acme Holdings', 'PAD'), (2, '1002', 'Bravo Ltd', 'PAD');
INSERT INTO cfs_accounts (id, account_id, cfs_party, cfs_account, cfs_site, status, payment_method) VALUES
  (1, 1, '11', '21', '31', 'INACTIVE', 'PAD'),
  (2, 1, '11', '21', '31', 'ACTIVE', 'PAD'),
  (3, 2, '12', '22', '32', 'FREEZE', 'PAD'),
  (4, 2, NULL, NULL, NULL, 'PENDING', 'ONLINE_BANKING');
INSERT INTO paynb_sandbox.cfs_invoices
  (cfs_party, cfs_account, cfs_site, invoice_number, total, amount_due, present, payment_method) VALUES
  ('11', '21', '31', 'REG00000101', 150.00, 150.00, true, 'PAD'),
  ('11', '21', '31', 'REG00000102', 80.25, 0, true, 'PAD'),
  ('12', '22', '32', 'REG00000103', 10.00, 10.00, false, 'PAD'),
  (NULL, NULL, NULL, 'REG00000104', 5.00, 5.00, true, 'PAD');
INSERT INTO credits (id, cfs_identifier, is_credit_memo, amount, remaining_amount, account_id, details, cfs_site)
  VALUES (1, '700001', true, 40.5, 15.25, 1, 'Partial invoice credit for 77', '31'),
         (2, 'RCPT00000009', false, 60, 60, 1, 'on account', '31');
INSERT INTO payments (payment_system_code, payment_method_code, payment_status_code, paid_amount, payment_date,
                      invoice_number, receipt_number, payment_account_id)
  VALUES ('PAYBC', 'PAD', 'COMPLETED', 80.25, '2026-07-02 08:00', 'REG00000102', '20260702001', 1),
         ('PAYBC', 'PAD', 'FAILED', 0, '2026-07-03 08:00', 'REG00000101', '20260703001', 1);
"""


def test_state_from_database(empty_db_url: str) -> None:
    engine = sa.create_engine(empty_db_url, poolclass=NullPool)
    with engine.begin() as conn:
        for statement in SEED_SQL.split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)
    engine.dispose()

    state = CfsState.from_database(empty_db_url)
    assert state.summary() == {
        "sites": 2,
        "invoices": 2,
        "missing_invoices": 1,
        "receipts": 2,
        "credit_memos": 1,
    }
    assert state.sites[("11", "21", "31")]["status"] == "ACTIVE"  # newest row wins
    assert state.sites[("11", "21", "31")]["party_name"] == "Acme Holdings"
    assert state.invoices[("11", "21", "31", "REG00000101")]["amount_due"] == Decimal("150.00")
    assert ("12", "22", "32", "REG00000103") in state.missing_invoices
    cm = state.credit_memos[("11", "21", "31", "700001")]
    assert (cm["total"], cm["amount_due"]) == (Decimal("-40.50"), Decimal("-15.25"))
    receipt = state.receipts[("11", "21", "31", "20260702001")]
    assert receipt["invoices"] == [{"invoice_number": "REG00000102", "amount_applied": Decimal("80.25")}]
    assert state.invoices[("11", "21", "31", "REG00000102")]["receipts"] == ["20260702001"]

    with start_cfs_server(state, credentials={"id": "secret-1"}) as server:
        client = CfsClient(
            base_url=server.url,
            client_id="id",
            client_secret=Secret("secret-1"),
            pay_connector=Secret(""),
            backoff_s=0.01,
        )
        refs = [
            CfsInvoiceRef("11", "21", "31", "REG00000101"),
            CfsInvoiceRef("11", "21", "31", "REG00000102"),
            CfsInvoiceRef("12", "22", "32", "REG00000103"),
        ]
        results = client.get_invoices(refs)
        assert [results[r].status for r in refs] == ["ok", "ok", "not_found"]
        assert [results[r].amount_due for r in refs[:2]] == [Decimal("150.00"), Decimal("0.00")]
        assert client.get_credit_memo("11", "21", "31", "700001")["amount_due"] == Decimal("-15.25")
        assert client.get_receipt("11", "21", "31", "RCPT00000009")["unapplied_amount"] == Decimal("60.00")

        # the database changes; a reload picks it up
        engine = sa.create_engine(empty_db_url, poolclass=NullPool)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE paynb_sandbox.cfs_invoices SET amount_due = 0 WHERE invoice_number = 'REG00000101'"
            )
        engine.dispose()
        assert cfs_control(server, "reload", {})["invoices"] == 2
        assert client.get_invoice("11", "21", "31", "REG00000101")["amount_due"] == Decimal("0.00")


def test_state_from_a_database_without_the_sandbox_schema(empty_db_url: str) -> None:
    engine = sa.create_engine(empty_db_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA paynb_sandbox CASCADE")
    engine.dispose()
    with pytest.raises(SandboxError, match="paynb_sandbox.cfs_invoices"):
        CfsState.from_database(empty_db_url)


def test_state_round_trips_through_a_dict() -> None:
    state = small_cfs_state()
    state.create_credit_memo(
        PARTY,
        ACCOUNT,
        SITE,
        {
            "batch_source": "MANUAL-OTHER",
            "cust_trx_type": "BC_REG_CREDIT_MEMO",
            "comments": f"for {UNPAID}",
            "lines": [{"unit_price": "-4.10", "distribution": [{"amount": "-4.10", "account": "a.b.c"}]}],
        },
    )
    dumped = json.loads(json.dumps(state.to_dict()))
    again = CfsState.from_dict(dumped)
    assert again.to_dict() == state.to_dict()
    nxt = again.create_credit_memo(
        PARTY, ACCOUNT, SITE, {"batch_source": "x", "cust_trx_type": "y", "lines": [{"unit_price": "-1"}]}
    )
    assert int(nxt["credit_memo_number"]) > max(int(k[3]) for k in state.credit_memos)


def test_credit_memo_changes_credit_state() -> None:
    state = small_cfs_state()
    before = state.site_credit(PARTY, ACCOUNT, SITE)
    cm = state.create_credit_memo(
        PARTY,
        ACCOUNT,
        SITE,
        {
            "batch_source": "MANUAL-OTHER",
            "cust_trx_type": "BC_REG_CREDIT_MEMO",
            "comments": f"credit {PAID}",
            "lines": [{"unit_price": "-20.00", "quantity": 1}, {"unit_price": "-1.50", "quantity": 2}],
        },
    )
    assert cm["amount_due"] == Decimal("-23.00")
    assert state.site_credit(PARTY, ACCOUNT, SITE) == before + Decimal("23.00")
    assert state.invoices[(PARTY, ACCOUNT, SITE, PAID)]["credit_memos"] == [cm["credit_memo_number"]]
    assert state.invoices[(PARTY, ACCOUNT, SITE, UNPAID)]["credit_memos"] == []
    # CAS later applies the memo to the next PAD invoice (a CSV CMAP row)
    state.apply_credit_memo(PARTY, ACCOUNT, SITE, cm["credit_memo_number"], UNPAID, "23.00")
    assert state.invoices[(PARTY, ACCOUNT, SITE, UNPAID)]["amount_due"] == Decimal("108.50")
    assert state.credit_memos[(PARTY, ACCOUNT, SITE, cm["credit_memo_number"])]["amount_due"] == 0
    with pytest.raises(PayloadError):
        state.apply_credit_memo(PARTY, ACCOUNT, SITE, CREDIT_MEMO, UNPAID, "999")


def test_credit_memo_for_unknown_site_is_404(cfs_server, cfs_client) -> None:
    with pytest.raises(Exception) as info:
        cfs_client.create_credit_memo(
            "9", "9", "9", {"batch_source": "x", "cust_trx_type": "y", "lines": [{"unit_price": "-1"}]}
        )
    assert getattr(info.value, "status", None) == 404


def test_knobs_endpoint(cfs_server) -> None:
    knobs = cfs_control(cfs_server, "knobs", {"latency_ms": 5, "burst_429": 2, "fail_next": [["invs/", 503]]})
    assert (knobs["latency_ms"], knobs["burst_429"], knobs["fail_next"]) == (5, 2, [["invs/", 503]])
    bad = requests.post(f"{cfs_server.url}/_sandbox/knobs", json={"warp_speed": 9}, timeout=5)
    assert bad.status_code == 400 and "warp_speed" in bad.json()["message"]
    bad = requests.post(f"{cfs_server.url}/_sandbox/knobs", json={"fault_rate": 2}, timeout=5)
    assert bad.status_code == 400
    state = cfs_control(cfs_server, "state")
    assert (
        state["summary"]["invoices"] == 12 and state["stats"]["requests"] == 0
    )  # control calls are not counted
    assert cfs_control(cfs_server, "reset", {})["requests"] == 0


def test_server_needs_credentials() -> None:
    with pytest.raises(SandboxError):
        start_cfs_server(CfsState())
    with pytest.raises(SandboxError, match="unknown knob"):
        start_cfs_server(CfsState(), credentials={"a": "b"}, speed=3)


def test_encode_json_keeps_decimal_digits() -> None:
    doc = {"a": Decimal("31.50"), "b": [Decimal("-0.10")], "c": "x\u0000dec:1\u0000"}
    assert encode_json(doc) == b'{"a": 31.50, "b": [-0.10], "c": "x\\u0000dec:1\\u0000"}'
    assert json.loads(encode_json(doc, amounts_as_strings=True))["a"] == "31.50"


def test_command_line_server(tmp_path: Path) -> None:
    secret_file = tmp_path / "cfs_client_secret"
    secret_file.write_text("cli-secret-value\n")
    connector_file = tmp_path / "pay_connector"
    connector_file.write_text("cli-connector\n")
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps(small_cfs_state().to_dict()))
    args = [
        sys.executable,
        "-m",
        "paynb.sandbox.cfs_server",
        "--state-json",
        str(state_file),
        "--port",
        "0",
        "--client-id",
        "cli-id",
        "--client-secret-file",
        str(secret_file),
        "--pay-connector-file",
        str(connector_file),
        "--latency-ms",
        "1",
        "--fault-rate",
        "0",
    ]
    assert "cli-secret-value" not in " ".join(args)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYNB_")}
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)  # a server that never starts fails the test
        line = proc.stdout.readline() if ready else ""
        found = re.search(r"listening on http://127\.0\.0\.1:(\d+) \(12 invoices", line)
        assert found, line
        port = int(found[1])
        client = CfsClient(
            base_url=f"http://127.0.0.1:{port}",
            client_id="cli-id",
            client_secret=Secret("cli-secret-value"),
            pay_connector=Secret("cli-connector"),
        )
        assert client.get_invoice(PARTY, ACCOUNT, SITE, UNPAID)["amount_due"] == Decimal("131.50")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert err == ""  # quiet: no request log on stderr


def test_command_line_refuses_a_missing_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYNB_")}
    proc = subprocess.run(
        [sys.executable, "-m", "paynb.sandbox.cfs_server", "--client-id", "x", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode != 0 and "client secret" in proc.stderr
