"""The PAD notebooks run headless under papermill against the full sandbox (pay-db, S3 bucket, CFS server)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import papermill
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.settings import Settings
from paynb.store import pay_bucket
from tests.notebook_runner import run_headless as run
from tests.notebook_runner import text_of

ROOT = Path(__file__).resolve().parents[1]
TRIAGE = ROOT / "notebooks" / "triage" / "pad_stuck.ipynb"
REPLAY = ROOT / "notebooks" / "datafix" / "settlement_replay.ipynb"

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


def output_types(nb: nbformat.NotebookNode) -> set[str]:
    return {k for c in nb.cells for o in c.get("outputs", []) for k in o.get("data", {})}


def nsf_file_key(db_url: str) -> str:
    eng = sa.create_engine(db_url, poolclass=NullPool)
    try:
        with eng.connect() as c:
            return c.execute(
                sa.text(
                    "SELECT details->>'key' FROM paynb_sandbox.scenarios WHERE name = 'cas_csv_with_nsf' LIMIT 1"
                )
            ).scalar_one()
    finally:
        eng.dispose()


@pytest.mark.parametrize("path", [TRIAGE, REPLAY], ids=["pad_stuck", "settlement_replay"])
def test_notebooks_are_stored_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in first_code.metadata.get("tags", [])
    for line in first_code.source.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        assert re.match(r"^\w+: (int|str|bool|float) = ", line), line  # every parameter annotated
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            assert "SELECT " not in cell.source.upper() and "requests." not in cell.source  # no SQL, no HTTP


def test_triage_notebook_headless(sandbox_env: dict[str, str], tmp_path: Path) -> None:
    nb = run(TRIAGE, tmp_path / "triage.ipynb", days=20, interactive=False)
    text = text_of(nb, html=True)
    assert "PAD invoices APPROVED for more than 20 days" in text
    assert "image/png" in output_types(nb)  # the summary chart
    for action in (
        "replay_settlement_csv",
        "settlement_failed_midway",
        "escalate_cas_not_debited",
        "cas_invoice_missing",
        "account_frozen_nsf",
    ):
        assert action in text
    assert "No picker in a headless run" in text
    assert "paynb settlement plan-replay ar/" in text


def test_triage_notebook_picker_does_not_block(sandbox_env: dict[str, str], tmp_path: Path) -> None:
    """With the default interactive=True under papermill the widget is rendered and the run still ends."""
    nb = run(TRIAGE, tmp_path / "picker.ipynb", action="replay_settlement_csv")
    assert "application/vnd.jupyter.widget-view+json" in output_types(nb)


def test_replay_notebook_plans_the_nsf_file(sandbox_env: dict[str, str], tmp_path: Path) -> None:
    key = nsf_file_key(sandbox_env["PAYNB_DATABASE_URL"])
    settings = Settings.load(env=sandbox_env, dotenv=None)
    store = pay_bucket(settings)
    before = [o.key for o in store.list("ar/")]
    nb = run(REPLAY, tmp_path / "replay.ipynb", file=key)
    text = text_of(nb, html=True)
    assert "NSF RISK" in text and "plan sha256:" in text and "dry run, not written" in text
    assert "gcloud pubsub topics publish" in text
    assert "#f8d0d0" in text  # NSF rows painted red in the styled table
    assert [o.key for o in store.list("ar/")] == before
    sha = re.search(r"plan sha256: ([0-9a-f]{64})", text).group(1)

    with pytest.raises(papermill.PapermillExecutionError):  # a wrong confirm fails the run, writes nothing
        run(REPLAY, tmp_path / "refused.ipynb", file=key, dry_run=False, confirm="0" * 64)
    assert [o.key for o in store.list("ar/")] == before
    written = text_of(
        run(REPLAY, tmp_path / "written.ipynb", file=key, dry_run=False, confirm=sha), html=True
    )
    assert (
        "filtered CSV ar/" in written and "written" in written and "gcloud pubsub topics publish" in written
    )
    new = set(o.key for o in store.list("ar/")) - set(before)
    assert len(new) == 1 and ".replay-" in new.pop()


def test_replay_notebook_defaults_follow_triage(sandbox_env: dict[str, str], tmp_path: Path) -> None:
    text = text_of(run(REPLAY, tmp_path / "default.ipynb"), html=True)
    assert "plan sha256:" in text and "row(s) to replay" in text


def test_both_notebooks_under_paynb_run(sandbox_env: dict[str, str], tmp_path: Path) -> None:
    """``paynb run``: typed parameters, run record with the reported results, archive, no secret in it."""
    from paynb.jobs import run_notebook

    settings = Settings.load(
        env={**sandbox_env, "PAYNB_ARCHIVE_URL": f"file://{tmp_path / 'archive'}"}, dotenv=None
    )
    triage = run_notebook(TRIAGE, {"days": "20"}, settings=settings, cwd=ROOT)
    assert triage.ok, triage.message
    assert triage.record["dry_run"] is True and triage.record["rows_affected"] == 0
    assert triage.record["reported"]["stuck_invoices"] > 0
    # PAYNB_RUN_ID is set: no picker and no progress-bar widgets in the archived evidence
    assert "No picker in a headless run" in text_of(triage.notebook, html=True)
    assert "application/vnd.jupyter.widget-view+json" not in output_types(triage.notebook)

    key = nsf_file_key(sandbox_env["PAYNB_DATABASE_URL"])
    replay = run_notebook(REPLAY, {"file": key}, settings=settings, cwd=ROOT)
    assert replay.ok, replay.message
    sha = re.search(r"plan sha256: ([0-9a-f]{64})", text_of(replay.notebook, html=True)).group(1)
    assert replay.record["plan_sha256"] == sha
    assert replay.record["summary"]["nsf_risk"] == 2
    assert replay.record["reported"]["filtered_csv_written"] is False
