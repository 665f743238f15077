"""The settlement replay: read-only plans over real PostgreSQL and moto S3, and the ``settlement.replay`` fix
that writes the filtered CSV once after a confirm and closes the original's guard row (#13 item 3)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from paynb.errors import ConfirmMismatch, InputError, ParseError, StalePlanError
from paynb.formats.settlement_csv import SettlementRow, parse_settlement_csv
from paynb.ops.settlements import EVENT_TYPE, apply_replay, guard_state, plan_replay
from paynb.store import open_store, pay_bucket
from tests import pad_scenarios
from tests.fix_ledger import LedgerView
from tests.pad_scenarios import PadEnv, day_name, padp

pad_env = pad_scenarios.pad_env  # the fixture

NSF_FILE = f"ar/{day_name(10)}"  # already-applied row, a payable row, a Not PAID row and a PADR row


def _store(pad: PadEnv):
    return open_store(f"s3://{pad.bucket}", pad.settings)


def _keys(pad: PadEnv) -> list[str]:
    return [o.key for o in _store(pad).list("ar/")]


def _plan(pad: PadEnv, ref: str, **kwargs):
    return plan_replay(ref, settings=pad.settings, **kwargs)


def test_nsf_rows_are_flagged_and_left_out_of_the_filtered_csv(pad_env: PadEnv) -> None:
    plan = _plan(pad_env, NSF_FILE)
    body = plan.body
    assert plan.kind == "settlement.replay"
    by_line = {r["line"]: r for r in body["rows"]}
    assert [by_line[n]["disposition"] for n in (2, 3, 4, 5)] == [
        "already_applied",
        "apply",
        "nsf_risk",
        "nsf_risk",
    ]
    assert body["nsf_risk_lines"] == [4, 5]
    assert "payment recorded" in by_line[2]["reason"]
    assert "freeze CFS account" in by_line[4]["reason"]
    # the payable row moves both pay-db invoices that share REG00300001
    changes = by_line[3]["changes"]
    assert [(c["from_status"], c["to_status"]) for c in changes] == [("APPROVED", "PAID")] * 2
    assert body["invoices_to_change"] == sorted(c["invoice_id"] for c in changes)
    assert body["counts"] == {
        "apply": 1,
        "already_applied": 1,
        "nsf_risk": 2,
        "blocked": 0,
        "no_effect": 0,
        "unsupported": 0,
    }
    nsf_warnings = [w for w in plan.warnings if w.startswith("NSF RISK")]
    assert len(nsf_warnings) == 2 and all("Excluded from the filtered CSV" in w for w in nsf_warnings)
    assert body["guard"] == {"file_name": day_name(10), "state": "absent", "rows": []}

    filtered = body["filtered_csv"]
    stem = day_name(10)[:-4]
    assert filtered["key"] == f"ar/{stem}.replay-{filtered['sha256'][:8]}.csv"
    assert filtered["lines"] == [3] and filtered["rows"] == 1
    msg = body["queue_message"]
    assert msg["type"] == EVENT_TYPE == "bc.registry.payment.casSettlementUploaded"
    assert msg["data"] == {"fileSource": "GOOGLE_BUCKET", "location": "ar", "fileName": filtered["file_name"]}
    assert msg["specversion"] == "1.0" and msg["datacontenttype"] == "application/json"
    assert body["gcloud_command"].startswith("gcloud pubsub topics publish")
    assert filtered["file_name"] in body["gcloud_command"]
    change = body["guard_change"]
    assert change["statements"] == [] and change["published_file"] == filtered["file_name"]
    assert "inserts its guard row" in change["original"]["note"]
    (insert,) = change["original"]["statements"]
    assert insert["sql"].startswith("INSERT INTO cas_settlements") and insert["params"] == {
        "file_name": day_name(10)
    }


def test_dry_run_writes_nothing_and_the_hash_is_stable(pad_env: PadEnv) -> None:
    before = _keys(pad_env)
    first = _plan(pad_env, NSF_FILE)
    second = _plan(pad_env, NSF_FILE)
    assert first.sha256 == second.sha256 and first.to_json() == second.to_json()
    assert _keys(pad_env) == before


def _query(pad: PadEnv, sql: str, **params) -> list[tuple]:
    import sqlalchemy as sa

    with pad.world.engine.connect() as c:
        return [tuple(r) for r in c.execute(sa.text(sql), params)]


def _apply(pad: PadEnv, plan, confirm=None, **kw):
    return apply_replay(plan, plan.sha256 if confirm is None else confirm, settings=pad.settings, **kw)


def _guards(pad: PadEnv, name: str) -> list[tuple]:
    return _query(
        pad, "SELECT id, processed_on FROM cas_settlements WHERE file_name = :f ORDER BY id", f=name
    )


def test_write_filtered_without_a_confirm_writes_nothing(pad_env: PadEnv) -> None:
    before = _keys(pad_env)
    with pytest.raises(InputError, match="needs a reviewed plan and its confirm hash"):
        _plan(pad_env, NSF_FILE, write_filtered=True)
    plan = _plan(pad_env, NSF_FILE)
    with pytest.raises(ConfirmMismatch):
        _apply(pad_env, plan, confirm="")
    with pytest.raises(ConfirmMismatch):
        _apply(pad_env, plan, confirm="0" * 64)
    assert _keys(pad_env) == before and _guards(pad_env, day_name(10)) == []


def test_apply_writes_a_new_object_with_only_the_safe_rows_once(
    pad_env: PadEnv, fix_ledger: LedgerView
) -> None:
    plan = _plan(pad_env, NSF_FILE)
    result = _apply(pad_env, plan, ticket="OPS-7", reason="rows never applied")
    assert result.outcome.status == "applied" and result.outcome.detail["written"] is True
    filtered = plan.body["filtered_csv"]
    store = _store(pad_env)
    data = store.get(filtered["key"])
    assert store.stat(filtered["key"]).sha256 == filtered["sha256"] and len(data) == filtered["bytes"]
    parsed = parse_settlement_csv(data, file=filtered["key"])
    assert [r.target_transaction_number for r in parsed.rows] == ["REG00300001"]
    assert not parsed.nsf_risk_rows()
    assert len(parse_settlement_csv(store.get(NSF_FILE)).rows) == 4  # the original is untouched
    assert result.outcome.detail["queue_message"]["data"]["fileName"] == filtered["file_name"]
    # the original never reached pay-queue: it is now guarded (and processed), so it is never taken whole
    ((_gid, processed_on),) = _guards(pad_env, day_name(10))
    assert processed_on is not None
    # the same plan again: the data changed (the guard row), so it is refused; a fresh plan has nothing to do
    with pytest.raises(StalePlanError):
        _apply(pad_env, plan)
    fresh = _plan(pad_env, NSF_FILE)
    assert (
        fresh.body["guard"]["state"] == "processed" and fresh.body["filtered_csv"]["key"] == filtered["key"]
    )
    again = _apply(pad_env, fresh)
    assert again.outcome.status == "already_applied" and again.outcome.rows_affected == 0
    assert sum(1 for k in _keys(pad_env) if ".replay-" in k) == 1
    assert len(_guards(pad_env, day_name(10))) == 1
    assert fix_ledger.finished("settlement.replay") == ["applied", "already_applied"]


def test_apply_refuses_another_object_at_the_new_name(pad_env: PadEnv) -> None:
    plan = _plan(pad_env, NSF_FILE)
    key = plan.body["filtered_csv"]["key"]
    _store(pad_env).put(key, b"someone else's file\n")
    from paynb.errors import StoreError

    with pytest.raises(StoreError, match="already exists with other content"):
        _apply(pad_env, plan)
    assert _store(pad_env).get(key) == b"someone else's file\n" and _guards(pad_env, day_name(10)) == []


def test_midway_failure_shows_the_guard_row(pad_env: PadEnv) -> None:
    plan = _plan(pad_env, f"ar/{day_name(8)}")
    guard = plan.body["guard"]
    assert guard["state"] == "processing_failed"
    (row,) = guard["rows"]
    assert row["file_name"] == day_name(8) and row["processed_on"] is None
    assert any("processed_on is NULL" in w for w in plan.warnings)
    assert plan.body["counts"]["apply"] == 1
    assert plan.body["filtered_csv"]["header_style"] == "parser"  # the header is kept as CAS wrote it
    assert "sets processed_on" in plan.body["guard_change"]["original"]["note"]


def test_a_replayed_file_is_no_longer_flagged_unprocessed(pad_env: PadEnv, fix_ledger: LedgerView) -> None:
    # #13 item 3: the original's row (processed_on NULL) kept flagging the file after a replay
    name = day_name(8)
    unprocessed = "SELECT file_name FROM cas_settlements WHERE processed_on IS NULL ORDER BY file_name"
    assert (name,) in _query(pad_env, unprocessed)
    plan = _plan(pad_env, f"ar/{name}")
    (finish,) = plan.body["guard_change"]["original"]["statements"]
    assert finish["sql"].startswith("UPDATE cas_settlements SET processed_on")
    result = _apply(pad_env, plan, ticket="OPS-8")
    assert result.outcome.rows_affected == 1
    assert (name,) not in _query(pad_env, unprocessed)  # what the monitors ask
    rows = _query(
        pad_env,
        "SELECT id, file_name, received_on, processed_on FROM cas_settlements WHERE file_name = :f",
        f=name,
    )
    assert len(rows) == 1  # the row stays: pay-queue still skips the unfiltered original
    assert guard_state(
        [dict(zip(("id", "file_name", "received_on", "processed_on"), rows[0], strict=True))]
    ) == ("processed")
    # triage's view of the replay file: published by nobody yet, so it is the one to publish
    fresh = _plan(pad_env, f"ar/{name}")
    assert fresh.body["guard"]["state"] == "processed"


def test_an_earlier_publish_of_the_filtered_file_gets_a_delete(pad_env: PadEnv) -> None:
    first = _plan(pad_env, f"ar/{day_name(8)}")
    name = first.body["filtered_csv"]["file_name"]
    guard_id = pad_env.world.settlement(name, processed=False)
    plan = _plan(pad_env, f"ar/{day_name(8)}")
    (stmt,) = plan.body["guard_change"]["statements"]
    assert stmt["sql"] == "DELETE FROM cas_settlements WHERE id = :id AND file_name = :file_name"
    assert stmt["params"] == {"id": guard_id, "file_name": name}
    assert stmt["row"]["id"] == guard_id and stmt["row"]["processed_on"] is None
    assert plan.sha256 != first.sha256
    result = _apply(pad_env, plan)
    assert result.outcome.rows_affected == 2  # the stale row of the filtered file, and the original's
    assert _guards(pad_env, name) == []


def test_legacy_bucket_and_bare_names(pad_env: PadEnv) -> None:
    legacy = f"{pad_env.bucket}-payment-sftp/{day_name(12)}"
    by_ref = _plan(pad_env, legacy)
    assert by_ref.body["file"]["source"] == "legacy"
    bare = _plan(pad_env, day_name(12))  # not in ar/, found in the legacy bucket
    assert bare.body["file"]["ref"] == legacy
    assert bare.body["counts"]["apply"] == 1
    # the filtered copy always goes to the current bucket's ar/ folder, which pay-queue reads today
    assert bare.body["filtered_csv"]["key"].startswith("ar/")
    assert _plan(pad_env, day_name(10)).body["file"]["ref"] == NSF_FILE


def test_local_file(pad_env: PadEnv, tmp_path: Path) -> None:
    path = tmp_path / day_name(10)
    path.write_bytes(_store(pad_env).get(NSF_FILE))
    plan = _plan(pad_env, str(path))
    assert plan.body["file"]["source"] == "local"
    assert plan.body["counts"] == _plan(pad_env, NSF_FILE).body["counts"]


def test_account_mismatch_and_other_row_kinds(pad_env: PadEnv, tmp_path: Path) -> None:
    w = pad_env.world
    acct = w.account()
    inv = w.invoice(acct, ref="REG00800001", total="25.00")
    cm = w.invoice(acct, ref="REG00800002", total="30.00")

    def row(record: str, number: str, status: str = "Fully PAID", **kw) -> SettlementRow:
        base = padp(number, acct.account, "25.00", status=status, record=record, app_id=90 + len(rows))
        return SettlementRow(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, **kw})

    rows: list[SettlementRow] = []
    rows.append(row("PADP", "REG00800001", customer_account="WRONG"))
    rows.append(row("CMAP", "REG00800002", source_transaction_type="CM", source_transaction_number="CM1"))
    rows.append(row("PADP", "REG00800002", source_transaction_number="RCPT-X"))
    rows.append(row("ONAP", "REG00800002"))
    rows.append(row("XXXX", "REG00800002"))
    rows.append(row("ADJS", "REG00800002"))
    rows.append(row("PADP", "REG09999999"))
    rows.append(row("PADP", "REG00800001", status="Partially PAID"))
    from paynb.formats.settlement_csv import write_settlement_csv

    path = tmp_path / "BCR_PAYMENT_APPL_mixed.csv"
    path.write_text(write_settlement_csv(rows))
    plan = _plan(pad_env, str(path))
    got = [(r["line"], r["disposition"]) for r in plan.body["rows"]]
    assert got == [
        (2, "blocked"),
        (3, "apply"),
        (4, "apply"),
        (5, "unsupported"),
        (6, "unsupported"),
        (7, "no_effect"),
        (8, "blocked"),
        (9, "blocked"),
    ]
    by_line = {r["line"]: r for r in plan.body["rows"]}
    assert "aborts the rest of the file" in by_line[2]["reason"]
    assert [c["invoice_id"] for c in by_line[3]["changes"]] == [cm]
    assert by_line[4]["changes"] == [] and "line 3 of this file pays" in by_line[4]["reason"]
    assert "no invoice found" in by_line[8]["reason"]
    assert plan.body["unsupported_lines"] == [5, 6]
    assert plan.body["filtered_csv"]["lines"] == [3, 4]
    assert any("aborts" in w for w in plan.warnings)
    assert inv not in plan.body["invoices_to_change"]


# -- bad input --------------------------------------------------------------------------------------------
def test_missing_file_is_a_clear_error(pad_env: PadEnv) -> None:
    before = _keys(pad_env)
    with pytest.raises(InputError, match="settlement file not found") as err:
        _plan(pad_env, "ar/BCR_PAYMENT_APPL_19990101.csv")
    assert "ar/BCR_PAYMENT_APPL_19990101.csv" in str(err.value)
    with pytest.raises(InputError, match="not found"):
        _plan(pad_env, "BCR_PAYMENT_APPL_19990101.csv")
    assert _keys(pad_env) == before


def test_non_csv_input_is_a_parse_error_and_nothing_is_written(pad_env: PadEnv, tmp_path: Path) -> None:
    before = _keys(pad_env)
    with pytest.raises(ParseError, match="missing required column") as err:
        _plan(pad_env, "ar/notes_20990101.csv")
    assert "ar/notes_20990101.csv" in str(err.value)
    binary = tmp_path / "picture.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(ParseError, match="not valid utf-8"):
        _plan(pad_env, str(binary))
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ParseError, match="empty file"):
        _plan(pad_env, str(empty))
    with pytest.raises(InputError, match="folder"):
        _plan(pad_env, str(tmp_path))
    assert _keys(pad_env) == before


# -- CLI -----------------------------------------------------------------------------------------------------
def test_cli_plan_replay(pad_env: PadEnv, tmp_path: Path) -> None:
    from paynb.cli import cli

    expected = _plan(pad_env, NSF_FILE)
    runner = CliRunner()
    res = runner.invoke(cli, ["settlement", "plan-replay", NSF_FILE], env=pad_env.env)
    assert res.exit_code == 0, res.output
    assert f"plan sha256: {expected.sha256}" in res.output
    assert "!! NSF RISK" in res.output and "dry run, not written" in res.output
    assert "gcloud pubsub topics publish" in res.output
    assert not any(".replay-" in k for k in _keys(pad_env))

    res = runner.invoke(cli, ["settlement", "plan-replay", NSF_FILE, "--json"], env=pad_env.env)
    data = json.loads(res.output)
    assert data["sha256"] == expected.sha256 and data["written"] is False
    assert data["plan"]["body"]["counts"]["nsf_risk"] == 2

    # the old spelling no longer writes without a confirm
    res = runner.invoke(cli, ["settlement", "plan-replay", NSF_FILE, "--write-filtered"], env=pad_env.env)
    assert res.exit_code != 0 and expected.sha256 in str(res.exception)
    assert not any(".replay-" in k for k in _keys(pad_env))

    out = tmp_path / "plan.json"
    res = runner.invoke(cli, ["settlement", "replay", "plan", NSF_FILE, "--out", str(out)], env=pad_env.env)
    assert res.exit_code == 0, res.output
    assert f"--confirm {expected.sha256}" in res.output
    res = runner.invoke(
        cli, ["settlement", "replay", "apply", "--plan", str(out), "--confirm", "0" * 64], env=pad_env.env
    )
    assert res.exit_code == 7 and not any(".replay-" in k for k in _keys(pad_env))  # refused
    res = runner.invoke(
        cli,
        [
            "settlement",
            "replay",
            "apply",
            "--plan",
            str(out),
            "--confirm",
            expected.sha256,
            "--ticket",
            "OPS-9",
        ],
        env=pad_env.env,
    )
    assert res.exit_code == 0, res.output
    assert "written" in res.output and "gcloud pubsub topics publish" in res.output
    assert expected.body["filtered_csv"]["file_name"] in res.output
    assert expected.body["filtered_csv"]["key"] in _keys(pad_env)


def test_cli_bad_input_exit_code() -> None:
    from paynb.cli import main

    assert main(["settlement", "plan-replay", "/nonexistent/BCR_PAYMENT_APPL_19990101.csv"]) == 2


def test_plan_amounts_are_exact(pad_env: PadEnv) -> None:
    plan = _plan(pad_env, f"ar/{day_name(8)}")
    (row,) = plan.body["rows"]
    assert row["amount"] == Decimal("40.00")
    assert json.loads(plan.to_json())["body"]["rows"][0]["amount"] == "40.00"


# -- the generator's scenarios -------------------------------------------------------------------------------
def _details(db_url: str, name: str) -> dict:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from paynb.sandbox.scenarios import scenario_details

    eng = sa.create_engine(db_url, poolclass=NullPool)
    try:
        with eng.connect() as c:
            return scenario_details(c, name)
    finally:
        eng.dispose()


def test_sandbox_csv_with_nsf(sandbox_env: dict[str, str], sandbox_settings) -> None:
    d = _details(sandbox_env["PAYNB_DATABASE_URL"], "cas_csv_with_nsf")
    plan = plan_replay(d["key"], settings=sandbox_settings)
    body = plan.body
    nsf_numbers = set(d["nsf_invoice_numbers"])
    nsf_rows = [r for r in body["rows"] if r["nsf_risk"]]
    assert nsf_rows and {r["target_number"] for r in nsf_rows} == nsf_numbers
    assert {r["record_type"] for r in nsf_rows} >= {"PADR"} or {r["status"] for r in nsf_rows} == {"Not PAID"}
    assert all(r["disposition"] == "nsf_risk" for r in nsf_rows)
    assert sum(w.startswith("NSF RISK") for w in plan.warnings) == len(nsf_rows)
    payable = {r["target_number"] for r in body["rows"] if r["disposition"] == "apply"}
    # every stuck PAD roll-up of the scenario, plus any other safe row of the file (e.g. an online-banking BOLP)
    assert set(d["invoice_numbers"]) - nsf_numbers <= payable
    assert payable == {r["target_number"] for r in body["rows"] if not r["nsf_risk"]}
    filtered = body["filtered_csv"]
    assert not set(filtered["lines"]) & {r["line"] for r in nsf_rows}
    assert body["guard"]["state"] == "absent"
    # written, it holds exactly the payable rows
    result = apply_replay(plan, plan.sha256, settings=sandbox_settings)
    assert result.outcome.detail["written"]
    store = pay_bucket(sandbox_settings)
    rows = parse_settlement_csv(store.get(filtered["key"])).rows
    assert {r.target_transaction_number for r in rows} == payable and not any(r.is_nsf_risk for r in rows)


def test_sandbox_unprocessed_files(sandbox_env: dict[str, str], sandbox_settings) -> None:
    files = _details(sandbox_env["PAYNB_DATABASE_URL"], "pad_stuck_settled_csv_unprocessed")["files"]
    for f in files:
        plan = plan_replay(f["key"], settings=sandbox_settings)
        state = "processing_failed" if "processed_on NULL" in f["variant"] else "absent"
        assert plan.body["guard"]["state"] == state
        stuck = {
            r["target_number"] for r in plan.body["rows"] if r["disposition"] == "apply" and r["changes"]
        }
        assert set(f["invoice_numbers"]) <= stuck
        assert plan.body["nsf_risk_lines"] == []
        assert plan_replay(f["key"], settings=sandbox_settings).sha256 == plan.sha256


def test_the_apply_is_in_the_ledger_and_audited(pad_env: PadEnv, tmp_path: Path) -> None:
    from tests.fix_ledger import assert_apply_is_audited

    plan = _plan(pad_env, f"ar/{day_name(8)}")
    result = _apply(pad_env, plan, ticket="OPS-5")
    assert_apply_is_audited(result.apply_id, "settlement.replay", tmp_path)


def test_pad_triage_stops_flagging_the_replayed_file(pad_env: PadEnv) -> None:
    # #13 item 3 through the monitor itself: before, the file "failed mid-way"; after the replay apply the
    # original is closed and triage points at the filtered copy, which still has to be published
    from paynb.ops.pad.triage import Action, triage_stuck_pad

    def row() -> object:
        report = triage_stuck_pad(20, settings=pad_env.settings, progress=False)
        return next(r for r in report.rows if day_name(8)[:-4] in str(r.evidence.get("file", "")))

    before = row()
    assert before.action == Action.SETTLEMENT_FAILED_MIDWAY
    plan = _plan(pad_env, f"ar/{day_name(8)}")
    _apply(pad_env, plan)
    after = row()
    assert after.action == Action.REPLAY_SETTLEMENT_CSV
    assert after.evidence["file"] == plan.body["filtered_csv"]["key"]
    assert "processed_on NULL" not in after.action_text
