"""The sandbox's INBOX/FEEDBACK files: they match the ejv_* rows, round-trip through the parsers, carry the
ERRORED lines of ``ejv_errored_stop_ejv`` and no FEEDBACK for ``ejv_no_feedback``. Also: the FEEDBACK writer
round-trips, and the search's fast scanner gives exactly what the strict parser gives."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paynb.formats.feedback import parse_feedback, render_feedback
from paynb.formats.inbox import (
    format_batch_header,
    format_batch_trailer,
    format_journal_detail,
    format_journal_header,
    gl_string,
    journal_batch_name,
    journal_name,
    parse_inbox,
    write_inbox,
)
from paynb.ops.ejv.scan import _feedback_slow, scan_feedback
from paynb.sandbox.ejv_files import split_message
from tests.test_ejv_support import query, scenario, seed, store_objects

FIXTURES = Path(__file__).parent / "fixtures"
FEEDBACK_FIXTURES = sorted((FIXTURES / "sbc-pay" / "rendered").glob("FEEDBACK*")) + sorted(
    (FIXTURES / "formats").glob("FEEDBACK*")
)


@pytest.fixture
def ejv_db_url(sandbox_db_url: str) -> str:
    seed(sandbox_db_url)
    return sandbox_db_url


def _name(key: str) -> str:
    return PurePosixPath(key).name


def test_inbox_files_match_the_ejv_rows(ejv_db_url: str) -> None:
    objects = store_objects(ejv_db_url)
    files = {r[1]: r for r in query(ejv_db_url, "SELECT id, file_ref, file_type FROM ejv_files")}
    headers = query(
        ejv_db_url,
        "SELECT h.ejv_file_id, h.id, array_agg(l.link_id ORDER BY l.link_id) FROM ejv_headers h"
        " JOIN ejv_links l ON l.ejv_header_id = h.id GROUP BY h.id",
    )
    inbox_keys = [k for k in objects if _name(k).startswith("INBOX") and not k.endswith(".TRG")]
    assert {_name(k) for k in inbox_keys} == set(files)  # every file once, in one place
    for key in inbox_keys:
        data = objects[key]
        inbox = parse_inbox(data, file=key)
        assert write_inbox(inbox).encode() == data
        assert inbox.verify_totals() == []
        file_id = files[_name(key)][0]
        assert inbox.batch_numbers == (file_id,)
        expected = {h[1]: set(h[2]) for h in headers if h[0] == file_id}
        got: dict[int, set[int]] = {}
        for r in inbox.details():
            assert r.journal_name == f"FI{r.ejv_header_id:08d}"
            got.setdefault(r.ejv_header_id, set()).add(r.invoice_id)
        assert got == expected


def test_files_are_in_the_current_and_legacy_layouts(ejv_db_url: str) -> None:
    objects = store_objects(ejv_db_url)
    folders = {k.split("/", 1)[0] for k in objects if not k.startswith("ar/")}
    assert folders >= {"cgi_feedback", "cgi_processed", "cgi-ejv"}
    legacy = [_name(k) for k in objects if k.startswith("cgi-ejv/")]
    assert any(n.startswith("FEEDBACK") for n in legacy) and any(n.startswith("INBOX") for n in legacy)
    for key in objects:
        if key.startswith(("cgi_processed/", "cgi_processing/")) and not key.endswith(".TRG"):
            assert objects[key + ".TRG"] == b""  # the trigger travels with its INBOX
    refs = {
        r[0]
        for r in query(
            ejv_db_url, "SELECT feedback_file_ref FROM ejv_files WHERE feedback_file_ref IS NOT NULL"
        )
    }
    feedback = {_name(k): v for k, v in objects.items() if _name(k).startswith("FEEDBACK")}
    assert set(feedback) == refs
    for name, data in feedback.items():
        parsed = parse_feedback(data, file=name)
        rows = query(ejv_db_url, "SELECT id FROM ejv_files WHERE feedback_file_ref = :n ORDER BY id", n=name)
        assert list(parsed.batch_numbers) == [r[0] for r in rows]


def test_no_feedback_scenario_has_an_inbox_and_no_feedback(ejv_db_url: str) -> None:
    (file_id,) = scenario(ejv_db_url, "ejv_no_feedback", "ejv_files")
    (file_ref,) = query(ejv_db_url, "SELECT file_ref FROM ejv_files WHERE id = :i", i=file_id)[0]
    objects = store_objects(ejv_db_url)
    assert [k for k in objects if _name(k) == file_ref]
    for key, data in objects.items():
        if _name(key).startswith("FEEDBACK"):
            assert file_id not in parse_feedback(data, file=key).batch_numbers


def test_errored_scenario_lines_carry_the_return_codes(ejv_db_url: str) -> None:
    (file_id,) = scenario(ejv_db_url, "ejv_errored_stop_ejv", "ejv_files")
    link_ids = set(scenario(ejv_db_url, "ejv_errored_stop_ejv", "ejv_links"))
    header_ids = set(scenario(ejv_db_url, "ejv_errored_stop_ejv", "ejv_headers"))
    feedback_ref, file_message = query(
        ejv_db_url, "SELECT feedback_file_ref, message FROM ejv_files WHERE id = :i", i=file_id
    )[0]
    errored = {
        r[0]: r[1]
        for r in query(
            ejv_db_url,
            "SELECT link_id, message FROM ejv_links WHERE id = ANY(:ids)",
            ids=list(link_ids),
        )
    }
    (data,) = [v for k, v in store_objects(ejv_db_url).items() if _name(k) == feedback_ref]
    parsed = parse_feedback(data, file=feedback_ref)
    bh = [r for r in parsed if r.record_type == "BH"]
    assert [(r.return_code, r.return_message) for r in bh] == [split_message(file_message)]
    assert bh[0].return_code != "0000"
    for r in parsed:
        if r.record_type == "JH":
            assert (r.return_code != "0000") == (r.ejv_header_id in header_ids)
        if r.record_type == "JD":
            if r.invoice_id in errored:
                assert (r.return_code, r.return_message) == split_message(errored[r.invoice_id])
                assert r.return_code == "0155"
            else:
                assert r.return_code == "0000" and r.return_message == ""


def test_completed_files_have_only_success_codes(ejv_db_url: str) -> None:
    objects = store_objects(ejv_db_url)
    completed = {
        r[0]
        for r in query(
            ejv_db_url, "SELECT feedback_file_ref FROM ejv_files WHERE disbursement_status_code = 'COMPLETED'"
        )
    }
    checked = 0
    for key, data in objects.items():
        if _name(key) in completed:
            assert parse_feedback(data, file=key).errors() == []
            checked += 1
    assert checked == len(completed) > 0


def test_split_message() -> None:
    assert split_message("JD 0155 Invalid account code combination") == (
        "0155",
        "JD 0155 Invalid account code combination",
    )
    assert split_message("0703GL Effective Date") == ("9999", "0703GL Effective Date")  # no word boundary
    assert split_message(None) == ("9999", "")


# --- writer round trip and scanner equivalence (no database) ------------------------------------------------

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)
codes = st.sampled_from(["0000", "0000", "0000", "0155", "0703", "1111", "ABCD"])
messages = st.text(alphabet="ABCDEFGHIJ abcdefg0123456789():.-", max_size=150)


@st.composite
def inboxes(draw: st.DrawFn) -> str:
    batch = draw(st.integers(1, 999_999_999))
    bt = draw(st.sampled_from(["GA", "GI"]))
    day = draw(st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)))
    lines = [format_batch_header("3505", bt, 2027, batch)]
    count, total, n = 0, Decimal(0), 0
    for h in draw(st.lists(st.integers(1, 99_999_999), min_size=1, max_size=3, unique=True)):
        pairs = draw(
            st.lists(
                st.tuples(amounts, st.integers(1, 10**12), st.sampled_from(["", "pr"])),
                min_size=1,
                max_size=4,
            )
        )
        jt = sum((p[0] for p in pairs), Decimal(0))
        lines.append(
            format_journal_header("3505", bt, journal_name("FI", h), journal_batch_name("FI", batch), jt)
        )
        count += 1
        total += jt
        for amount, invoice, kind in pairs:
            flow = f"{invoice}-PR-{invoice % 1000 + 1}" if kind else str(invoice)
            for dc, gl in (
                ("C", gl_string("112", "32363", "34725", "4401", "3200000")),
                ("D", gl_string("027", "10029", "10101", "6001", "1000029")),
            ):
                n += 1
                count += 1
                lines.append(
                    format_journal_detail(
                        "3505", bt, journal_name("FI", h), n, day, gl, amount, dc, f"BCREG #{flow}", flow
                    )
                )
    lines.append(format_batch_trailer("3505", bt, 2027, batch, count, total))
    return "".join(lines)


@given(text=inboxes(), outcomes=st.lists(st.tuples(codes, messages), min_size=1, max_size=20))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_feedback_writer_round_trips(text: str, outcomes: list[tuple[str, str]]) -> None:
    inbox = parse_inbox(text)
    picks = iter(outcomes * 100)

    def outcome(_record: object) -> tuple[str, str]:
        return next(picks)

    feedback = render_feedback(inbox, outcome=outcome)
    parsed = parse_feedback(feedback)
    sent = [r for r in inbox if r.record_type == "JD"]
    back = parsed.details()
    assert [
        (
            r.journal_name,
            r.effective_date,
            r.amount,
            r.debit_credit,
            r.flowthrough,
            r.invoice_id,
            r.refunds_partial_id,
            r.batch_number,
        )
        for r in back
    ] == [
        (
            r.journal_name,
            r.effective_date,
            r.amount,
            r.debit_credit,
            r.flowthrough,
            r.invoice_id,
            r.refunds_partial_id,
            r.batch_number,
        )
        for r in sent
    ]
    assert parsed.batch_numbers == inbox.batch_numbers
    # the codes and messages written are the ones read back (messages are stripped and cut at 150)
    with_codes = [r for r in parsed if r.record_type in ("BH", "JH", "JD")]
    expected = (outcomes * 100)[: len(with_codes)]
    assert [(r.return_code, r.return_message) for r in with_codes] == [(c, m.strip()) for c, m in expected]
    # the search scanner reads exactly what the strict parser reads
    data = feedback.encode()
    assert scan_feedback(data, file="f") == _feedback_slow(data, "f")


def _fixture_lines() -> list[str]:
    return [line for path in FEEDBACK_FIXTURES for line in path.read_text().splitlines()]


@st.composite
def mutated_feedback(draw: st.DrawFn) -> bytes:
    path = draw(st.sampled_from(FEEDBACK_FIXTURES))
    lines = path.read_text().split("\n")
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        action = draw(st.sampled_from(["char", "cut", "drop", "dup", "foreign"]))
        if action == "char" and line:
            pos = draw(st.integers(0, len(line) - 1))
            ch = draw(st.sampled_from(list("0123456789 AZaz.-CD\x1d\r\x0b")))
            lines[i] = line[:pos] + ch + line[pos + 1 :]
        elif action == "cut":
            lines[i] = line[: draw(st.integers(0, len(line)))]
        elif action == "drop":
            del lines[i]
        elif action == "dup":
            lines.insert(i, line)
        else:
            lines.insert(i, draw(st.sampled_from(_fixture_lines())))
        if not lines:
            lines = [""]
    return "\n".join(lines).encode()


@given(data=mutated_feedback())
@settings(max_examples=300, deadline=None)
def test_fast_scanner_agrees_with_the_strict_parser(data: bytes) -> None:
    fast = scan_feedback(data, file="f")
    strict = _feedback_slow(data, "f")
    assert (fast.error is None) == (strict.error is None)
    if fast.error is None:
        assert fast.rows == strict.rows


def test_inbox_names_are_utc_like_payment_jobs(ejv_db_url: str) -> None:
    # payment-jobs names INBOX files by datetime.now(tz=UTC) (docs/business-days.md): the 20:01 Pacific run
    # is named 03:01 or 04:01 the next day, and the effective dates inside follow the name's date
    from datetime import datetime, timedelta

    from paynb.formats.inbox import parse_inbox_name

    rows = query(ejv_db_url, "SELECT id, created_on, file_ref FROM ejv_files WHERE file_type = 'PAYMENT'")
    assert rows
    for _id, created_on, file_ref in rows:
        _feeder, stamp = parse_inbox_name(file_ref)
        assert stamp == created_on + timedelta(seconds=7), file_ref  # created_on is naive UTC
        assert stamp.hour in (3, 4)
    objects = store_objects(ejv_db_url)
    name = sorted(r[2] for r in rows)[-1]
    key = next(k for k in objects if k.endswith(name))
    stamp_day = datetime.strptime(name[-14:-6], "%Y%m%d").date()
    assert parse_inbox(objects[key]).effective_dates() == {stamp_day}


def test_disbursement_files_credit_the_partner_and_debit_bc_registries(ejv_db_url: str) -> None:
    # ejv_partner_distribution_task: per amount, a credit to the partner's GL then a debit to BC Registries'
    # revenue GL (client 112); a reversal swaps the sides; EFT goes through partner_disbursements
    from paynb.formats.flowthrough import parse_flowthrough

    files = dict(query(ejv_db_url, "SELECT file_ref, id FROM ejv_files WHERE file_type = 'DISBURSEMENT'"))
    reversed_invoices = {
        r[0] for r in query(ejv_db_url, "SELECT id FROM invoices WHERE disbursement_status_code = 'REVERSED'")
    }
    partner = dict(query(ejv_db_url, "SELECT id, target_id FROM partner_disbursements"))
    objects = store_objects(ejv_db_url)
    keys = [k for k in objects if _name(k) in files and not k.endswith(".TRG")]
    assert len(keys) == len(files) > 0
    seen_pd = seen_reversal = 0
    for key in keys:
        inbox = parse_inbox(objects[key], file=key)
        assert inbox.batch_types == ("GI",) and inbox.verify_totals() == []
        details = inbox.details()
        for credit, debit in zip(details[::2], details[1::2], strict=True):
            assert credit.flowthrough == debit.flowthrough and credit.amount == debit.amount
            flow = parse_flowthrough(credit.flowthrough)
            lines = {credit.gl_string[:3]: credit, debit.gl_string[:3]: debit}
            assert set(lines) in ({"104", "112"}, {"068", "112"})
            swapped = lines["112"].debit_credit == "C"
            if flow.partner_disbursement_id is not None:
                assert partner[flow.partner_disbursement_id] == flow.invoice_id
                seen_pd += 1
            else:
                seen_reversal += swapped
                assert not swapped or flow.invoice_id in reversed_invoices
    assert seen_pd > 0 and seen_reversal > 0
