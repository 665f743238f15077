"""Both statement notebooks run headless with papermill against the sandbox database."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import papermill
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tests.notebook_runner import run_headless as run
from tests.notebook_runner import text_of

ROOT = Path(__file__).resolve().parents[1]
GAPS = ROOT / "notebooks" / "reports" / "statement_gaps.ipynb"
GENERATE = ROOT / "notebooks" / "jobs" / "generate_statements.ipynb"

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


def has_image(nb: nbformat.NotebookNode) -> bool:
    return any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def whole_day_gap(url: str) -> str:
    eng = sa.create_engine(url, poolclass=NullPool)
    with eng.connect() as c:
        day = c.execute(
            sa.text(
                "SELECT details->>'missing_day_all_accounts' FROM paynb_sandbox.scenarios "
                "WHERE name = 'statement_gap_daily' LIMIT 1"
            )
        ).scalar_one()
        count = c.execute(
            sa.text("SELECT count(*) FROM statements WHERE to_date = CAST(:d AS date)"), {"d": day}
        )
        n = count.scalar_one()
    eng.dispose()
    return day, n


def test_gaps_notebook_shows_calendar_table_and_commands(pay_env: dict, tmp_path: Path) -> None:
    nb = run(GAPS, tmp_path / "gaps.ipynb")
    text = text_of(nb)
    assert has_image(nb)
    assert "python3 invoke_jobs.py GENERATE_STATEMENTS" in text
    assert "missing periods" in text
    weekly = run(GAPS, tmp_path / "weekly.ipynb", frequency="WEEKLY", from_date="2026-01-01")
    assert has_image(weekly)


def test_generate_notebook_dry_run_then_confirmed_apply(pay_env: dict, tmp_path: Path) -> None:
    url = pay_env["PAYNB_DATABASE_URL"]
    day, before = whole_day_gap(url)
    dry = run(GENERATE, tmp_path / "dry.ipynb", statement_day=day)
    text = text_of(dry)
    assert "Dry run: nothing was changed" in text
    sha = re.search(r"\b[0-9a-f]{64}\b", text).group(0)
    assert whole_day_gap(url)[1] == before

    refused = tmp_path / "refused.ipynb"
    with pytest.raises(papermill.PapermillExecutionError):
        run(GENERATE, refused, statement_day=day, dry_run=False, confirm="0" * 64)
    assert whole_day_gap(url)[1] == before

    applied = run(GENERATE, tmp_path / "apply.ipynb", statement_day=day, dry_run=False, confirm=sha)
    assert "applied, run" in text_of(applied)
    assert whole_day_gap(url)[1] > before


def test_generate_notebook_default_parameters_are_a_dry_run(pay_env: dict, tmp_path: Path) -> None:
    nb = run(GENERATE, tmp_path / "default.ipynb")
    assert "Dry run: nothing was changed" in text_of(nb)
