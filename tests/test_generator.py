"""The synthetic pay-db: determinism, lifecycle invariants, statements, and every named scenario."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.errors import InputError, SandboxError
from paynb.ops.stale import find_stale_invoices
from paynb.sandbox.generator import CSV_HEADER, GenerationSummary, generate
from paynb.sandbox.scenarios import NAMES, list_scenarios, scenario_details, scenario_ids
from paynb.sandbox.seed import seed_sandbox
from paynb.timez import pacific_midnight_utc

FIXTURE_CSV = "tests/fixtures/sbc-pay/rendered/cas_settlement_file.csv"


@pytest.fixture
def conn(sandbox_db_url: str):
    eng = sa.create_engine(sandbox_db_url, poolclass=NullPool)
    with eng.connect() as c:
        c.exec_driver_sql("SET TimeZone = 'UTC'")
        yield c
    eng.dispose()


def rows(conn: sa.Connection, sql: str, **params) -> list[sa.Row]:
    return conn.execute(sa.text(sql), params).all()


def scalar(conn: sa.Connection, sql: str, **params):
    return conn.execute(sa.text(sql), params).scalar()


# --- determinism -------------------------------------------------------------------------------------
def checksums(url: str) -> dict[str, str]:
    eng = sa.create_engine(url, poolclass=NullPool)
    out: dict[str, str] = {}
    with eng.connect() as c:
        tables = c.execute(
            sa.text(
                "SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN ('public', 'paynb_sandbox') "
                "ORDER BY 1, 2"
            )
        ).all()
        for schema, table in tables:
            out[f"{schema}.{table}"] = c.execute(
                sa.text(
                    f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM \"{schema}\".\"{table}\" t"
                )
            ).scalar()
    eng.dispose()
    return out


def test_same_seed_gives_the_same_rows(sandbox_db_url: str, empty_db_url: str, sandbox_as_of: date) -> None:
    # the template was filled through seed_sandbox (generator + EJV files); do the same
    seed_sandbox(empty_db_url, scale="small", seed=42, as_of=sandbox_as_of)
    assert checksums(empty_db_url) == checksums(sandbox_db_url)


def test_another_seed_gives_other_rows(sandbox_db_url: str, empty_db_url: str, sandbox_as_of: date) -> None:
    generate(empty_db_url, scale="small", seed=7, as_of=sandbox_as_of)
    a, b = checksums(empty_db_url), checksums(sandbox_db_url)
    assert a["public.invoices"] != b["public.invoices"]
    assert a["public.invoice_status_codes"] == b["public.invoice_status_codes"]


def test_unknown_scale_is_refused_before_writing(empty_db_url: str) -> None:
    with pytest.raises(InputError) as err:
        generate(empty_db_url, scale="huge")
    assert err.value.field == "scale"
    eng = sa.create_engine(empty_db_url, poolclass=NullPool)
    with eng.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM invoices")).scalar() == 0
    eng.dispose()


def test_a_filled_database_is_refused(sandbox_db_url: str) -> None:
    with pytest.raises(SandboxError, match="already holds"):
        generate(sandbox_db_url, scale="small")


def test_indexes_and_keys_survive_the_bulk_load(sandbox_db_url: str, empty_db_url: str) -> None:
    def catalog(url: str) -> tuple[set, set]:
        eng = sa.create_engine(url, poolclass=NullPool)
        with eng.connect() as c:
            idx = set(
                c.execute(sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"))
            )
            cons = set(
                c.execute(
                    sa.text(
                        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                        "WHERE connamespace = 'public'::regnamespace"
                    )
                )
            )
        eng.dispose()
        return idx, cons

    assert catalog(sandbox_db_url) == catalog(empty_db_url)


# --- summary -------------------------------------------------------------------------------------------
def test_summary_counts_match_the_database(conn: sa.Connection, sandbox_summary: GenerationSummary) -> None:
    s = sandbox_summary
    assert s.scale == "small" and s.seed == 42
    for table in (
        "invoices",
        "payment_accounts",
        "statements",
        "invoice_references",
        "paynb_sandbox.cfs_invoices",
    ):
        assert scalar(conn, f"SELECT count(*) FROM {table}") == s.counts[table]
    assert 4_000 <= s.counts["invoices"] <= 6_000
    assert 50 <= s.counts["payment_accounts"] <= 70
    assert s.weekly_accounts == scalar(
        conn, "SELECT count(DISTINCT payment_account_id) FROM statement_settings WHERE frequency = 'WEEKLY'"
    )
    assert set(s.scenarios) == set(NAMES)


def test_stale_report_matches_the_generator(sandbox_db_url: str, sandbox_summary: GenerationSummary) -> None:
    eng = sa.create_engine(sandbox_db_url, poolclass=NullPool)
    s = sandbox_summary
    assert s.stale_count > 0 and {"PAD", "EJV"} <= set(s.stale_by_method())
    day_start = pacific_midnight_utc(s.as_of)
    # any time of the as_of day gives the same answer
    for now in (
        s.stale_now_utc,
        day_start + timedelta(minutes=1),
        day_start + timedelta(hours=23, minutes=59),
    ):
        report = find_stale_invoices(20, now=now, engine=eng)
        got = {
            (r["payment_method"], r["age_bucket"]): (int(r["count"]), Decimal(r["total"]))
            for r in report.rows.to_dict(orient="records")
        }
        assert got == s.stale_grid(), now
    eng.dispose()


# --- lifecycle invariants -------------------------------------------------------------------------------
def test_paid_pad_invoices_have_completed_references(conn: sa.Connection) -> None:
    bad = rows(
        conn,
        "SELECT i.id FROM invoices i WHERE i.payment_method_code = 'PAD' AND i.invoice_status_code = 'PAID' "
        "AND NOT EXISTS (SELECT 1 FROM invoice_references r WHERE r.invoice_id = i.id AND r.status_code = 'COMPLETED')",
    )
    assert not bad
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM invoices WHERE payment_method_code = 'PAD' AND invoice_status_code = 'PAID'",
        )
        > 100
    )


def test_pad_roll_ups_share_the_number_of_their_oldest_invoice(conn: sa.Connection) -> None:
    groups = rows(
        conn,
        "SELECT r.invoice_number, min(r.invoice_id), count(*), count(DISTINCT i.payment_account_id) "
        "FROM invoice_references r JOIN invoices i ON i.id = r.invoice_id "
        "WHERE i.payment_method_code = 'PAD' GROUP BY r.invoice_number",
    )
    assert any(n > 1 for _num, _min, n, _a in groups), "no PAD roll-up holds several invoices"
    for number, oldest, _n, accounts in groups:
        assert number == f"REG{oldest:08d}"
        assert accounts == 1


def test_invoice_totals_equal_their_lines(conn: sa.Connection) -> None:
    bad = rows(
        conn,
        """SELECT i.id, i.total, l.t FROM invoices i JOIN (
               SELECT invoice_id, sum(total + coalesce(service_fees, 0) + statutory_fees_gst + service_fees_gst) AS t,
                      sum(coalesce(service_fees, 0)) AS sf, sum(statutory_fees_gst + service_fees_gst) AS g
                 FROM payment_line_items WHERE line_item_status_code = 'ACTIVE' GROUP BY invoice_id) l
             ON l.invoice_id = i.id
            WHERE i.total <> l.t OR coalesce(i.service_fees, 0) <> l.sf OR i.gst <> l.g""",
    )
    assert not bad
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM invoices i WHERE NOT EXISTS "
            "(SELECT 1 FROM payment_line_items l WHERE l.invoice_id = i.id)",
        )
        == 0
    )
    # line total = statutory fee incl. priority/future-effective, excluding service fees
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM payment_line_items WHERE total <> filing_fees + "
            "coalesce(priority_fees, 0) + coalesce(future_effective_fees, 0)",
        )
        == 0
    )


def test_references_point_at_invoices(conn: sa.Connection) -> None:
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM invoice_references r LEFT JOIN invoices i ON i.id = r.invoice_id "
            "WHERE i.id IS NULL",
        )
        == 0
    )
    # money moved -> receipt; paid amount equals the total
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM invoices i WHERE invoice_status_code = 'PAID' AND (paid <> total OR "
            "NOT EXISTS (SELECT 1 FROM receipts r WHERE r.invoice_id = i.id))",
        )
        == 0
    )
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM receipts r JOIN invoices i ON i.id = r.invoice_id "
            "WHERE i.invoice_status_code NOT IN ('PAID', 'CREDITED', 'REFUNDED')",
        )
        == 0
    )


def test_cfs_invoices_follow_the_references(conn: sa.Connection) -> None:
    missing = scalar(
        conn,
        "SELECT count(*) FROM invoice_references r JOIN invoices i ON i.id = r.invoice_id "
        "WHERE i.payment_method_code IN ('PAD', 'ONLINE_BANKING', 'EFT', 'INTERNAL') "
        "AND r.status_code IN ('ACTIVE', 'COMPLETED') AND r.invoice_number LIKE 'REG%' "
        "AND NOT EXISTS (SELECT 1 FROM paynb_sandbox.cfs_invoices c WHERE c.invoice_number = r.invoice_number)",
    )
    assert missing == 0
    # a COMPLETED roll-up is fully paid in CFS
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM paynb_sandbox.cfs_invoices c WHERE c.amount_due <> 0 AND EXISTS "
            "(SELECT 1 FROM invoice_references r WHERE r.invoice_number = c.invoice_number AND r.status_code = 'COMPLETED') "
            "AND NOT EXISTS (SELECT 1 FROM invoice_references r WHERE r.invoice_number = c.invoice_number "
            "AND r.status_code = 'ACTIVE')",
        )
        == 0
    )


def test_eft_accounts_have_monthly_settings(conn: sa.Connection) -> None:
    freqs = rows(
        conn,
        "SELECT DISTINCT s.frequency FROM statement_settings s JOIN payment_accounts pa ON pa.id = s.payment_account_id "
        "WHERE pa.payment_method = 'EFT'",
    )
    assert [r[0] for r in freqs] == ["MONTHLY"]


def test_timestamps_are_naive_utc_within_the_window(conn: sa.Connection, sandbox_as_of: date) -> None:
    lo, hi = (
        scalar(conn, "SELECT min(created_on) FROM invoices"),
        scalar(conn, "SELECT max(created_on) FROM invoices"),
    )
    assert lo >= pacific_midnight_utc(sandbox_as_of - timedelta(days=731))
    assert hi < pacific_midnight_utc(sandbox_as_of)
    assert (
        scalar(
            conn,
            "SELECT data_type FROM information_schema.columns WHERE table_name = 'invoices' "
            "AND column_name = 'created_on'",
        )
        == "timestamp without time zone"
    )


# --- statements --------------------------------------------------------------------------------------------
def expected_periods(settings: list[sa.Row], as_of: date) -> Counter:
    """Periods GENERATE_STATEMENTS makes for each setting up to as_of - 1 (docs/statements.md), computed here."""
    last = as_of - timedelta(days=1)
    out: Counter = Counter()
    for account, freq, start, end in settings:
        upto = min(end or last, last)
        if freq == "DAILY":
            d = start
            while d <= upto:
                out[(account, "DAILY", d, d)] += 1
                d += timedelta(days=1)
        elif freq == "WEEKLY":
            sat = start + timedelta(days=(5 - start.weekday()) % 7)
            while sat <= upto:
                out[(account, "WEEKLY", sat - timedelta(days=6), sat)] += 1
                sat += timedelta(days=7)
            if end is not None and end <= last and end.weekday() not in (5, 6):  # gap statement
                sunday = end - timedelta(days=(end.weekday() + 1) % 7)
                out[(account, "WEEKLY", sunday, end)] += 1
        else:
            first = start.replace(day=1)
            while True:
                month_end = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
                if month_end > upto:
                    break
                out[(account, "MONTHLY", first, month_end)] += 1
                first = month_end + timedelta(days=1)
    return out


def test_statements_cover_every_period_except_the_injected_gaps(
    conn: sa.Connection, sandbox_as_of: date
) -> None:
    settings = rows(conn, "SELECT payment_account_id, frequency, from_date, to_date FROM statement_settings")
    expected = expected_periods(settings, sandbox_as_of)
    actual = Counter(
        tuple(r)
        for r in rows(conn, "SELECT payment_account_id, frequency, from_date, to_date FROM statements")
    )
    gaps = Counter()
    for name in ("statement_gap_daily", "statement_gap_weekly", "statement_gap_monthly"):
        for p in scenario_details(conn, name)["periods"]:
            gaps[
                (
                    p["account_id"],
                    p["frequency"],
                    date.fromisoformat(p["from_date"]),
                    date.fromisoformat(p["to_date"]),
                )
            ] += 1
    dup = scenario_details(conn, "statement_duplicate")
    dups = Counter(
        {
            (
                dup["account_id"],
                "WEEKLY",
                date.fromisoformat(dup["from_date"]),
                date.fromisoformat(dup["to_date"]),
            ): 1
        }
    )
    assert expected - actual == gaps
    assert actual - expected == dups
    assert {g[1] for g in gaps} == {"DAILY", "WEEKLY", "MONTHLY"}
    # the daily gap day has no DAILY statement at all
    day = date.fromisoformat(scenario_details(conn, "statement_gap_daily")["missing_day_all_accounts"])
    assert (
        scalar(conn, "SELECT count(*) FROM statements WHERE frequency = 'DAILY' AND to_date = :d", d=day) == 0
    )


def test_settings_history_exists(conn: sa.Connection) -> None:
    changed = rows(
        conn,
        "SELECT a.payment_account_id, a.to_date, b.from_date FROM statement_settings a JOIN statement_settings b "
        "ON b.payment_account_id = a.payment_account_id AND b.id <> a.id WHERE a.to_date IS NOT NULL",
    )
    assert changed, "no account has a settings history"
    for _acc, to_date, from_date in changed:
        assert from_date == to_date + timedelta(days=1)


def test_statement_invoices_follow_the_job_rules(conn: sa.Connection) -> None:
    expected = set(
        rows(
            conn,
            """SELECT s.id, i.id FROM statements s
                 JOIN payment_accounts pa ON pa.id = s.payment_account_id
                 JOIN invoices i ON i.payment_account_id = s.payment_account_id
                  AND i.created_on >= (s.from_date::timestamp AT TIME ZONE 'America/Vancouver') AT TIME ZONE 'UTC'
                  AND i.created_on < ((s.to_date + 1)::timestamp AT TIME ZONE 'America/Vancouver') AT TIME ZONE 'UTC'
                  AND (pa.payment_method = 'EFT') = (i.payment_method_code = 'EFT')""",
        )
    )
    actual = set(rows(conn, "SELECT statement_id, invoice_id FROM statement_invoices"))
    assert actual == expected
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM statements s WHERE s.is_empty = EXISTS "
            "(SELECT 1 FROM statement_invoices si WHERE si.statement_id = s.id)",
        )
        == 0
    )
    # created_on is the UTC date of the 01:01 Pacific run the day after the period
    assert scalar(conn, "SELECT count(*) FROM statements WHERE created_on <> to_date + 1") == 0


# --- scenarios ------------------------------------------------------------------------------------------------
def test_every_scenario_is_recorded_with_ids(conn: sa.Connection) -> None:
    df = list_scenarios(conn)
    assert list(df.columns) == ["name", "description", "table", "ids", "details"]
    for name in NAMES:
        sub = df[df["name"] == name]
        assert not sub.empty, name
        assert any(len(ids) > 0 for ids in sub["ids"]), name
        assert all(sub["description"].str.len() > 20)


def _csv(conn: sa.Connection, key: str) -> list[dict[str, str]]:
    content = scalar(conn, "SELECT content FROM paynb_sandbox.store_objects WHERE key = :k", k=key)
    assert content is not None, key
    text = bytes(content).decode("utf-8")
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    assert header == CSV_HEADER
    return [dict(zip(header, r, strict=True)) for r in reader]


def test_csv_header_is_the_reference_header() -> None:
    with open(FIXTURE_CSV, newline="") as fh:
        assert next(csv.reader(fh)) == CSV_HEADER


def test_pad_stuck_without_reference(conn: sa.Connection, sandbox_as_of: date) -> None:
    inv = scenario_ids(conn, "pad_stuck_no_reference", "invoices")
    statuses = {
        r[0]
        for r in rows(
            conn,
            "SELECT c.status FROM cfs_accounts c WHERE c.id = ANY(:i)",
            i=scenario_ids(conn, "pad_stuck_no_reference", "cfs_accounts"),
        )
    }
    assert statuses == {"PENDING_PAD_ACTIVATION", "FREEZE", "ACTIVE"}
    cutoff = pacific_midnight_utc(sandbox_as_of - timedelta(days=20))
    for status, method, created, active in rows(
        conn,
        "SELECT invoice_status_code, payment_method_code, created_on, EXISTS (SELECT 1 FROM invoice_references r "
        "WHERE r.invoice_id = i.id AND r.status_code = 'ACTIVE') FROM invoices i WHERE id = ANY(:i)",
        i=inv,
    ):
        assert (status, method, active) == ("APPROVED", "PAD", False)
        assert created < cutoff


@pytest.mark.parametrize(
    ("name", "amount_due_zero", "present"),
    [("pad_stuck_uncharged", False, True), ("pad_stuck_cfs_missing", False, False)],
)
def test_pad_stuck_with_active_reference(
    conn: sa.Connection, name: str, amount_due_zero: bool, present: bool
) -> None:
    d = scenario_details(conn, name)
    for status, ref in rows(
        conn,
        "SELECT i.invoice_status_code, r.status_code FROM invoices i JOIN invoice_references r ON r.invoice_id = i.id "
        "WHERE i.id = ANY(:i)",
        i=scenario_ids(conn, name, "invoices"),
    ):
        assert (status, ref) == ("APPROVED", "ACTIVE")
    due, pres = rows(
        conn,
        "SELECT amount_due, present FROM paynb_sandbox.cfs_invoices WHERE invoice_number = :n",
        n=d["invoice_number"],
    )[0]
    assert (due == 0) is amount_due_zero and pres is present


def test_settled_csv_never_processed(conn: sa.Connection) -> None:
    files = scenario_details(conn, "pad_stuck_settled_csv_unprocessed")["files"]
    assert len(files) == 2
    for f in files:
        numbers = set(f["invoice_numbers"])
        assert numbers
        csv_rows = _csv(conn, f["key"])
        assert numbers <= {
            r["Target transaction Number"] for r in csv_rows if r["Target transaction status"] == "Fully PAID"
        }
        assert all(
            r["Application Date"] == date.fromisoformat(f["application_date"]).strftime("%d-%b-%y")
            for r in csv_rows
        )
        cas = rows(conn, "SELECT processed_on FROM cas_settlements WHERE file_name = :f", f=f["file_name"])
        if f["variant"].startswith("no cas_settlements"):
            assert cas == []
        else:
            assert [r[0] for r in cas] == [None]
        for due, ref in rows(
            conn,
            "SELECT c.amount_due, r.status_code FROM paynb_sandbox.cfs_invoices c JOIN invoice_references r "
            "ON r.invoice_number = c.invoice_number WHERE c.invoice_number = ANY(:n)",
            n=list(numbers),
        ):
            assert (due, ref) == (0, "ACTIVE")


def test_unprocessed_csv_holds_nsf_rows(conn: sa.Connection) -> None:
    d = scenario_details(conn, "cas_csv_with_nsf")
    csv_rows = _csv(conn, d["key"])
    nsf = [r for r in csv_rows if r["Target transaction Number"] in d["nsf_invoice_numbers"]]
    assert {r["Record type"] for r in nsf} == {"PADP", "PADR"}
    assert all(r["Target transaction status"] == "Not PAID" for r in nsf)
    assert not rows(conn, "SELECT 1 FROM cas_settlements WHERE file_name = :f", f=d["file_name"])


def test_processed_csvs_are_stored_and_recorded(conn: sa.Connection) -> None:
    keys = [
        r[0]
        for r in rows(conn, "SELECT key FROM paynb_sandbox.store_objects WHERE key LIKE 'ar/%' ORDER BY key")
    ]
    assert len(keys) >= 5 and all(k.startswith("ar/BCR_PAYMENT_APPL_") and k.endswith(".csv") for k in keys)
    recorded = {
        r[0] for r in rows(conn, "SELECT file_name FROM cas_settlements WHERE processed_on IS NOT NULL")
    }
    assert sum(k.removeprefix("ar/") in recorded for k in keys) >= 3


def test_ejv_without_feedback(conn: sa.Connection, sandbox_as_of: date) -> None:
    files = rows(
        conn,
        "SELECT file_ref, feedback_file_ref, created_on FROM ejv_files WHERE id = ANY(:i)",
        i=scenario_ids(conn, "ejv_no_feedback", "ejv_files"),
    )
    assert files
    for file_ref, feedback, created in files:
        assert file_ref.startswith("INBOX.F3505.") and len(file_ref) == len("INBOX.F3505.") + 14
        assert feedback is None
        assert created < pacific_midnight_utc(sandbox_as_of - timedelta(days=5))
    for status, ref in rows(
        conn,
        "SELECT i.invoice_status_code, r.status_code FROM invoices i JOIN invoice_references r "
        "ON r.invoice_id = i.id WHERE i.id = ANY(:i)",
        i=scenario_ids(conn, "ejv_no_feedback", "invoices"),
    ):
        assert (status, ref) == ("APPROVED", "ACTIVE")
    done = rows(conn, "SELECT feedback_file_ref FROM ejv_files WHERE feedback_file_ref IS NOT NULL LIMIT 1")
    assert done[0][0].startswith("FEEDBACK.F3505.")


def test_ejv_errored_with_stop_ejv(conn: sa.Connection) -> None:
    name = "ejv_errored_stop_ejv"
    gl = scenario_ids(conn, name, "distribution_codes")
    assert scalar(
        conn, "SELECT bool_and(stop_ejv) FROM distribution_codes WHERE distribution_code_id = ANY(:g)", g=gl
    )
    for table in ("ejv_files", "ejv_headers", "ejv_links"):
        got = rows(
            conn,
            f"SELECT disbursement_status_code, message FROM {table} WHERE id = ANY(:i)",
            i=scenario_ids(conn, name, table),
        )
        assert got and all(s == "ERRORED" and m for s, m in got)
    assert {
        r[0]
        for r in rows(
            conn,
            "SELECT status_code FROM invoice_references WHERE id = ANY(:i)",
            i=scenario_ids(conn, name, "invoice_references"),
        )
    } == {"CANCELLED"}
    blocked = scenario_details(conn, name)["blocked_invoice_ids"]
    assert blocked
    assert {
        r[0] for r in rows(conn, "SELECT invoice_status_code FROM invoices WHERE id = ANY(:i)", i=blocked)
    } == {"APPROVED"}
    assert not rows(conn, "SELECT 1 FROM invoice_references WHERE invoice_id = ANY(:i)", i=blocked)


def test_statement_gap_and_duplicate_scenarios(conn: sa.Connection) -> None:
    for name in ("statement_gap_daily", "statement_gap_weekly", "statement_gap_monthly"):
        d = scenario_details(conn, name)
        assert d["periods"]
        for p in d["periods"]:
            assert not rows(
                conn,
                "SELECT 1 FROM statements WHERE payment_account_id = :a AND frequency = :f "
                "AND from_date = :s AND to_date = :e",
                a=p["account_id"],
                f=p["frequency"],
                s=date.fromisoformat(p["from_date"]),
                e=date.fromisoformat(p["to_date"]),
            )
    ids = scenario_ids(conn, "statement_duplicate", "statements")
    got = rows(
        conn,
        "SELECT payment_account_id, frequency, from_date, to_date FROM statements WHERE id = ANY(:i)",
        i=ids,
    )
    assert len(got) == 2 and got[0] == got[1]
    counts = rows(
        conn,
        "SELECT count(*) FROM statement_invoices WHERE statement_id = ANY(:i) GROUP BY statement_id",
        i=ids,
    )
    assert len(counts) == 2 and counts[0] == counts[1]


def test_routing_slip_with_transactions(conn: sa.Connection) -> None:
    (rs,) = scenario_ids(conn, "routing_slip_with_transactions", "routing_slips")
    number, status, total, remaining = rows(
        conn, "SELECT number, status, total, remaining_amount FROM routing_slips WHERE id = :i", i=rs
    )[0]
    assert len(number) == 9 and status == "ACTIVE"
    inv = rows(
        conn,
        "SELECT payment_method_code, total, invoice_status_code FROM invoices WHERE routing_slip = :n",
        n=number,
    )
    assert len(inv) >= 2 and {r[0] for r in inv} == {"INTERNAL"}
    assert remaining == total - sum(r[1] for r in inv if r[2] == "PAID")


def test_pad_nsf_freeze(conn: sa.Connection) -> None:
    name = "pad_nsf_freeze"
    d = scenario_details(conn, name)
    (acc,) = scenario_ids(conn, name, "payment_accounts")
    assert scalar(conn, "SELECT has_nsf_invoices IS NOT NULL FROM payment_accounts WHERE id = :a", a=acc)
    assert scalar(conn, "SELECT status FROM cfs_accounts WHERE id = :a", a=acc) == "FREEZE"
    nsf = rows(
        conn,
        "SELECT invoice_id, invoice_number FROM non_sufficient_funds WHERE id = ANY(:i)",
        i=scenario_ids(conn, name, "non_sufficient_funds"),
    )
    assert nsf == [(d["nsf_fee_invoice_id"], d["invoice_number"])]
    fee = rows(
        conn,
        "SELECT invoice_status_code, payment_method_code, corp_type_code, total FROM invoices WHERE id = :i",
        i=d["nsf_fee_invoice_id"],
    )[0]
    assert tuple(fee) == ("CREATED", "CC", "BCR", Decimal("30.00"))
    nsfd = rows(
        conn,
        "SELECT i.invoice_status_code, i.paid, r.status_code FROM invoices i JOIN invoice_references r "
        "ON r.invoice_id = i.id WHERE r.invoice_number = :n AND i.payment_method_code = 'PAD'",
        n=d["invoice_number"],
    )
    assert nsfd and all(tuple(r) == ("SETTLEMENT_SCHED", Decimal("0.00"), "ACTIVE") for r in nsfd)
    assert not rows(
        conn,
        "SELECT 1 FROM receipts r JOIN invoice_references ir ON ir.invoice_id = r.invoice_id "
        "WHERE ir.invoice_number = :n",
        n=d["invoice_number"],
    )
    nsf_rows = [
        r
        for r in _csv(conn, f"ar/{d['settlement_file']}")
        if r["Target transaction Number"] == d["invoice_number"]
    ]
    assert {r["Record type"] for r in nsf_rows} == {"PADP", "PADR"}


def test_partner_disbursements_stuck(conn: sa.Connection, sandbox_as_of: date) -> None:
    got = rows(
        conn,
        "SELECT status_code, created_on FROM partner_disbursements WHERE id = ANY(:i) ORDER BY id",
        i=scenario_ids(conn, "partner_disbursement_stuck", "partner_disbursements"),
    )
    assert {r[0] for r in got} == {"UPLOADED", "WAITING_FOR_JOB"}
    assert all(r[1] < pacific_midnight_utc(sandbox_as_of - timedelta(days=3)) for r in got)


def test_pad_partial_credit_candidate(conn: sa.Connection) -> None:
    (inv,) = scenario_ids(conn, "pad_partial_credit_candidate", "invoices")
    status, method, acc = rows(
        conn,
        "SELECT invoice_status_code, payment_method_code, payment_account_id FROM invoices WHERE id = :i",
        i=inv,
    )[0]
    assert (status, method) == ("PAID", "PAD")
    assert scalar(conn, "SELECT status FROM cfs_accounts WHERE id = :a", a=acc) == "ACTIVE"
    lines = rows(
        conn,
        "SELECT l.filing_fees, l.service_fees, d.service_fee_distribution_code_id, d.statutory_fees_gst_distribution_code_id, "
        "d.service_fee_gst_distribution_code_id FROM payment_line_items l JOIN distribution_codes d "
        "ON d.distribution_code_id = l.fee_distribution_id WHERE l.invoice_id = :i AND l.line_item_status_code = 'ACTIVE'",
        i=inv,
    )
    assert len(lines) >= 2 and all(r[0] > 0 and r[1] > 0 and None not in r[2:] for r in lines)
    number = scenario_details(conn, "pad_partial_credit_candidate")["invoice_number"]
    assert (
        scalar(conn, "SELECT status_code FROM invoice_references WHERE invoice_id = :i", i=inv) == "COMPLETED"
    )
    assert scalar(conn, "SELECT present FROM paynb_sandbox.cfs_invoices WHERE invoice_number = :n", n=number)


def test_meta_records_the_inputs(conn: sa.Connection, sandbox_as_of: date) -> None:
    meta = dict(rows(conn, "SELECT key, value FROM paynb_sandbox.meta"))
    assert meta["seed"] == "42" and meta["scale"] == "small" and meta["as_of"] == sandbox_as_of.isoformat()


def test_every_foreign_key_holds(conn: sa.Connection) -> None:
    """The bulk load skips per-row FK checks; every key is checked here in one pass each."""
    fks = rows(
        conn,
        """SELECT c.conname, t.relname, a.attname, rt.relname, ra.attname
             FROM pg_constraint c
             JOIN pg_class t ON t.oid = c.conrelid
             JOIN pg_class rt ON rt.oid = c.confrelid
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
             JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = c.confkey[1]
            WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace AND cardinality(c.conkey) = 1""",
    )
    assert len(fks) > 60
    broken = []
    for name, table, col, ref, ref_col in fks:
        n = scalar(
            conn,
            f'SELECT count(*) FROM "{table}" x WHERE x."{col}" IS NOT NULL AND NOT EXISTS '
            f'(SELECT 1 FROM "{ref}" y WHERE y."{ref_col}" = x."{col}")',
        )
        if n:
            broken.append(f"{name}: {n} rows")
    assert not broken


# --- fidelity to sbc-pay (issue 13.6) ------------------------------------------------------------------
def test_fee_codes_and_filing_types_are_sbc_pays_migrations(conn: sa.Connection) -> None:
    from paynb.sandbox.generator import catalogue_rows

    fees = {r["code"]: Decimal(r["amount"]) for r in catalogue_rows("fee_codes.csv")}
    types = {r["code"]: r["description"] for r in catalogue_rows("filing_types.csv")}
    assert dict(rows(conn, "SELECT code, amount FROM fee_codes")) == fees
    assert dict(rows(conn, "SELECT code, description FROM filing_types")) == types
    # every fee schedule the generator uses points into that catalogue (the foreign keys hold too)
    for ft, fc in rows(conn, "SELECT filing_type_code, fee_code FROM fee_schedules"):
        assert ft in types and fc in fees
    assert scalar(conn, "SELECT amount FROM fee_codes WHERE code = 'NSF01'") == Decimal("30.00")


def test_ejv_and_direct_pay_reg_numbers_are_in_cfs_invoices(conn: sa.Connection) -> None:
    refs = rows(
        conn,
        "SELECT r.invoice_number, i.payment_method_code, r.status_code, i.total, i.invoice_status_code "
        "FROM invoice_references r JOIN invoices i ON i.id = r.invoice_id "
        "JOIN payment_accounts pa ON pa.id = i.payment_account_id "
        "WHERE i.payment_method_code IN ('EJV', 'DIRECT_PAY') AND r.status_code IN ('ACTIVE', 'COMPLETED') "
        "AND (i.payment_method_code = 'DIRECT_PAY' OR pa.billable)",
    )
    cfs = {
        r[0]: r[1:]
        for r in rows(
            conn,
            "SELECT invoice_number, payment_method, total, amount_due, present, cfs_site "
            "FROM paynb_sandbox.cfs_invoices WHERE payment_method IN ('EJV', 'DIRECT_PAY')",
        )
    }
    assert {m for _n, m, *_ in refs} == {"EJV", "DIRECT_PAY"}
    assert {n for n, *_ in refs} == set(cfs)
    for number, method, ref_status, total, status in refs:
        assert number == f"REG{int(number[3:]):08d}"
        got_method, got_total, due, present, site = cfs[number]
        assert (got_method, got_total, site) == (method, total, None)
        assert (due == 0) is (ref_status == "COMPLETED")
        assert present is not (method == "DIRECT_PAY" and status == "CREATED")


def test_partner_invoices_are_disbursed_in_disbursement_ejv_files(
    conn: sa.Connection, sandbox_as_of: date
) -> None:
    files = rows(
        conn,
        "SELECT id, file_ref, disbursement_status_code, feedback_file_ref, created_on FROM ejv_files "
        "WHERE file_type = 'DISBURSEMENT' ORDER BY id",
    )
    assert len(files) > 20
    for _id, ref, status, feedback, created in files:
        assert ref.startswith("INBOX.F3505.") and (feedback is None) is (status == "UPLOADED")
        assert created < pacific_midnight_utc(sandbox_as_of)
    assert (
        scalar(
            conn,
            "SELECT count(DISTINCT h.partner_code) FROM ejv_headers h JOIN ejv_files f ON f.id = h.ejv_file_id "
            "WHERE f.file_type = 'DISBURSEMENT' AND h.payment_account_id IS NULL",
        )
        == 2
    )
    links = """SELECT l.link_id, l.id, l.disbursement_status_code FROM ejv_links l
                 JOIN ejv_headers h ON h.id = l.ejv_header_id JOIN ejv_files f ON f.id = h.ejv_file_id
                WHERE f.file_type = 'DISBURSEMENT' AND l.link_type = 'invoice'"""
    linked: dict[int, list[int]] = {}
    for inv, link, _status in rows(conn, links):
        linked.setdefault(inv, []).append(link)
    # the legacy way: every disbursed invoice was PAID by a method the job does not skip, five days before
    legacy = rows(
        conn,
        "SELECT i.id, i.invoice_status_code, i.disbursement_status_code, i.disbursement_date, "
        "i.disbursement_reversal_date, i.payment_date FROM invoices i JOIN corp_types ct ON ct.code = i.corp_type_code "
        "WHERE ct.has_partner_disbursements AND i.payment_method_code NOT IN ('INTERNAL', 'DRAWDOWN', 'EFT') "
        "AND i.disbursement_status_code IS NOT NULL",
    )
    assert {r[2] for r in legacy} == {"COMPLETED", "REVERSED", "UPLOADED"}
    for inv, status, disb, disb_date, rev_date, paid_on in legacy:
        assert inv in linked
        if disb == "COMPLETED":
            # a refund after the last run is reversed on the next one
            assert status in ("PAID", "CREDITED", "REFUNDED") and len(linked[inv]) == 1
            assert disb_date.date() == paid_on.date() + timedelta(days=6)
        if disb == "REVERSED":
            assert status in ("CREDITED", "REFUNDED") and len(linked[inv]) == 2 and rev_date > disb_date
    # the new way: a COMPLETED partner disbursement was sent in a file
    for pd_target in rows(
        conn, "SELECT target_id FROM partner_disbursements WHERE status_code = 'COMPLETED'"
    ):
        assert pd_target[0] in linked
    stuck = scenario_details(conn, "partner_disbursement_stuck")
    ids = [stuck["uploaded_id"], stuck["waiting_for_job_id"]]
    pd_targets = dict(rows(conn, "SELECT id, target_id FROM partner_disbursements WHERE id = ANY(:i)", i=ids))
    assert pd_targets[stuck["waiting_for_job_id"]] not in linked
    assert {s for i, _l, s in rows(conn, links) if i == pd_targets[stuck["uploaded_id"]]} == {"UPLOADED"}


def test_settlement_csvs_are_written_through_formats() -> None:
    # the bytes the generator's own writer used to produce (LF ends, an Application Id skipped after an
    # NSF pair); now paynb.formats.settlement_csv writes them
    from paynb.formats.settlement_csv import parse_settlement_csv
    from paynb.sandbox.generator import render_settlement_csv

    d = date(2026, 3, 9)
    data = render_settlement_csv(
        d,
        [
            (d, "PAD", "1000000001", Decimal("43.39"), "2000001", "REG00000012", "Fully PAID"),
            (d, "PAD", "3000000045", Decimal("350"), "2000002", "REG00000045", "Not PAID"),
            (d, "OB", "OB00000077", Decimal("7.5"), "2000003", "REG00000077", "Fully PAID"),
        ],
    )
    lines = data.decode().split("\n")
    assert lines[1] == (
        '"PADP","BCR-PAD Daily","1000000001","956400001","09-Mar-26","43.39","2000001","INV","REG00000012",'
        '"43.39","0.00","Fully PAID","",""'
    )
    assert lines[3].startswith('"PADR","BCR-PAD Daily","3000000045","956400003","09-Mar-26","0.00"')
    assert lines[4].startswith('"BOLP","BCR Online Banking Payments","OB00000077","956400005"')
    assert lines[5] == "" and "\r" not in data.decode()
    assert [r.record_type for r in parse_settlement_csv(data)] == ["PADP", "PADP", "PADR", "BOLP"]
