"""`paynb db lint-migrations`: the FAQ's rules and squawk's, on fixture migrations (tests/fixtures/migrations)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from paynb.cli import cli
from paynb.errors import InputError
from paynb.ops.dbhealth.lint_migrations import lint_migrations, squawk_binary

FIXTURES = Path(__file__).parent / "fixtures" / "migrations"


def _rules(report, name: str) -> list[tuple[int, str]]:
    return [(f.line, f.rule) for f in report.findings if Path(f.file).name == name]


def test_sbc_pay_style_migrations_that_follow_the_rule_pass() -> None:
    report = lint_migrations([FIXTURES / "good_add_refund_date.py", FIXTURES / "good_small_table.py"])
    assert report.findings == []


def test_large_table_ddl_without_statement_timeout_is_flagged_with_file_and_line() -> None:
    report = lint_migrations([FIXTURES / "bad_no_timeout.py"], use_squawk=False)
    assert _rules(report, "bad_no_timeout.py") == [
        (17, "PAYNB001"),
        (18, "PAYNB001"),
        (22, "PAYNB001"),
        (23, "PAYNB001"),
    ]


def test_structure_and_data_in_one_migration_is_flagged() -> None:
    report = lint_migrations([FIXTURES / "bad_structure_and_data.py"], use_squawk=False)
    assert _rules(report, "bad_structure_and_data.py") == [(16, "PAYNB002")]


def test_a_table_over_the_threshold_counts_as_large() -> None:
    report = lint_migrations(
        [FIXTURES / "good_small_table.py"], large_tables={"corp_types"}, use_squawk=False
    )
    assert {r for _, r in _rules(report, "good_small_table.py")} == {"PAYNB001"}


@pytest.mark.skipif(squawk_binary() is None, reason="squawk-cli is not installed")
def test_squawk_findings_map_back_to_the_op_call() -> None:
    report = lint_migrations([FIXTURES / "bad_unsafe_index.py"])
    assert report.squawk
    assert _rules(report, "bad_unsafe_index.py") == [(17, "require-concurrent-index-creation")]


def test_cli_exits_non_zero_on_findings_and_zero_when_clean() -> None:
    runner = CliRunner()
    bad = runner.invoke(cli, ["db", "lint-migrations", str(FIXTURES), "--json"])
    assert bad.exit_code == 1, bad.output
    good = runner.invoke(cli, ["db", "lint-migrations", str(FIXTURES / "good_add_refund_date.py")])
    assert good.exit_code == 0, good.output


def test_bad_input_names_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def upgrade(:\n")
    with pytest.raises(InputError, match="broken.py:1"):
        lint_migrations([broken])
    with pytest.raises(InputError, match="no such file"):
        lint_migrations([tmp_path / "missing"])
