"""The data-fix protocol end to end on the sandbox PostgreSQL with a toy fix: ledger entries, anchors,
refusals, failures, and `paynb audit verify` catching edited or cut entries."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from paynb.context import Env
from paynb.errors import AfterCommitError, ConfirmMismatch, PlanEditedError, StalePlanError
from paynb.fixes import apply_fix
from paynb.jobs.audit import verify
from paynb.ledger import open_ledger
from paynb.plan import Plan
from paynb.settings import Settings
from tests.toy_fix import TABLE, create_table, read_note, role_urls, toy_fix


@pytest.fixture
def env(empty_db_url: str, tmp_path: Path) -> Env:
    create_table(empty_db_url, {1: "old", 2: "other"})
    settings = Settings.load(
        env={**role_urls(empty_db_url), "PAYNB_DATA_DIR": str(tmp_path / "data")}, dotenv=None
    )
    return Env(settings=settings, operator="ops-tester")


def _sql(env: Env, statement: str, *args: object) -> None:
    with sqlite3.connect(Path(env.settings.data_dir) / "ledger.sqlite") as db:
        db.execute(statement, args)


def _failing(env: Env) -> list[str]:
    return [f"{r.kind}:{r.state}" for r in verify(all=True, settings=env.settings) if not r.ok]


def test_apply_records_started_finished_and_an_anchor(env: Env) -> None:
    fix = toy_fix()
    plan = fix.plan(env, row_id=1, note="new")
    result = apply_fix(fix, plan, plan.sha256, env=env, ticket="OPS-1", reason="typo")
    assert read_note(env, 1) == "new"
    assert (result.outcome.rows_affected, result.anchor_state) == (1, "archived")
    ledger = open_ledger(env.settings)
    started, finished = ledger.entries(kind="apply")
    assert (started.event, finished.event, finished.ref) == ("started", "finished", result.apply_id)
    assert started.record["plan"]["body"]["after"] == "new" and started.record["plan_sha256"] == plan.sha256
    assert started.record["operator"]["name"] == "ops-tester" and started.record["ticket"] == "OPS-1"
    assert finished.record["rows_affected"] == 1 and finished.record["before"] == {"note": "old"}
    assert finished.record["touched"]["rows"] == [{"table": TABLE, "id": 1}]
    anchor = (
        Path(env.settings.data_dir) / "archive" / "anchors" / ledger.ledger_id / f"{finished.seq:012d}.json"
    )
    assert anchor.is_file()
    assert _failing(env) == []


@pytest.mark.parametrize(
    "tamper",
    [
        "edit the finished entry",
        "delete the finished entry",
        "delete the last two entries",
        "delete the start",
    ],
)
def test_audit_verify_catches_edited_or_cut_apply_entries(env: Env, tamper: str) -> None:
    fix = toy_fix()
    plan = fix.plan(env, row_id=1, note="new")
    result = apply_fix(fix, plan, plan.sha256, env=env)
    assert _failing(env) == []
    if tamper == "edit the finished entry":
        _sql(
            env,
            "UPDATE paynb_ledger SET record = replace(record, '\"rows_affected\":1', '\"rows_affected\":0') "
            "WHERE ref = ? AND event = 'finished'",
            result.apply_id,
        )
    elif tamper == "delete the finished entry":
        _sql(env, "DELETE FROM paynb_ledger WHERE ref = ? AND event = 'finished'", result.apply_id)
    elif tamper == "delete the last two entries":
        _sql(env, "DELETE FROM paynb_ledger WHERE seq > (SELECT max(seq) - 2 FROM paynb_ledger)")
    else:
        _sql(env, "DELETE FROM paynb_ledger WHERE ref = ? AND event = 'started'", result.apply_id)
    assert _failing(env), tamper


def test_refusals_write_nothing_and_say_which_it_is(env: Env, tmp_path: Path) -> None:
    fix = toy_fix()
    plan = fix.plan(env, row_id=1, note="new")
    wrong = plan.sha256[:20] + ("0" if plan.sha256[20] != "0" else "1") + plan.sha256[21:]
    with pytest.raises(ConfirmMismatch) as caught:
        apply_fix(fix, plan, wrong, env=env)
    assert plan.sha256[:24] in str(caught.value) and wrong[:24] in str(caught.value)
    with pytest.raises(ConfirmMismatch, match="needs --confirm"):
        apply_fix(fix, plan, None, env=env)

    path = plan.write(tmp_path / "plan.json")
    assert path.stat().st_mode & 0o077 == 0
    path.write_text(path.read_text().replace('"new"', '"evil"'))
    with pytest.raises(PlanEditedError, match="was edited"):
        apply_fix(fix, Plan.read(path), plan.sha256, env=env)

    apply_fix(fix, fix.plan(env, row_id=2, note="x"), fix.plan(env, row_id=2, note="x").sha256, env=env)
    other = fix.plan(env, row_id=1, note="new")
    _update(env, 1, "changed meanwhile")
    with pytest.raises(StalePlanError, match="the data changed") as stale:
        apply_fix(fix, other, other.sha256, env=env)
    assert "before" in str(stale.value)
    assert read_note(env, 1) == "changed meanwhile"
    assert len(open_ledger(env.settings).entries(kind="apply")) == 2  # only the row-2 apply


def _update(env: Env, row_id: int, note: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(env.settings.database_write_url.reveal())  # someone else's change
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {TABLE} SET note = :n WHERE id = :i"), {"n": note, "i": row_id})
    engine.dispose()


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_any_exception_in_execute_chains_apply_failed(env: Env, error: BaseException) -> None:
    fix = toy_fix()
    fix.fail_in_execute = error
    plan = fix.plan(env, row_id=1, note="new")
    with pytest.raises(type(error)):
        apply_fix(fix, plan, plan.sha256, env=env)
    started, failed = open_ledger(env.settings).entries(kind="apply")
    assert failed.event == "failed" and failed.record["error"]["type"] == type(error).__name__
    assert failed.record["committed"] == [] and read_note(env, 1) == "old"
    assert _failing(env) == []


def test_an_error_after_commit_says_what_was_committed(env: Env) -> None:
    fix = toy_fix()
    fix.fail_after_commit = ConnectionError("pay-db went away")
    plan = fix.plan(env, row_id=1, note="new")
    with pytest.raises(AfterCommitError) as caught:
        apply_fix(fix, plan, plan.sha256, env=env)
    text = str(caught.value)
    assert "committed" in text and "toy row 1 set to 'new'" in text and "pay-db went away" in text
    assert "nothing: it is a toy" in text  # the fix's next step
    failed = open_ledger(env.settings).entries(kind="apply")[-1]
    assert [c["what"] for c in failed.record["committed"]][-1] == "toy row 1 set to 'new'"
    assert read_note(env, 1) == "new"


def test_intents_of_an_apply_are_chained_with_its_apply_id(env: Env) -> None:
    fix = toy_fix()

    def journal(run) -> None:  # type: ignore[no-untyped-def]
        run.intent("toy-1", {"row_id": 1, "note": "new"})
        run.mark("toy-1", "sent", receipt="R-1")
        assert run.get_intent("toy-1").state == "sent"

    fix.on_intent = journal
    plan = fix.plan(env, row_id=1, note="new")
    result = apply_fix(fix, plan, plan.sha256, env=env)
    ledger = open_ledger(env.settings)
    steps = ledger.entries(kind="intent")
    assert [(e.event, e.record["apply_id"]) for e in steps] == [
        ("pending", result.apply_id),
        ("sent", result.apply_id),
    ]
    started, finished = ledger.entries(kind="apply")
    assert started.seq < steps[0].seq < steps[1].seq < finished.seq
    assert _failing(env) == []
