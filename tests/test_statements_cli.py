"""``paynb statements gaps|generate``: tables, JSON, the dry-run → confirm → apply flow, bad input."""

from __future__ import annotations

import json
import re

import pytest

from paynb.cli import main
from paynb.sandbox.postgres import READER, WRITER
from tests.plugins.db import as_role
from tests.test_statements_rules import Data


@pytest.fixture
def db(empty_db_url: str, monkeypatch: pytest.MonkeyPatch) -> Data:
    monkeypatch.setenv("PAYNB_DATABASE_URL", as_role(empty_db_url, READER))
    monkeypatch.setenv("PAYNB_DATABASE_WRITE_URL", as_role(empty_db_url, WRITER))
    d = Data(empty_db_url)
    a = d.account("1234", notify=True)
    d.setting(a, "DAILY", "2025-06-01", "2025-06-07")
    d.setting(a, "WEEKLY", "2025-06-08")
    b = d.account("5678")
    d.setting(b, "DAILY", "2025-06-01")
    d.invoice(a, "2025-06-03 20:00:00")
    d.invoice(b, "2025-06-10 20:00:00", "CC")
    for day in range(1, 15):
        if day != 4:  # 2025-06-04: nobody has a statement
            d.statement(b, "DAILY", f"2025-06-{day:02d}", f"2025-06-{day:02d}")
    yield d
    d.engine.dispose()


def test_gaps_table_lists_periods_and_fewest_job_runs(db: Data, capsys) -> None:
    assert main(["statements", "gaps", "--from", "2025-06-01", "--to", "2025-06-14"]) == 0
    out = capsys.readouterr().out
    assert "Missing periods (9)" in out  # 1234: 7 DAILY + WEEKLY 06-14; 5678: DAILY 06-04
    runs = re.findall(r"python3 invoke_jobs.py GENERATE_STATEMENTS (\S+)(?: (\S+))?", out)
    # 06-04 misses both accounts -> one date run; the other days miss one of two accounts -> account runs
    assert ("2025-06-04", "") in runs
    assert ("2025-06-01", "1234") in runs and ("2025-06-14", "1234") in runs
    assert len(runs) == 8
    assert "paynb statements generate --range 2025-06-01 2025-06-14" in out


def test_gaps_json_with_filters(db: Data, capsys) -> None:
    argv = ["statements", "gaps", "--from", "2025-06-01", "--to", "2025-06-14", "--frequency", "weekly"]
    assert main([*argv, "--auth-account", "1234", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["frequency"] == "WEEKLY" and doc["account"] == "1234"
    assert [(m["from_date"], m["to_date"]) for m in doc["missing"]] == [("2025-06-08", "2025-06-14")]
    assert doc["commands"] == ["python3 invoke_jobs.py GENERATE_STATEMENTS 2025-06-14 1234"]


def test_generate_dry_run_then_apply_with_confirm(db: Data, capsys) -> None:
    assert main(["statements", "generate", "2025-06-04"]) == 0
    out = capsys.readouterr().out
    sha = re.search(r"plan sha256: ([0-9a-f]{64})", out).group(1)
    assert "dry run: nothing written" in out
    assert db.statements("2025-06-04") == []
    assert main(["statements", "generate", "2025-06-04", "--apply"]) == 7  # no confirm: refused
    assert "confirm" in capsys.readouterr().err
    assert main(["statements", "generate", "2025-06-04", "--apply", "--confirm", sha, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["applied"] is True and doc["written"]["statements_inserted"] == 2
    got = {(r["account"], r["frequency"]) for r in db.statements("2025-06-04")}
    assert got == {("1234", "DAILY"), ("5678", "DAILY")}


def test_generate_range_fills_the_gaps(db: Data, capsys) -> None:
    assert main(["statements", "generate", "--range", "2025-06-01", "2025-06-14", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    counts = {r["kind"]: r["statements"] for r in plan["rows"]}
    assert counts["DAILY"] == 8 and counts["WEEKLY"] == 1
    argv = [
        "statements",
        "generate",
        "--range",
        "2025-06-01",
        "2025-06-14",
        "--apply",
        "--confirm",
        plan["sha256"],
    ]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["statements", "gaps", "--from", "2025-06-01", "--to", "2025-06-14", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["missing"] == []
    assert len(db.statements()) == 13 + 9


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["generate", "2025-02-30"], "not a date"),
        (["generate"], "either DATE or --range"),
        (["generate", "2025-06-01", "--range", "2025-06-01", "2025-06-02"], "either DATE or --range"),
        (["generate", "--range", "2025-06-10", "2025-06-01"], "after"),
        (["generate", "2025-06-01", "--confirm", "abc"], "only used with --apply"),
        (["gaps", "--frequency", "YEARLY"], "unknown frequency"),
        (["gaps", "--from", "2025-06-10", "--to", "2025-06-01"], "after"),
        (["gaps", "--to", "June"], "not a date"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(
    db: Data, capsys, argv: list[str], message: str
) -> None:
    before = db.statements()
    assert main(["statements", *argv]) == 2
    assert message in capsys.readouterr().err
    assert db.statements() == before


def test_help_has_examples(capsys) -> None:
    for argv in (
        ["statements", "--help"],
        ["statements", "gaps", "--help"],
        ["statements", "generate", "--help"],
    ):
        assert main(argv) == 0
        assert "Example:" in capsys.readouterr().out


def test_plan_file_then_apply_is_in_the_ledger_and_audited(db: Data, capsys, tmp_path) -> None:
    from tests.fix_ledger import assert_apply_is_audited

    out = tmp_path / "plan.json"
    assert main(["statements", "plan", "2025-06-04", "--out", str(out)]) == 0
    sha = re.search(r"plan sha256: ([0-9a-f]{64})", capsys.readouterr().out).group(1)
    assert db.statements("2025-06-04") == []
    assert main(["statements", "apply", "--plan", str(out), "--confirm", "0" * 64]) == 7  # refused
    assert db.statements("2025-06-04") == []
    assert (
        main(["statements", "apply", "--plan", str(out), "--confirm", sha, "--ticket", "OPS-3", "--json"])
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["applied"] is True and doc["written"]["statements_inserted"] == 2
    assert len(db.statements("2025-06-04")) == 2
    # the same plan again: the data changed (the statements exist now), so it is refused and writes nothing
    assert main(["statements", "apply", "--plan", str(out), "--confirm", sha]) == 7
    assert len(db.statements("2025-06-04")) == 2
    assert_apply_is_audited(doc["run_id"], "statements.generate", tmp_path)
