"""The two fixes `paynb ejv health` recommends, through `paynb.cli.main` on the sandbox PostgreSQL: clearing
stop_ejv on a GL (`paynb ejv stop-ejv`) and resetting a partner disbursement (`paynb ejv partner-reset`).
Each: plan, apply with the confirm, refusal of a stale plan, and a second apply that writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from paynb.cli import main
from paynb.fixes.cli import EXIT_REFUSED


@pytest.fixture
def env(sandbox_db_url: str, pay_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sa.Engine:
    """paynb as the reader and writer roles (pay_env); the test's own engine owns the database."""
    monkeypatch.setenv("PAYNB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    engine = sa.create_engine(sandbox_db_url)
    yield engine
    engine.dispose()


def _one(engine: sa.Engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).mappings().first()


def _exec(engine: sa.Engine, sql: str, **params) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def _plan(capsys, argv: list[str]) -> str:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)["sha256"]


def _apply(capsys, area: str, sha: str, *extra: str) -> tuple[int, str, str]:
    code = main(
        [
            "ejv",
            area,
            "apply",
            "--plan",
            "plan.json",
            "--confirm",
            sha,
            "--ticket",
            "OPS-9",
            "--reason",
            "GL corrected",
            *extra,
        ]
    )
    out = capsys.readouterr()
    return code, out.out, out.err


def test_clear_stop_ejv_plan_apply_refuse_stale_and_idempotent(env, capsys, fix_ledger) -> None:
    row = _one(
        env, "SELECT distribution_code_id AS id, version FROM distribution_codes WHERE stop_ejv LIMIT 1"
    )
    assert row is not None, "the sandbox injects a stop_ejv GL"
    code_id, version = row["id"], row["version"]
    # the history table sbc-pay's sql_versioning keeps (the sandbox schema has none): the fix fills it when there
    from paynb.sandbox.postgres import WRITER

    _exec(env, "CREATE TABLE distribution_codes_history (LIKE distribution_codes, changed timestamp)")
    _exec(env, f"GRANT INSERT ON distribution_codes_history TO {WRITER}")

    plan_argv = ["ejv", "stop-ejv", "plan", "--distribution-code-id", str(code_id), "--out", "plan.json"]
    assert main(plan_argv) == 0
    shown = capsys.readouterr().out
    assert f"clear stop_ejv on distribution code {code_id}" in shown and "sha256: " in shown
    sha = shown.split("sha256: ")[1].split()[0]

    # someone edits the GL after the review: the plan is stale, nothing is written
    _exec(
        env, "UPDATE distribution_codes SET version = version + 5 WHERE distribution_code_id = :i", i=code_id
    )
    code, _, err = _apply(capsys, "stop-ejv", sha)
    assert code == EXIT_REFUSED and "refused" in err
    assert _one(env, "SELECT stop_ejv FROM distribution_codes WHERE distribution_code_id = :i", i=code_id)[
        "stop_ejv"
    ]
    _exec(
        env,
        "UPDATE distribution_codes SET version = :v WHERE distribution_code_id = :i",
        v=version,
        i=code_id,
    )

    code, out, err = _apply(capsys, "stop-ejv", sha, "--operator", "alice", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "applied" and result["rows_affected"] == 2
    after = _one(
        env,
        "SELECT stop_ejv, version, updated_by, updated_name, updated_on FROM distribution_codes"
        " WHERE distribution_code_id = :i",
        i=code_id,
    )
    assert after["stop_ejv"] is False and after["version"] == version + 1
    assert (
        after["updated_by"].startswith("paynb:") and after["updated_name"] == "alice" and after["updated_on"]
    )
    history = _one(
        env,
        "SELECT stop_ejv, version FROM distribution_codes_history WHERE distribution_code_id = :i",
        i=code_id,
    )
    assert history["stop_ejv"] is True and history["version"] == version
    assert fix_ledger.finished("ejv.clear_stop_ejv") == ["applied"]

    # the same plan again: the data changed (refused); a new plan: nothing to do, nothing written
    code, _, err = _apply(capsys, "stop-ejv", sha)
    assert code == EXIT_REFUSED
    again = _plan(capsys, plan_argv)
    code, out, _ = _apply(capsys, "stop-ejv", again, "--json")
    assert code == 0 and json.loads(out)["status"] == "nothing_to_do"
    final = _one(env, "SELECT version FROM distribution_codes WHERE distribution_code_id = :i", i=code_id)
    assert final["version"] == version + 1


def test_clear_stop_ejv_unknown_code_is_refused(env, capsys) -> None:
    assert main(["ejv", "stop-ejv", "plan", "--distribution-code-id", "999999"]) == EXIT_REFUSED
    assert "no distribution code 999999" in capsys.readouterr().err


def _never_sent(env: sa.Engine) -> int:
    """An UPLOADED partner disbursement no INBOX carries (made so here when the sandbox has none)."""
    row = _one(
        env,
        "SELECT pd.id FROM partner_disbursements pd WHERE pd.status_code = 'UPLOADED' AND NOT EXISTS ("
        " SELECT 1 FROM ejv_links l JOIN ejv_headers h ON h.id = l.ejv_header_id JOIN ejv_files f"
        " ON f.id = h.ejv_file_id WHERE l.link_id = pd.target_id AND f.file_type = 'DISBURSEMENT'"
        " AND coalesce(l.link_type, 'invoice') = pd.target_type) ORDER BY pd.id LIMIT 1",
    )
    if row is not None:
        return row["id"]
    row = _one(env, "SELECT id FROM partner_disbursements ORDER BY id LIMIT 1")
    _exec(
        env,
        "UPDATE partner_disbursements SET status_code = 'UPLOADED', processed_on = now() WHERE id = :i",
        i=row["id"],
    )
    _exec(
        env,
        "DELETE FROM ejv_links WHERE link_id = (SELECT target_id FROM partner_disbursements WHERE id = :i)",
        i=row["id"],
    )
    return row["id"]


def test_partner_reset_plan_apply_refuse_stale_and_idempotent(env, capsys, fix_ledger) -> None:
    pd_id = _never_sent(env)
    _exec(env, "UPDATE partner_disbursements SET feedback_on = now() WHERE id = :i", i=pd_id)
    plan_argv = [
        "ejv",
        "partner-reset",
        "plan",
        "--partner-disbursement-id",
        str(pd_id),
        "--out",
        "plan.json",
    ]
    sha = _plan(capsys, plan_argv)

    _exec(env, "UPDATE partner_disbursements SET status_code = 'ERRORED' WHERE id = :i", i=pd_id)
    code, _, err = _apply(capsys, "partner-reset", sha)
    assert code == EXIT_REFUSED and "refused" in err
    assert (
        _one(env, "SELECT status_code FROM partner_disbursements WHERE id = :i", i=pd_id)["status_code"]
        == "ERRORED"
    )
    _exec(env, "UPDATE partner_disbursements SET status_code = 'UPLOADED' WHERE id = :i", i=pd_id)

    code, out, err = _apply(capsys, "partner-reset", sha, "--json")
    assert code == 0, err
    assert json.loads(out)["rows_affected"] == 1
    row = _one(
        env, "SELECT status_code, processed_on, feedback_on FROM partner_disbursements WHERE id = :i", i=pd_id
    )
    assert dict(row) == {"status_code": "WAITING_FOR_JOB", "processed_on": None, "feedback_on": None}
    assert fix_ledger.finished("ejv.reset_partner_disbursement") == ["applied"]

    assert _apply(capsys, "partner-reset", sha)[0] == EXIT_REFUSED
    again = _plan(capsys, plan_argv)
    code, out, _ = _apply(capsys, "partner-reset", again, "--json")
    assert code == 0 and json.loads(out)["status"] == "nothing_to_do"


def test_partner_reset_refuses_a_disbursement_an_inbox_carries(env, capsys) -> None:
    pd = _one(env, "SELECT id, target_id, target_type FROM partner_disbursements ORDER BY id LIMIT 1")
    name = "INBOX.F3505.20260730190100"
    _exec(
        env,
        "WITH f AS (INSERT INTO ejv_files (created_on, file_ref, file_type, disbursement_status_code)"
        " VALUES (now(), :name, 'DISBURSEMENT', 'UPLOADED') RETURNING id),"
        " h AS (INSERT INTO ejv_headers (ejv_file_id, disbursement_status_code) SELECT id, 'UPLOADED' FROM f"
        " RETURNING id)"
        " INSERT INTO ejv_links (link_id, link_type, ejv_header_id, disbursement_status_code)"
        " SELECT :t, :tt, id, 'UPLOADED' FROM h",
        name=name,
        t=pd["target_id"],
        tt=pd["target_type"],
    )
    _exec(env, "UPDATE partner_disbursements SET status_code = 'UPLOADED' WHERE id = :i", i=pd["id"])
    assert main(["ejv", "partner-reset", "plan", "--partner-disbursement-id", str(pd["id"])]) == EXIT_REFUSED
    err = capsys.readouterr().err
    assert f"was sent in {name}" in err and "paynb ejv redate plan" in err
    # COMPLETED rows are never reset
    _exec(env, "UPDATE partner_disbursements SET status_code = 'COMPLETED' WHERE id = :i", i=pd["id"])
    assert main(["ejv", "partner-reset", "plan", "--partner-disbursement-id", str(pd["id"])]) == EXIT_REFUSED
    assert "only ERRORED or never-sent UPLOADED" in capsys.readouterr().err


@pytest.mark.parametrize(
    "kind, field",
    [
        ("ejv.clear_stop_ejv", "distribution_code_id"),
        ("ejv.reset_partner_disbursement", "partner_disbursement_id"),
    ],
)
@pytest.mark.parametrize(
    "value, message", [(None, "whole number"), ("7a", "whole number"), (0, "1 or more"), (-3, "1 or more")]
)
def test_a_bad_id_is_refused_before_pay_db_is_read(kind: str, field: str, value, message: str) -> None:
    from paynb.errors import InputError
    from paynb.fixes import get_fix

    params = {} if value is None else {field: value}
    with pytest.raises(InputError, match=message) as err:
        get_fix(kind).plan(None, **params)  # no Env: the check comes first
    assert err.value.field == field
