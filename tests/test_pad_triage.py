"""PAD triage (docs/runbook.md#pad-decision-tree) against real PostgreSQL, the CFS sandbox server over HTTP and moto S3.

Two data sets: a hand-made world that hits every branch of the tree (``tests/pad_scenarios.py``), and the
generator's named scenarios (``paynb_sandbox.scenarios``) through the full ``sandbox_env``.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.pool import NullPool

from paynb.cfs import CfsClient
from paynb.context import Env
from paynb.ops.pad.triage import Action, TriageReport, effective_cfs_account, invoice_picker, triage_stuck_pad
from paynb.sandbox.cfs_server import RunningCfsServer
from paynb.settings import Settings
from tests import pad_scenarios
from tests.pad_scenarios import PadEnv, PadWorld, day_name

pad_env = pad_scenarios.pad_env  # the fixture


def _triage(pad: PadEnv, **kwargs) -> TriageReport:
    return triage_stuck_pad(20, env=Env(settings=pad.settings), progress=False, **kwargs)


# -- the tree, branch by branch ---------------------------------------------------------------------------
def test_every_branch_gets_its_action(pad_env: PadEnv) -> None:
    report = _triage(pad_env)
    assert report.actions() == pad_env.world.expected
    # one CFS call per distinct CFS invoice, not per pay-db invoice
    assert report.cfs_calls == 7
    assert pad_env.cfs.stats()["routes"]["get_invoice"] == 7
    # the non-settlement file in ar/ is reported, not fatal
    assert any("notes_20990101.csv" in w for w in report.warnings)


def test_rows_carry_the_evidence_behind_the_action(pad_env: PadEnv) -> None:
    report = _triage(pad_env)
    by_action = {r.action: r for r in report.rows}

    frozen = by_action[Action.ACCOUNT_FROZEN_NSF]
    assert frozen.evidence["cfs_account"]["status"] == "FREEZE"
    assert "-C consolidated invoice" in frozen.action_text
    assert frozen.cfs_invoice_number is None and frozen.cfs_amount_due is None

    wait = by_action[Action.WAIT_PAD_ACTIVATION]
    assert "wait for PAD activation on" in wait.action_text

    errored = by_action[Action.CHECK_CREATE_INVOICES]
    # the older INACTIVE row is not the effective one
    assert errored.evidence["cfs_account"]["status"] == "ACTIVE"
    assert "error email" in errored.action_text

    uncharged = by_action[Action.ESCALATE_CAS_NOT_DEBITED]
    assert uncharged.cfs_invoice_number == "REG00100001"
    assert uncharged.cfs_amount_due == Decimal("30.00")
    assert "escalate to CAS" in uncharged.action_text

    missing = by_action[Action.CAS_INVOICE_MISSING]
    assert missing.evidence["http_status"] == 404
    assert missing.action_text.startswith("CAS has no such invoice: REG00200001")

    replay = next(r for r in report.rows if r.cfs_invoice_number == "REG00300001")
    assert replay.action is Action.REPLAY_SETTLEMENT_CSV
    assert replay.cfs_amount_due == Decimal("0.00")
    assert replay.evidence["file"] == f"ar/{day_name(10)}"
    assert f"paynb settlement plan-replay ar/{day_name(10)}" in replay.action_text
    assert "2 NSF-risk row(s)" in replay.action_text  # the file also carries Not PAID rows
    (found,) = replay.evidence["settlement_files"]
    assert found["guard_state"] == "absent" and found["cas_settlements"] == []

    legacy = next(r for r in report.rows if r.cfs_invoice_number == "REG00500001")
    assert legacy.evidence["file"] == f"{pad_env.bucket}-payment-sftp/{day_name(12)}"

    midway = by_action[Action.SETTLEMENT_FAILED_MIDWAY]
    (f,) = midway.evidence["settlement_files"]
    assert f["cas_settlements"][0]["processed_on"] is None
    assert "processed_on NULL" in midway.action_text

    done = by_action[Action.SETTLEMENT_ROW_NOT_APPLIED]
    assert done.evidence["settlement_files"][0]["guard_state"] == "processed"

    lost = by_action[Action.ASK_CAS_FOR_CSV]
    assert lost.action_text.startswith("no CSV found: ask CAS for the settlement file")


def test_report_frame_json_and_summary(pad_env: PadEnv) -> None:
    report = _triage(pad_env)
    df = report.to_frame()
    assert len(df) == len(pad_env.world.expected)
    assert {
        "invoice_id",
        "account",
        "amount",
        "age_days",
        "cfs_invoice_number",
        "cfs_amount_due",
        "action",
        "action_text",
        "evidence",
    } <= set(df.columns)
    assert all(isinstance(a, Decimal) for a in df["amount"])
    summary = report.summary_by_action()
    counts = dict(zip(summary["action"], summary["invoices"], strict=True))
    assert counts["escalate_cas_not_debited"] == 3 and counts["replay_settlement_csv"] == 3
    assert summary.loc[summary["action"] == "escalate_cas_not_debited", "cfs_invoices"].item() == 1
    data = json.loads(json.dumps(report.to_dict(), default=str))
    assert data["schema_version"] == 1 and data["report"] == "pad_triage"
    assert data["total_count"] == len(pad_env.world.expected)
    assert {r["action"] for r in data["rows"]} == set(pad_env.world.expected.values())
    assert sum(s["invoices"] for s in data["summary"]) == len(pad_env.world.expected)


def test_account_filter_and_threshold(pad_env: PadEnv) -> None:
    report = _triage(pad_env)
    one = report.rows[0]
    only = triage_stuck_pad(20, one.account, settings=pad_env.settings, progress=False)
    assert {r.account for r in only.rows} == {one.account}
    # 25 days: the 22- and 20-day-old invoices drop out
    older = triage_stuck_pad(25, settings=pad_env.settings, progress=False)
    assert len(older) < len(report) and all(r.age_days >= 25 for r in older.rows)


# -- CFS misbehaving ---------------------------------------------------------------------------------------
def test_cfs_500_then_success_is_retried(pad_env: PadEnv) -> None:
    pad_env.cfs.set_knobs(fail_next=[["invs/REG00100001/", 500], ["invs/REG00300001/", 503]])
    with pad_env.client() as client:
        report = _triage(pad_env, cfs=client)
    assert report.actions() == pad_env.world.expected
    assert pad_env.cfs.stats()["statuses"].get("500") == 1


def test_cfs_failure_that_persists_is_an_unknown_row_not_a_crash(pad_env: PadEnv) -> None:
    pad_env.cfs.set_knobs(fail_next=[["invs/REG00100001/", 500]] * 10)
    with pad_env.client(max_retries=2) as client:
        report = _triage(pad_env, cfs=client)
    rows = [r for r in report.rows if r.cfs_invoice_number == "REG00100001"]
    assert len(rows) == 3
    for r in rows:
        assert r.action is Action.UNKNOWN_RETRY
        assert r.evidence["http_status"] == 500 and "500" in r.evidence["message"]
    others = {k: v for k, v in report.actions().items() if k not in {r.invoice_id for r in rows}}
    assert others == {k: v for k, v in pad_env.world.expected.items() if k in others}
    assert any("could not be read" in w for w in report.warnings)


def test_token_expiring_mid_batch(pad_env: PadEnv) -> None:
    pad_env.cfs.set_knobs(expire_tokens_after=3)  # every token dies after 3 more API calls
    with pad_env.client(concurrency=2) as client:
        report = _triage(pad_env, cfs=client)
        assert client.token_requests >= 2
    assert report.actions() == pad_env.world.expected


def test_unreachable_cfs_gives_unknown_rows(pad_env: PadEnv) -> None:
    pad_env.cfs.set_knobs(fail_next=[["invs/", 0]] * 50)  # hang up on every invoice GET
    with pad_env.client(max_retries=1) as client:
        report = _triage(pad_env, cfs=client)
    needs_cfs = {r.invoice_id for r in report.rows if r.cfs_invoice_number}
    assert needs_cfs and all(report.action_for(i) is Action.UNKNOWN_RETRY for i in needs_cfs)
    # branch 1 does not need CFS and is still answered
    assert report.actions()[next(iter(pad_env.world.expected))] == "account_frozen_nsf"


def test_store_unreachable_is_unknown_not_ask_cas(pad_env: PadEnv) -> None:
    broken = Settings.load(env={**pad_env.env, "PAYNB_S3_ENDPOINT": "http://127.0.0.1:9"}, dotenv=None)
    report = triage_stuck_pad(20, settings=broken, progress=False)
    settled = [r for r in report.rows if r.cfs_amount_due == 0]
    assert settled and all(r.action is Action.UNKNOWN_RETRY for r in settled)
    assert any(w.startswith("store:") for w in report.warnings)


# -- small pieces ------------------------------------------------------------------------------------------
def test_effective_cfs_account_rule() -> None:
    rows = [
        {"id": 1, "payment_method": "PAD", "status": "ACTIVE"},
        {"id": 2, "payment_method": "PAD", "status": "INACTIVE"},
        {"id": 3, "payment_method": "EFT", "status": "ACTIVE"},
    ]
    assert effective_cfs_account(rows)["id"] == 1
    assert effective_cfs_account(rows[1:2])["id"] == 2  # only INACTIVE left: the latest one
    assert effective_cfs_account(rows[2:]) is None


def test_naive_utc_age(empty_db_url: str) -> None:
    """created_on is naive UTC: the age is computed against naive UTC now, whatever the session zone."""
    from datetime import timedelta

    from tests.pad_scenarios import NOW

    w = PadWorld(empty_db_url)
    acct = w.account(cfs_status="ACTIVE")
    inv = w.invoice(acct, days_old=20)  # 20 days and 1 hour old
    eng = sa.create_engine(empty_db_url, poolclass=NullPool)
    try:
        report = triage_stuck_pad(20, engine=eng, settings=Settings(), progress=False, now=NOW)
        assert [r.invoice_id for r in report.rows] == [inv] and report.rows[0].age_days == 20
        later = triage_stuck_pad(
            20, engine=eng, settings=Settings(), progress=False, now=NOW - timedelta(hours=2)
        )
        assert len(later) == 0
    finally:
        eng.dispose()
        w.close()


def test_picker_is_none_when_headless(pad_env: PadEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    report = _triage(pad_env)
    monkeypatch.setenv("PAYNB_HEADLESS", "1")
    assert invoice_picker(report) is None
    monkeypatch.delenv("PAYNB_HEADLESS")
    assert invoice_picker(report, interactive=False) is None
    widget = invoice_picker(report)
    assert widget is not None and len(widget.children[0].options) == len(report)


# -- CLI -----------------------------------------------------------------------------------------------------
def test_cli_table_and_json(pad_env: PadEnv) -> None:
    from paynb.cli import cli, exits

    runner = CliRunner()
    res = runner.invoke(cli, ["pad", "triage", "--days", "20"], env=pad_env.env)
    # the world's ar/ holds a file that is not a settlement CSV: incomplete (docs/exit-codes.md)
    assert res.exit_code == exits.INCOMPLETE, res.output
    assert "escalate_cas_not_debited" in res.output and "By action" in res.output
    assert max(len(line) for line in res.stdout.splitlines()) <= 120  # tables were 330 wide before fitting
    assert "nan" not in res.stdout.split() and "None" not in res.stdout.split()
    res = runner.invoke(cli, ["pad", "triage", "--json"], env=pad_env.env)
    assert res.exit_code == exits.INCOMPLETE, res.output
    data = json.loads(res.stdout)
    assert {r["invoice_id"]: r["action"] for r in data["rows"]} == pad_env.world.expected
    res = runner.invoke(cli, ["pad", "triage", "--help"])
    assert "Example:" in res.output


def test_cli_rejects_negative_days(pad_env: PadEnv) -> None:
    from paynb.cli import cli

    res = CliRunner().invoke(cli, ["pad", "triage", "--days", "-1"], env=pad_env.env)
    assert res.exit_code != 0 and "must be 0 or more" in res.output


# -- the generator's named scenarios, through the full sandbox ----------------------------------------------
NOREF_ACTIONS = {
    "FREEZE": "account_frozen_nsf",
    "PENDING_PAD_ACTIVATION": "wait_pad_activation",
    "PENDING": "wait_cfs_account",
    "ACTIVE": "check_create_invoices",
}


def scenario_expectations(db_url: str) -> tuple[dict[int, str], set[int]]:
    """(invoice id -> expected action, invoices that must not be listed) from paynb_sandbox.scenarios."""
    from paynb.sandbox.scenarios import scenario_details, scenario_ids

    expected: dict[int, str] = {}
    eng = sa.create_engine(db_url, poolclass=NullPool)
    try:
        with eng.connect() as c:

            def ids_of(numbers: list[str]) -> list[int]:
                rows = c.execute(
                    sa.text(
                        "SELECT DISTINCT invoice_id FROM invoice_references WHERE invoice_number = ANY(:n)"
                    ),
                    {"n": numbers},
                )
                return [r[0] for r in rows]

            noref = scenario_details(c, "pad_stuck_no_reference")
            status = {a["account_id"]: a["cfs_status"] for a in noref["accounts"]}
            ids = scenario_ids(c, "pad_stuck_no_reference", "invoices")
            owner = dict(
                c.execute(
                    sa.text("SELECT id, payment_account_id FROM invoices WHERE id = ANY(:i)"), {"i": ids}
                ).all()
            )
            assert set(status.values()) >= {"FREEZE", "PENDING_PAD_ACTIVATION", "ACTIVE"}
            for i in ids:
                expected[i] = NOREF_ACTIONS[status[owner[i]]]
            for i in scenario_ids(c, "pad_stuck_uncharged", "invoices"):
                expected[i] = "escalate_cas_not_debited"
            for i in scenario_ids(c, "pad_stuck_cfs_missing", "invoices"):
                expected[i] = "cas_invoice_missing"
            files = scenario_details(c, "pad_stuck_settled_csv_unprocessed")["files"]
            assert len(files) == 2
            for f in files:
                action = (
                    "settlement_failed_midway"
                    if "processed_on NULL" in f["variant"]
                    else "replay_settlement_csv"
                )
                for i in ids_of(f["invoice_numbers"]):
                    expected[i] = action
            nsf_csv = scenario_details(c, "cas_csv_with_nsf")
            nsf_numbers = set(nsf_csv["nsf_invoice_numbers"])
            for number in nsf_csv["invoice_numbers"]:
                # a 'Not PAID' row means CAS did not collect: the CFS invoice is still due
                action = "escalate_cas_not_debited" if number in nsf_numbers else "replay_settlement_csv"
                for i in ids_of([number]):
                    expected[i] = action
            # NSF'd roll-up: SETTLEMENT_SCHED (and the CC fee invoice), never APPROVED PAD: not listed
            absent = set(scenario_ids(c, "pad_nsf_freeze", "invoices"))
    finally:
        eng.dispose()
    return expected, absent


def test_sandbox_scenarios_are_classified(sandbox_env: dict[str, str], sandbox_settings: Settings) -> None:
    expected, absent = scenario_expectations(sandbox_env["PAYNB_DATABASE_URL"])
    report = triage_stuck_pad(20, settings=sandbox_settings, progress=False)
    got = report.actions()
    assert {i: got.get(i) for i in expected} == expected
    assert not absent & set(got)
    # nothing else is stuck in the sandbox: every listed invoice comes from a scenario
    assert set(got) == set(expected)
    assert report.warnings == ()


@pytest.mark.faults
def test_sandbox_with_cfs_faults(
    sandbox_env: dict[str, str], sandbox_settings: Settings, sandbox_cfs: RunningCfsServer
) -> None:
    """A 500 then success on one invoice, a 429 burst, and tokens expiring in the middle of the batch."""
    expected, _ = scenario_expectations(sandbox_env["PAYNB_DATABASE_URL"])
    uncharged = next(
        r.cfs_invoice_number
        for r in triage_stuck_pad(20, settings=sandbox_settings, progress=False).rows
        if r.action is Action.ESCALATE_CAS_NOT_DEBITED
    )
    sandbox_cfs.reset_stats()
    sandbox_cfs.set_knobs(
        fail_next=[[f"invs/{uncharged}/", 500]], burst_429=2, retry_after_s=0, expire_tokens_after=4
    )
    client = CfsClient(sandbox_settings, backoff_s=0.01, concurrency=3)
    try:
        report = triage_stuck_pad(20, settings=sandbox_settings, cfs=client, progress=False)
        assert client.token_requests >= 2  # the first token died mid-batch and was replaced
    finally:
        client.close()
    assert report.actions() == expected
    statuses = sandbox_cfs.stats()["statuses"]
    assert statuses.get("500") == 1 and statuses.get("429") == 2 and statuses.get("401", 0) >= 1
