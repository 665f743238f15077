"""The two surfaces every fix shares, with the toy fix on the sandbox PostgreSQL: the plan/apply CLI built
by paynb.fixes.cli (and `paynb runs list/show` on its applies), and the notebook helper paynb.fixes.widgets."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from paynb.cli import cli as paynb_cli
from paynb.context import Env
from paynb.errors import ConfirmMismatch
from paynb.fixes.cli import EXIT_REFUSED, fix_commands
from paynb.fixes.widgets import show_plan
from paynb.ledger import open_ledger
from paynb.settings import Settings
from tests.toy_fix import KIND, create_table, read_note, role_urls, toy_fix


@pytest.fixture
def env_vars(empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    create_table(empty_db_url, {1: "old", 2: "other"})
    values = {**role_urls(empty_db_url), "PAYNB_DATA_DIR": str(tmp_path / "data")}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return values


def _toy_group() -> click.Group:
    toy_fix()
    plan_cmd, apply_cmd = fix_commands(
        KIND,
        [
            click.Option(["--row-id"], type=int, required=True, help="The toy row."),
            click.Option(["--note"], required=True, help="Its new note."),
        ],
        example="paynb toy plan --row-id 1 --note new --out toy.json",
    )
    group = click.Group("toy", commands={"plan": plan_cmd, "apply": apply_cmd})
    return group


def test_plan_then_apply_from_the_cli_and_see_it_in_runs_list_and_show(env_vars: dict[str, str]) -> None:
    runner = CliRunner()
    group = _toy_group()
    planned = runner.invoke(group, ["plan", "--row-id", "1", "--note", "new", "--out", "toy.json"])
    assert planned.exit_code == 0, planned.output
    sha = planned.output.split("sha256: ")[1].split()[0]
    assert "toy row 1: 'old' -> 'new'" in planned.output
    assert Path("toy.json").stat().st_mode & 0o077 == 0
    as_json = runner.invoke(group, ["plan", "--row-id", "1", "--note", "new", "--json"])
    assert json.loads(as_json.output)["sha256"] == sha

    refused = runner.invoke(group, ["apply", "--plan", "toy.json", "--confirm", sha[:-1] + "0"])
    assert refused.exit_code == EXIT_REFUSED and "does not match" in refused.output
    applied = runner.invoke(
        group,
        [
            "apply",
            "--plan",
            "toy.json",
            "--confirm",
            sha,
            "--ticket",
            "OPS-7",
            "--reason",
            "typo",
            "--operator",
            "alice",
            "--json",
        ],
    )
    assert applied.exit_code == 0, applied.output
    result = json.loads(applied.output)
    assert result["status"] == "applied" and result["rows_affected"] == 1
    settings = Settings.load(dotenv=None)
    assert read_note(Env(settings=settings), 1) == "new"

    listed = runner.invoke(paynb_cli, ["runs", "list", "--applies", "--json"])
    [row] = json.loads(listed.output)
    assert (row["id"], row["what"], row["status"], row["by"]) == (
        result["apply_id"],
        KIND,
        "applied",
        "alice",
    )
    table = runner.invoke(paynb_cli, ["runs", "list"])
    assert result["apply_id"][:18] in table.output
    assert max(len(line) for line in table.output.splitlines()) <= 120
    for flags, expected in (
        (["--kind", KIND], 1),
        (["--kind", "run"], 0),
        (["--status", "failed"], 0),
        (["--since", "1h"], 1),
        (["--since", "2999-01-01"], 0),
    ):
        found = json.loads(runner.invoke(paynb_cli, ["runs", "list", "--json", *flags]).output)
        assert len(found) == expected, flags

    shown = runner.invoke(paynb_cli, ["runs", "show", result["apply_id"][:13]])
    assert shown.exit_code == 0, shown.output
    assert "Before / after" in shown.output and "OPS-7" in shown.output and "alice" in shown.output
    doc = json.loads(runner.invoke(paynb_cli, ["runs", "show", result["apply_id"], "--json"]).output)
    assert doc["plan"]["body"]["after"] == "new" and doc["before"] == {"note": "old"}
    verified = runner.invoke(paynb_cli, ["audit", "verify", "--all"])
    assert verified.exit_code == 0, verified.output
    assert max(len(line) for line in verified.stdout.splitlines()) <= 120  # was 600 before tables were fitted


def test_headless_helper_applies_only_with_the_right_confirm(env_vars: dict[str, str]) -> None:
    fix = toy_fix()
    env = Env(settings=Settings.load(dotenv=None))
    plan = fix.plan(env, row_id=1, note="new")
    assert show_plan(fix, plan, env=env, headless=True).state == "dry_run"
    with pytest.raises(ConfirmMismatch):
        show_plan(fix, plan, dry_run=False, env=env, headless=True)
    with pytest.raises(ConfirmMismatch):
        show_plan(fix, plan, dry_run=False, confirm="ab" * 32, env=env, headless=True)
    assert read_note(env, 1) == "old" and open_ledger(env.settings).entries(kind="apply") == []
    decision = show_plan(fix, plan, dry_run=False, confirm=plan.sha256, env=env, headless=True)
    assert decision.state == "applied" and decision.result.outcome.rows_affected == 1


def test_the_confirm_button_applies_once_then_disables_itself(env_vars: dict[str, str]) -> None:
    fix = toy_fix()
    env = Env(settings=Settings.load(dotenv=None))
    plan = fix.plan(env, row_id=2, note="clicked")
    decision = show_plan(fix, plan, dry_run=False, env=env, headless=False)
    assert decision.state == "waiting" and read_note(env, 2) == "other"
    button = decision.widget.children[0]
    button.click()
    button.click()
    assert button.disabled and decision.state == "applied"
    assert read_note(env, 2) == "clicked"
    assert [e.event for e in open_ledger(env.settings).entries(kind="apply")] == ["started", "finished"]
