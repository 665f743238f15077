"""tools/extract_fee_catalogue.py replays sbc-pay's data migrations; the shipped CSVs are its output."""

from __future__ import annotations

import csv
import importlib.util
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "paynb" / "sandbox" / "catalogue"


def load_tool():
    spec = importlib.util.spec_from_file_location(
        "extract_fee_catalogue", ROOT / "tools" / "extract_fee_catalogue.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


FIRST = """
from alembic import op
from sqlalchemy.sql import column, table
revision = "aaa"
down_revision = None
def upgrade():
    fee = table("fee_code", column("code"), column("amount"))
    ft = table("filing_type", column("code"), column("description"))
    op.bulk_insert(fee, [{"code": "EN101", "amount": 30}, {"code": "EN102", "amount": 70}])
    rows = [{"code": "BCANN", "description": "Annual Report"}, {"code": "OLD", "description": "Gone"}]
    op.bulk_insert(ft, rows)
def downgrade():
    op.execute("delete from fee_code where code in ('EN101', 'EN102')")
"""
SECOND = """
from alembic import op
revision = "bbb"
down_revision = "aaa"
def upgrade():
    op.execute("update fee_codes set amount = 35.5 where code = 'EN101'")
    op.execute("insert into fee_codes (code, amount) values ('TRF04', 0.00) ON CONFLICT DO NOTHING;")
    op.execute("delete from filing_types where code in ('OLD')")
"""


def test_replays_upgrades_in_revision_order(tmp_path: Path) -> None:
    tool = load_tool()
    versions = tmp_path / "sbc-pay" / "pay-api" / "migrations" / "versions"
    versions.mkdir(parents=True)
    # file names sort the other way round: the order must come from down_revision
    (versions / "a_second.py").write_text(SECOND)
    (versions / "b_first.py").write_text(FIRST)
    out = tmp_path / "out"
    assert tool.main(["--checkout", str(tmp_path / "sbc-pay"), "--out", str(out)]) == 0
    with (out / "fee_codes.csv").open() as f:
        assert list(csv.reader(f)) == [
            ["code", "amount"],
            ["EN101", "35.50"],
            ["EN102", "70.00"],
            ["TRF04", "0.00"],
        ]
    with (out / "filing_types.csv").open() as f:
        assert list(csv.reader(f)) == [["code", "description"], ["BCANN", "Annual Report"]]
    readme = (out / "README.md").read_text()
    assert "`a_second.py`" in readme and "`b_first.py`" in readme


def test_shipped_catalogue_is_well_formed() -> None:
    with (CATALOGUE / "fee_codes.csv").open() as f:
        fees = list(csv.DictReader(f))
    with (CATALOGUE / "filing_types.csv").open() as f:
        types = list(csv.DictReader(f))
    assert len({r["code"] for r in fees}) == len(fees) >= 20
    assert len({r["code"] for r in types}) == len(types) >= 50
    assert all(Decimal(r["amount"]) >= 0 for r in fees)
    assert {"EN101", "PRI01", "FUT01", "TRF01", "NSF01"} <= {r["code"] for r in fees}
    assert "2e8b1531b" in (CATALOGUE / "README.md").read_text()


NESTED = """
from alembic import op
from sqlalchemy.sql import column, table
revision = "ccc"
down_revision = None
def upgrade():
    ft = table("filing_types", column("code"), column("description"))
    op.bulk_insert(ft, [{"code": "BSRCH", "description": "Business Search"}])
    def downgrade():
        op.execute("delete from filing_types where code in ('BSRCH')")
"""


def test_a_downgrade_nested_in_upgrade_is_not_replayed(tmp_path: Path) -> None:
    # sbc-pay has such a migration (the BSRCH filing type): the nested function is defined, never run
    tool = load_tool()
    versions = tmp_path / "sbc-pay" / "pay-api" / "migrations" / "versions"
    versions.mkdir(parents=True)
    (versions / "nested.py").write_text(NESTED)
    out = tmp_path / "out"
    assert tool.main(["--checkout", str(tmp_path / "sbc-pay"), "--out", str(out)]) == 0
    with (out / "filing_types.csv").open() as f:
        assert list(csv.reader(f)) == [["code", "description"], ["BSRCH", "Business Search"]]
