"""Both EJV notebooks run headless with papermill against the full sandbox (``sandbox_env``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import papermill
import pytest

from paynb.settings import Settings
from paynb.store import pay_bucket
from tests.notebook_runner import run_headless as run
from tests.notebook_runner import text_of
from tests.test_ejv_support import query, scenario

ROOT = Path(__file__).resolve().parents[1]
TRIAGE = ROOT / "notebooks" / "triage" / "ejv_feedback.ipynb"
REDATE = ROOT / "notebooks" / "datafix" / "ejv_inbox_redate.ipynb"

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


@pytest.mark.parametrize("path", [TRIAGE, REDATE])
def test_notebooks_are_stored_stripped_with_annotated_parameters(path: Path) -> None:
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code[0]["metadata"].get("tags") == ["parameters"]
    for line in "".join(code[0]["source"]).splitlines():
        assert re.match(r"^\w+: (int|str|bool) = ", line), line
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    source = "\n".join("".join(c["source"]) for c in code)
    assert (
        "SELECT" not in source.upper().split("#")[0] and "requests" not in source
    )  # no SQL, no HTTP in cells
    assert nb["cells"][-2]["cell_type"] == "markdown" and "next" in "".join(nb["cells"][-2]["source"]).lower()


def test_triage_notebook_shows_health_and_searches(
    sandbox_db_url: str, sandbox_env: dict, tmp_path: Path
) -> None:
    nb = run(TRIAGE, tmp_path / "triage.ipynb")
    text = text_of(nb)
    (invoice,) = scenario(sandbox_db_url, "ejv_no_feedback", "invoices")
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert "ejv_file_no_feedback" in text and "INBOX sent, no FEEDBACK found" in text
    assert str(invoice) in text
    errored = query(
        sandbox_db_url, "SELECT link_id FROM ejv_links WHERE disbursement_status_code = 'ERRORED'"
    )[0][0]
    searched = text_of(run(TRIAGE, tmp_path / "search.ipynb", invoice_ids=f"{errored}, REG{invoice:08d}"))
    assert "FEEDBACK error: 0155" in searched


def test_redate_notebook_dry_run_then_confirmed_apply(
    sandbox_db_url: str, sandbox_env: dict, tmp_path: Path
) -> None:
    (file_id,) = scenario(sandbox_db_url, "ejv_no_feedback", "ejv_files")
    (file_ref,) = query(sandbox_db_url, "SELECT file_ref FROM ejv_files WHERE id = :i", i=file_id)[0]
    store = pay_bucket(Settings.load(env=sandbox_env, dotenv=None))

    dry = text_of(run(REDATE, tmp_path / "dry.ipynb"))  # no files given: health proposes the no-FEEDBACK file
    assert file_ref in dry and "Dry run: nothing was changed" in dry and "effective_date" in dry
    sha = re.search(r"plan sha256: ([0-9a-f]{64})", dry).group(1)
    assert list(store.list("cgi_processing/")) == []

    with pytest.raises(papermill.PapermillExecutionError):
        run(REDATE, tmp_path / "refused.ipynb", files=file_ref, dry_run=False, confirm="0" * 64)
    assert list(store.list("cgi_processing/")) == []

    applied = text_of(run(REDATE, tmp_path / "apply.ipynb", files=file_ref, dry_run=False, confirm=sha))
    assert "uploaded 2 object(s)" in applied
    assert len(list(store.list("cgi_processing/"))) == 2
    again = text_of(run(REDATE, tmp_path / "again.ipynb", files=file_ref, dry_run=False, confirm=sha))
    assert "nothing to do" in again
