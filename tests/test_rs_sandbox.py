"""The sandbox side of routing slips: the CFS receipt endpoints over real HTTP, and the generator's
void scenarios planned against the seeded sandbox."""

from __future__ import annotations

import pytest

from paynb.context import Env
from paynb.errors import CfsError
from tests.plugins.cfs import ACCOUNT, PARTY, SITE


def test_fas_receipt_create_get_reverse(make_cfs_client) -> None:
    fas = make_cfs_client(credential="FAS")
    made = fas.create_receipt(
        PARTY,
        ACCOUNT,
        SITE,
        {
            "receipt_number": "910000009",
            "receipt_date": "2026-01-05",
            "receipt_amount": "100.00",
            "payment_method": "CASH RCPT",
            "comments": "",
        },
    )
    assert made["receipt_number"] == "910000009" and made["status"] == "APP"
    with pytest.raises(CfsError) as dup:
        fas.create_receipt(
            PARTY,
            ACCOUNT,
            SITE,
            {
                "receipt_number": "910000009",
                "receipt_date": "2026-01-05",
                "receipt_amount": "1.00",
                "payment_method": "CASH RCPT",
            },
        )
    assert dup.value.status == 400
    done = fas.reverse_receipt(
        PARTY, ACCOUNT, SITE, "910000009", reason="PAYMENT REVERSAL", comment="Created In Error"
    )
    assert done["status"] == "REV" and done["reversal_comment"] == "Created In Error"
    assert fas.get_receipt(PARTY, ACCOUNT, SITE, "910000009")["status"] == "REV"
    with pytest.raises(CfsError) as again:
        fas.reverse_receipt(PARTY, ACCOUNT, SITE, "910000009", reason="PAYMENT REVERSAL", comment="x")
    assert again.value.status == 400
    with pytest.raises(CfsError) as missing:
        fas.reverse_receipt(PARTY, ACCOUNT, SITE, "999", reason="PAYMENT REVERSAL", comment="x")
    assert missing.value.status == 404


def test_generator_void_scenarios(sandbox_env, sandbox_db_url) -> None:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from paynb.ops.routing_slips.plan import VoidBlocked, plan_void
    from paynb.sandbox.scenarios import scenario_details

    eng = sa.create_engine(sandbox_db_url, poolclass=NullPool)
    with eng.connect() as conn:
        numbers = {
            n: scenario_details(conn, n)["number"]
            for n in ("routing_slip_void_ready", "routing_slip_void_blocked", "routing_slip_void_with_child")
        }
    eng.dispose()
    env = Env.from_environment()
    ready = plan_void(numbers["routing_slip_void_ready"], reason="r", ticket="T-1", env=env)
    assert len(ready.body["invoices"]) == 3 and len(ready.body["receipts"]) == 1
    child = plan_void(numbers["routing_slip_void_with_child"], reason="r", ticket="T-1", env=env)
    receipts = [r["receipt_number"] for r in child.body["receipts"]]
    assert len(receipts) == 2 and receipts[1].endswith("L")
    with pytest.raises(VoidBlocked, match="is PAID"):
        plan_void(numbers["routing_slip_void_blocked"], reason="r", ticket="T-1", env=env)
