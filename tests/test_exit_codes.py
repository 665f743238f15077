"""Failures never report success: incomplete batch reports, refused credentials, an unreachable CFS and a
refused data-fix apply each exit with their own documented code (paynb.cli.exits, docs/exit-codes.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from paynb.cli import exits, main
from paynb.jobs import run_notebook
from paynb.sandbox.postgres import free_port
from paynb.settings import Settings
from tests import pad_scenarios
from tests.pad_scenarios import PadEnv

pad_env = pad_scenarios.pad_env  # the fixture
NOTEBOOKS = Path(__file__).parent / "notebooks"


def _triage(env: dict[str, str], *extra: str):  # type: ignore[no-untyped-def]
    from paynb.cli import cli

    return CliRunner().invoke(cli, ["pad", "triage", "--days", "20", *extra], env=env)


def test_triage_with_cfs_down_exits_unreachable(pad_env: PadEnv) -> None:
    res = _triage({**pad_env.env, "PAYNB_CFS_BASE_URL": f"http://127.0.0.1:{free_port()}"}, "--json")
    assert res.exit_code == exits.UNREACHABLE, res.output
    assert "unreachable" in res.stderr and "not read from CFS" in res.stderr


def test_triage_with_a_wrong_cfs_secret_exits_credentials_refused(pad_env: PadEnv) -> None:
    res = _triage({**pad_env.env, "PAYNB_CFS_CLIENT_SECRET": "not-the-secret-0000"})
    assert res.exit_code == exits.CREDENTIALS_REFUSED, res.output
    assert "credentials refused" in res.stderr


def test_triage_with_some_rows_unread_exits_incomplete(pad_env: PadEnv) -> None:
    pad_env.cfs.set_knobs(fail_next=[["invs/REG00100001/", 500]] * 40)  # one CFS invoice keeps failing
    res = _triage(pad_env.env, "--json")
    assert res.exit_code == exits.INCOMPLETE, res.output
    rows = json.loads(res.stdout)["rows"]
    unread = sum(1 for r in rows if r["action"] == "unknown_retry")
    assert unread == 3 and f"{unread} of {len(rows)} row(s) could not be read" in res.stderr


def test_triage_exits_zero_only_when_every_row_and_file_was_read(pad_env: PadEnv, s3_server) -> None:  # type: ignore[no-untyped-def]
    # the hand-made world holds a file in ar/ that is not a settlement CSV: the search is incomplete
    res = _triage(pad_env.env)
    assert res.exit_code == exits.INCOMPLETE
    assert "1 file(s) not read from the settlement CSVs" in res.stderr and "notes_20990101.csv" in res.stderr
    s3_server.client().remove_object(pad_env.bucket, "ar/notes_20990101.csv")
    res = _triage(pad_env.env)
    assert res.exit_code == exits.OK, res.stderr


def test_gap_causes_pick_the_worst_code(capsys) -> None:  # type: ignore[no-untyped-def]
    from click.exceptions import Exit

    gaps = [exits.Gap("CFS", "unreadable", 2), exits.Gap("CFS", "unreachable", 1)]
    with pytest.raises(Exit) as info:
        exits.exit_for_gaps(gaps, total=10)
    assert info.value.exit_code == exits.UNREACHABLE
    assert "3 of 10 row(s)" in capsys.readouterr().err
    exits.exit_for_gaps([exits.Gap("CFS", "unreadable", 0)])  # nothing missing: returns


@pytest.mark.notebook
@pytest.mark.parametrize("confirm", ["", "0" * 64])
def test_a_datafix_run_without_the_right_confirm_is_refused(
    confirm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PAYNB_DATA_DIR", str(tmp_path / "data"))
    settings = Settings.load(dotenv=None)
    result = run_notebook(
        NOTEBOOKS / "refused_confirm.ipynb", {"dry_run": "false", "confirm": confirm}, settings=settings
    )
    assert (result.status, result.failure_kind) == ("refused", "refused")
    assert not result.ok and result.message.startswith("refused")
    assert result.record["failure_detail"]["ename"] == "ConfirmMismatch"
    argv = [
        "run",
        str(NOTEBOOKS / "refused_confirm.ipynb"),
        "-p",
        "dry_run",
        "false",
        "-p",
        "confirm",
        confirm,
    ]
    assert main([*argv, "--json"]) == exits.REFUSED
    assert json.loads(capsys.readouterr().out)["status"] == "refused"


@pytest.mark.notebook
def test_a_datafix_dry_run_still_succeeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYNB_DATA_DIR", str(tmp_path / "data"))
    assert main(["run", str(NOTEBOOKS / "refused_confirm.ipynb")]) == exits.OK


def test_a_refused_cli_apply_exits_refused(capsys) -> None:  # type: ignore[no-untyped-def]
    from paynb.cli import error_code
    from paynb.errors import CfsError, ConfirmMismatch, DatabaseError, InputError, StalePlanError

    assert error_code(ConfirmMismatch("x")) == error_code(StalePlanError("x")) == exits.REFUSED
    assert error_code(InputError("x")) == exits.BAD_INPUT
    assert error_code(CfsError("POST /oauth/token -> 401", status=401)) == exits.CREDENTIALS_REFUSED
    assert error_code(CfsError("GET /x: no answer from CFS (connect)")) == exits.UNREACHABLE
    assert error_code(DatabaseError("cannot reach pay-db at h:5432/p: timeout")) == exits.UNREACHABLE
    from paynb.errors import AfterCommitError

    assert error_code(AfterCommitError("committed the memo, not the rows")) == exits.AFTER_COMMIT


def test_exit_codes_are_documented_in_one_place() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "exit-codes.md").read_text()
    for code in exits.CODES:
        assert f"| {code} |" in doc


def test_every_command_takes_its_codes_from_the_one_table() -> None:
    from paynb.cli import db, invoice, jobs, pad_credit
    from paynb.fixes import cli as fixes_cli

    # one meaning per number: the table has no duplicates, and 7/8 are the fixes' refused/after-commit
    assert len(set(exits.CODES)) == len(exits.CODES) == len(set(exits.CODES.values()))
    assert (
        (fixes_cli.EXIT_REFUSED, fixes_cli.EXIT_AFTER_COMMIT) == (exits.REFUSED, exits.AFTER_COMMIT) == (7, 8)
    )
    assert db.FINDINGS_EXIT == exits.FAILED
    assert (invoice.UNKNOWN_IDS_EXIT, invoice.INCOMPLETE_EXIT) == (exits.BAD_INPUT, exits.INCOMPLETE)
    assert pad_credit.EXIT_UNVERIFIED == exits.AFTER_COMMIT and pad_credit.EXIT_NOT_VERIFIED == exits.FAILED
    assert jobs.EXIT_FAILED["refused"] == exits.REFUSED and jobs.EXIT_SECRET_LEAK == exits.SECRET_LEAK
