"""The PAD credit notebook runs headless: a dry run shows the plan and changes nothing; an apply run (through
``paynb run`` when the job layer is there, archived to the S3 sandbox) shows the plan, the confirmation and
the before/after values — and no executed notebook carries a secret.

The notebook runs against ``sandbox_env`` (generated pay-db, CFS and S3 servers; ``invoice_id = 0`` picks the
``pad_partial_credit_candidate`` scenario); the confirm button is exercised in-process on the credit tests'
hand-made pay-db (``open_world``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import nbformat
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.errors import ConfirmMismatch
from paynb.jobs import run_notebook
from paynb.settings import Settings
from paynb.store import open_store
from tests.notebook_runner import run_headless, text_of
from tests.test_pad_credit_support import CFS_ID, CFS_SECRET, CONNECTOR, CreditWorld, open_world

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "datafix" / "pad_partial_credit.ipynb"

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


@pytest.fixture
def world(empty_db_url: str, tmp_path: Path) -> Iterator[CreditWorld]:
    yield from open_world(empty_db_url, tmp_path)


@pytest.fixture
def env(world: CreditWorld, s3_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "PAYNB_ENVIRONMENT": "test",
        **world.db_env(),
        **s3_server.env(),
        "PAYNB_CFS_BASE_URL": world.server.url,
        "PAYNB_CFS_CLIENT_ID": CFS_ID,
        "PAYNB_CFS_CLIENT_SECRET": CFS_SECRET,
        "PAYNB_PAY_CONNECTOR_AUTH": CONNECTOR,
        "PAYNB_DATA_DIR": str(world.settings.data_dir),
        "PAYNB_HMAC_KEY": "credit-hmac-key-4c1e",
        "PAYNB_ENV_FILE": str(tmp_path / "none.env"),
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


def assert_no_secrets(nb: nbformat.NotebookNode, env: dict[str, str]) -> None:
    secrets = Settings.load(env=env, dotenv=None).secret_values()
    # the scan looks for the real values
    assert env["PAYNB_CFS_CLIENT_SECRET"] in secrets and env["PAYNB_PAY_CONNECTOR_AUTH"] in secrets
    text = json.dumps(nb)
    for secret in secrets:
        assert secret not in text


def test_notebook_is_stored_stripped_with_safe_annotated_parameters() -> None:
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code[0]["metadata"].get("tags") == ["parameters"]
    lines = "".join(code[0]["source"]).splitlines()
    assert all(re.match(r"^\w+: (int|str|bool) = ", line) for line in lines), lines
    assert "dry_run: bool = True" in lines and 'confirm: str = ""' in lines and "invoice_id: int = 0" in lines
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    source = "\n".join("".join(c["source"]) for c in code[1:])
    assert (
        not re.search(r"\b(SELECT|INSERT|UPDATE)\b", source)
        and "requests" not in source
        and "http" not in source
    )


def _memos(server, key: str = "paynb:pcr-") -> list[dict]:  # type: ignore[no-untyped-def]
    with server.state.lock:
        return [m for m in server.state.credit_memos.values() if key in m["comments"]]


def _scalar(url: str, sql: str, **params: object) -> object:
    eng = sa.create_engine(url, poolclass=NullPool)
    try:
        with eng.connect() as c:
            return c.execute(sa.text(sql), params).scalar()
    finally:
        eng.dispose()


def test_dry_run_then_apply_on_the_sandbox(
    sandbox_env: dict[str, str],
    sandbox_settings: Settings,
    sandbox_db_url: str,
    sandbox_cfs,
    s3_store_url: str,
    tmp_path: Path,
) -> None:
    """Defaults (dry run, the sandbox's candidate invoice), then an apply through ``paynb run``."""
    from paynb.sandbox.scenarios import scenario_ids

    eng = sa.create_engine(sandbox_db_url, poolclass=NullPool)
    try:
        with eng.connect() as conn:  # the sandbox side knows its candidate; ops does not
            invoice_id = scenario_ids(conn, "pad_partial_credit_candidate", "invoices")[0]
    finally:
        eng.dispose()
    dry_out = tmp_path / "dry.ipynb"
    dry = run_headless(NOTEBOOK, dry_out, invoice_id=invoice_id)
    text = text_of(dry, html=True)
    sha = re.search(r"plan sha256:\s+([0-9a-f]{64})", text)
    assert sha, text[:2000]
    # the common fix helper (paynb.fixes.widgets) shows the changes and the sha256
    assert f"Plan sha256: `{sha[1]}`" in text and "pad_credit" in text and "CFS credit memo" in text
    assert (
        f"Dry run: nothing was changed. To apply, run again with dry_run=False and confirm={sha[1]}" in text
    )
    assert (
        _memos(sandbox_cfs) == []
        and _scalar(sandbox_db_url, "SELECT count(*) FROM credits WHERE details LIKE 'paynb:%'") == 0
    )
    assert_no_secrets(dry, sandbox_env)

    params = {"invoice_id": invoice_id, "dry_run": False, "confirm": sha[1]}
    result = run_notebook(
        NOTEBOOK,
        {k: str(v) for k, v in params.items()},
        settings=sandbox_settings,
        archive_url=s3_store_url,
        cwd=ROOT,
    )
    assert result.ok, result.message
    rec = result.record
    # rows_affected is what paynb's apply (through apply_fix, in the ledger) counted; the notebook agrees
    assert rec["dry_run"] is False and rec["plan_sha256"] == sha[1] and rec["rows_affected"] >= 5
    assert "claimed_rows_affected" not in rec.get("reported", {})
    assert rec["idempotency_key"].startswith("pcr-")
    store = open_store(rec["archive"]["url"], sandbox_settings)
    applied = nbformat.reads(store.get(f"{rec['archive']['prefix']}/notebook.ipynb").decode(), as_version=4)
    text = text_of(applied, html=True)
    assert "Applied: applied," in text and "paynb runs show" in text
    assert "Result: applied (verified)" in text
    assert "pad_credit" in text and "invoice_status_code" in text and "refund_date" in text
    assert_no_secrets(applied, sandbox_env)
    assert len(_memos(sandbox_cfs)) == 1
    assert _scalar(
        sandbox_db_url, "SELECT sum(amount)::numeric(19,2) FROM credits WHERE details LIKE 'paynb:%'"
    ) == Decimal("1.00")

    # the same parameters again: nothing changes, and the notebook says so
    again = tmp_path / "again.ipynb"
    assert "Already applied — nothing to do" in text_of(run_headless(NOTEBOOK, again, **params), html=True)
    assert len(_memos(sandbox_cfs)) == 1


def test_headless_needs_the_confirm_hash_and_the_button_applies(
    world: CreditWorld, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from paynb.ops.pad import view as cv

    planned = cv.notebook_plan(cv.resolve_invoice(world.ids["pad"]["id"]), "1.25", "button test", "NB-2")
    assert planned.plan is not None and planned.invoice_id == world.ids["pad"]["id"]
    assert cv.confirm_and_apply(planned, dry_run=True, confirm=planned.plan.sha256).state == "dry_run"
    with pytest.raises(ConfirmMismatch):  # a wrong confirm fails the cell (and a headless run) outright
        cv.confirm_and_apply(planned, dry_run=False, confirm="0" * 64)
    with monkeypatch.context() as m:  # headless (paynb run) with no confirm: the run fails, nothing applied
        m.setenv("PAYNB_HEADLESS", "1")
        with pytest.raises(ConfirmMismatch):
            cv.confirm_and_apply(planned, dry_run=False, confirm="")
    waiting = cv.confirm_and_apply(planned, dry_run=False, confirm="")
    assert waiting.state == "waiting" and waiting.result is None
    assert world.memos() == [] and world.snapshot()["credits"] == 0  # nothing without a confirmation
    button = waiting.widget.children[0]
    button.click()  # what a person's click does
    assert button.disabled and len(world.memos()) == 1 and world.snapshot()["credits"] == 1
