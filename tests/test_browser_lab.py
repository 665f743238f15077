"""In a real browser (Debian's Chromium through Playwright; see tests/plugins/browser.py): JupyterLab started
by `paynb lab` runs the PAD triage notebook on the sandbox and its invoice picker shows an invoice's
evidence; the PAD credit notebook's confirm button applies exactly once and then greys out; the static run
index lists a run and its link opens the archived HTML. Every wait is bounded; screenshots are kept."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tests.plugins.browser import artifacts_dir, screenshot
from tests.processes import stop_process_group

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.notebook]
ROOT = Path(__file__).parents[1]
PAYNB = [sys.executable, "-c", "import sys; from paynb.cli import main; sys.exit(main())"]
RUN_ALL_TIMEOUT_MS = 120_000  # inside the 240 s faulthandler limit with Lab start
# Lab draws only the cells in view by default; the test reads every cell, so it draws them all. No news.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
}


@pytest.fixture
def lab_project(tmp_path: Path) -> Path:
    """A copy of the notebooks: Lab autosaves what it runs, and the repository's copies stay stripped."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "notebooks", project / "notebooks")
    return project


def start_lab(project: Path, env: dict[str, str], tmp_path: Path) -> tuple[subprocess.Popen, str, str]:
    """`paynb lab` on ``project``: returns the process, the base URL and the token it printed."""
    settings_dir = tmp_path / "lab-settings"
    for rel, values in LAB_SETTINGS.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    lab_env = {
        **os.environ,
        **env,
        "JUPYTERLAB_SETTINGS_DIR": str(settings_dir),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
    }
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(
        [*PAYNB, "lab", "--root", str(project)],
        cwd=project,
        env=lab_env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        start_new_session=True,
    )
    proc._paynb_log = log  # type: ignore[attr-defined]
    url = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            break
        if "token=" in line:
            url = line.strip()
            break
    assert url, f"paynb lab printed no URL; log: {(tmp_path / 'lab.log').read_text()[-2000:]}"
    base, token = url.split("/lab?token=")
    _wait_http(f"{base}/api/status?token={token}", timeout_s=60)
    return proc, base, token


def stop_lab(proc: subprocess.Popen) -> None:
    stop_process_group(proc)
    proc._paynb_log.close()  # type: ignore[attr-defined]


def keep_log(tmp_path: Path, test: str) -> None:
    folder = artifacts_dir()
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp_path / "lab.log", folder / f"{test}-lab.log")


def _wait_http(url: str, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10):
                return
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def wait_kernel_idle(page: Any, notebook: str) -> None:
    """Wait until the notebook's session has a kernel, connected and idle: the status bar's kernel item then
    reads "Python 3 (paynb) | Idle". Not the toolbar's execution indicator: it says idle from the start, while
    the status bar still says "No Kernel | Initializing" and no session exists yet. A Run All clicked then
    finds no kernel and leaves every cell unrun; clicked again while the kernel starts, it asks to Select
    Kernel."""
    page.wait_for_function(
        "(name) => [...document.querySelectorAll('.jp-StatusBar-TextItem')]"
        ".some(e => (e.title || '').endsWith(name) && /\\| Idle$/.test(e.textContent.trim()))",
        arg=Path(notebook).name,
        timeout=90_000,
    )


def run_all_cells(page: Any, base: str, token: str, notebook: str) -> None:
    """Open ``notebook`` in Lab, Run > Run All Cells, and wait until every code cell has run."""
    page.goto(f"{base}/lab/tree/{notebook}?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=90_000)
    wait_kernel_idle(page, notebook)
    page.click(".lm-MenuBar-item:has-text('Run')")
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    page.wait_for_function(
        "() => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];"
        " return p.length > 0 && p.every(x => /\\[\\d+\\]/.test(x.textContent)); }",
        timeout=RUN_ALL_TIMEOUT_MS,
    )


def notebook_text(page: Any) -> str:
    return page.inner_text(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")


def test_lab_runs_pad_triage_on_the_sandbox_and_the_picker_shows_evidence(
    browser_page: Any, sandbox_env: dict[str, str], lab_project: Path, tmp_path: Path, request
) -> None:
    page = browser_page
    proc, base, token = start_lab(lab_project, sandbox_env, tmp_path)
    try:
        run_all_cells(page, base, token, "notebooks/triage/pad_stuck.ipynb")
        screenshot(page, "pad_triage", "ran-all")
        text = notebook_text(page)
        assert "Traceback" not in text, text[-3000:]
        assert re.search(r"\d+ PAD invoices APPROVED for more than 20 days", text), text[:2000]

        select = page.locator(".widget-dropdown select").first
        select.wait_for(state="visible", timeout=30_000)
        # "4086 · check_create_invoices · -" (the browser shows the spaces as no-break spaces)
        labels = [
            [part.strip() for part in t.replace("\xa0", " ").split("·")]
            for t in select.locator("option").all_inner_texts()
        ]
        assert len(labels) >= 2, labels
        first = page.locator(".widget-output").first
        assert f'"invoice_id": {labels[0][0]}' in first.inner_text(timeout=30_000)

        chosen = labels[1][0]
        select.select_option(index=1)
        page.wait_for_function(
            "(id) => [...document.querySelectorAll('.widget-output')]"
            ".some(o => o.innerText.includes('\"invoice_id\": ' + id))",
            arg=chosen,
            timeout=30_000,
        )
        evidence = page.locator(".widget-output").first.inner_text()
        assert '"evidence"' in evidence and labels[1][1] in evidence
        select.scroll_into_view_if_needed()
        screenshot(page, "pad_triage", "picked-invoice")
    finally:
        if sys.exc_info()[0] is not None:  # while Lab still runs: the failure-time shot comes after it stops
            screenshot(page, request.node.name, "live")
            keep_log(tmp_path, request.node.name)
        stop_lab(proc)


def _credit_candidate(db_url: str) -> int:
    from paynb.sandbox.scenarios import scenario_ids

    eng = sa.create_engine(db_url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            return int(scenario_ids(conn, "pad_partial_credit_candidate", "invoices")[0])
    finally:
        eng.dispose()


def _finished_applies(env: dict[str, str]) -> list[Any]:
    from paynb.ledger import open_ledger
    from paynb.settings import Settings

    ledger = open_ledger(Settings.load(env=env, dotenv=None))
    return [e for e in ledger.entries(kind="apply") if e.event in ("finished", "failed")]


def test_the_credit_confirm_button_applies_once_then_disables_itself(
    browser_page: Any,
    sandbox_env: dict[str, str],
    sandbox_db_url: str,
    lab_project: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    page = browser_page
    invoice_id = _credit_candidate(sandbox_db_url)
    # what the analyst does first: choose the invoice and leave dry run in the parameters cell
    path = lab_project / "notebooks/datafix/pad_partial_credit.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = re.sub(r"invoice_id: int = \d+", f"invoice_id: int = {invoice_id}", cell.source)
    cell.source = cell.source.replace("dry_run: bool = True", "dry_run: bool = False")
    assert f"invoice_id: int = {invoice_id}" in cell.source and "dry_run: bool = False" in cell.source
    nbformat.write(nb, path)

    proc, base, token = start_lab(lab_project, sandbox_env, tmp_path)
    try:
        run_all_cells(page, base, token, "notebooks/datafix/pad_partial_credit.ipynb")
        assert "Traceback" not in notebook_text(page)
        button = page.locator("button.widget-button:has-text('Apply ')").first
        button.wait_for(state="visible", timeout=30_000)
        button.scroll_into_view_if_needed()
        screenshot(page, "pad_credit", "before-click")
        assert _finished_applies(sandbox_env) == []

        button.dblclick()  # two clicks before the kernel can grey it out: still one apply
        page.wait_for_function(
            "() => [...document.querySelectorAll('.widget-output')].some(o => /Applied:|Apply failed/.test(o.innerText))",
            timeout=120_000,
        )
        output = page.locator(".widget-output", has_text="Appl").first.inner_text()
        assert "Applied:" in output, output
        assert button.is_disabled()
        button.click(force=True, timeout=10_000)  # a click on the greyed button does nothing
        time.sleep(2)
        screenshot(page, "pad_credit", "after-click")
        applies = _finished_applies(sandbox_env)
        assert [(e.subject, e.event) for e in applies] == [("pad.partial_credit", "finished")]
        assert page.locator(".widget-output", has_text="Applied:").count() == 1
    finally:
        if sys.exc_info()[0] is not None:  # while Lab still runs: the failure-time shot comes after it stops
            screenshot(page, request.node.name, "live")
            keep_log(tmp_path, request.node.name)
        stop_lab(proc)


@pytest.fixture
def archived_run(
    empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    from paynb.jobs import run_notebook
    from paynb.settings import Settings

    monkeypatch.setenv("PAYNB_DATABASE_URL", empty_db_url)
    monkeypatch.setenv("PAYNB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PAYNB_ENV_FILE", str(tmp_path / "none.env"))
    settings = Settings.load(dotenv=None)
    done = run_notebook(
        ROOT / "tests/notebooks/success.ipynb",
        {"account_name": "Hidden Name"},
        settings=settings,
        cwd=tmp_path,
    )
    assert done.ok, done.message
    yield {"run_id": done.run_id, "record": done.record, "settings": settings}


def test_the_run_index_lists_a_run_and_its_link_opens_the_archived_html(
    browser_page: Any, archived_run: dict[str, Any], tmp_path: Path
) -> None:
    from paynb.cli import main

    page = browser_page
    site = tmp_path / "site"
    assert main(["runs", "site", "--out", str(site)]) == 0
    page.goto((site / "index.html").as_uri())
    run_id = archived_run["run_id"]
    row = page.locator("tr", has_text=run_id).first
    row.wait_for(timeout=30_000)
    assert "succeeded" in row.inner_text() and "account_name=***" in row.inner_text()
    assert "Hidden Name" not in page.content()
    screenshot(page, "run_index", "index")

    row.locator("a", has_text="HTML").click()
    page.wait_for_load_state("load", timeout=30_000)
    assert page.url.endswith(f"/{run_id}/notebook.html")
    body = page.inner_text("body")
    assert "Success" in body and "Hidden Name" not in body
    screenshot(page, "run_index", "archived-html")

    # the day page links to the same archived file
    page.goto((site / "days" / f"{archived_run['record']['started_at'][:10]}.html").as_uri())
    page.locator("tr", has_text=run_id).locator("a", has_text="HTML").click()
    page.wait_for_load_state("load", timeout=30_000)
    assert page.url.endswith(f"/{run_id}/notebook.html")
