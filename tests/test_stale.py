from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb import db
from paynb.cli import main
from paynb.context import Env
from paynb.errors import InputError
from paynb.ops.stale import age_buckets, bucket_label, find_stale_invoices
from paynb.sandbox.postgres import READER
from paynb.settings import Settings
from tests.plugins.db import as_role


def _engine(url: str):
    reader = as_role(url, READER)
    return db.create_engine(Settings.load({"PAYNB_DATABASE_URL": reader}, dotenv=None), run_id="t-stale")


def test_buckets_cover_every_age_once():
    labels = [b[0] for b in age_buckets(20)]
    assert labels == ["20-30", "31-60", "61-90", "91-180", ">180"]
    for age in range(20, 400):
        assert bucket_label(age, 20) in labels
    assert [b[0] for b in age_buckets(45)] == ["45-60", "61-90", "91-180", ">180"]
    assert [b[0] for b in age_buckets(365)] == [">=365"]


def test_report_matches_what_the_generator_knows(sandbox_db_url, sandbox_summary):
    env = Env(overrides={"engine": _engine(sandbox_db_url)})
    report = find_stale_invoices(20, now=sandbox_summary.stale_now_utc, env=env)
    got = {(r.payment_method, r.age_bucket): (r.count, r.total) for r in report.rows.itertuples()}
    assert got == sandbox_summary.stale_grid()
    assert report.total_count == sandbox_summary.stale_count > 0
    assert report.total_amount == sandbox_summary.stale_total
    assert all(isinstance(t, Decimal) for t in report.rows["total"])


def test_method_filter(sandbox_db_url, sandbox_summary):
    report = find_stale_invoices(
        20, method="pad", now=sandbox_summary.stale_now_utc, engine=_engine(sandbox_db_url)
    )
    assert set(report.rows["payment_method"]) == {"PAD"}
    assert report.total_count == sandbox_summary.stale_by_method()["PAD"][0]


def _insert_invoice(
    conn, created_on: datetime, total: str, status: str = "APPROVED", method: str = "PAD"
) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO invoices (created_on, created_by, invoice_status_code, payment_method_code, total, gst) "
            "VALUES (:c, 'test', :s, :m, :t, 0)"
        ),
        {"c": created_on, "s": status, "m": method, "t": Decimal(total)},
    )


def test_threshold_compares_naive_utc_exactly(empty_db_url):
    now = datetime(2026, 3, 9, 10, 0, 0)  # a DST switch day in Vancouver; must not matter for UTC ages
    engine = _engine(empty_db_url)
    # test data go in as the administrator: paynb's roles may not insert invoices (docs/roles.md)
    admin = sa.create_engine(empty_db_url, poolclass=NullPool)
    with admin.begin() as conn:
        _insert_invoice(conn, now - timedelta(days=20, minutes=1), "10.01")  # stale
        _insert_invoice(conn, now - timedelta(days=20) + timedelta(minutes=1), "99.99")  # not yet
        _insert_invoice(conn, now - timedelta(days=200), "0.10", method="EJV")
        _insert_invoice(conn, now - timedelta(days=90), "5.00", status="PAID")  # not APPROVED
    admin.dispose()
    report = find_stale_invoices(20, now=now, engine=engine)
    rows = {(r.payment_method, r.age_bucket): (r.count, r.total) for r in report.rows.itertuples()}
    assert rows == {("PAD", "20-30"): (1, Decimal("10.01")), ("EJV", ">180"): (1, Decimal("0.10"))}
    assert report.total_amount == Decimal("10.11")


@pytest.mark.parametrize(("kwargs", "field"), [({"days": -1}, "days"), ({"method": "BITCOIN"}, "method")])
def test_bad_input_names_the_field(kwargs, field):
    with pytest.raises(InputError) as ei:
        find_stale_invoices(**kwargs)
    assert ei.value.field == field


def test_cli_json_and_table(pay_env, capsys):
    assert main(["stale", "--days", "20", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"report": "stale_invoices"' in out
    assert main(["stale", "--method", "PAD"]) == 0
    assert "By payment method" in capsys.readouterr().out


def test_cli_refuses_negative_days(capsys):
    assert main(["stale", "--days", "-3"]) == 2
    assert "--days" in capsys.readouterr().err
