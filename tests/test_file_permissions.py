"""No file paynb writes under its data dir is readable by group or others (0600 files in 0700 folders):
archived runs in a file:// store, the spool, the EJV index, the HMAC key, plan files written by --out.
The ledger file itself is covered by the ledger's own tests."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from paynb.jobs import run_notebook
from paynb.jobs.archive import ArchiveObject, spool_objects
from paynb.ops.ejv.index import SearchIndex
from paynb.plan import Plan
from paynb.settings import Settings

NOTEBOOKS = Path(__file__).parent / "notebooks"
LEDGER_FILES = ("ledger.sqlite",)  # the ledger-protocol work owns these


@pytest.fixture
def open_umask():  # type: ignore[no-untyped-def]
    old = os.umask(0o022)  # what most shells use: files 0644 unless paynb says otherwise
    yield
    os.umask(old)


def loose_files(root: Path) -> list[str]:
    out = []
    for path in root.rglob("*"):
        if path.name.startswith(LEDGER_FILES):
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            out.append(f"{path.relative_to(root)} {mode:o}")
    return out


@pytest.mark.notebook
def test_a_representative_workflow_leaves_nothing_readable_by_others(
    open_umask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    monkeypatch.setenv("PAYNB_DATA_DIR", str(data))
    settings = Settings.load(dotenv=None)
    result = run_notebook(
        NOTEBOOKS / "success.ipynb", {"invoice_id": "7"}, settings=settings
    )  # file:// archive
    assert result.ok and result.archive_state == "archived", result.message
    spool_objects(
        settings,
        run_id="r-spooled",
        store_url="s3://down/",
        objects=[ArchiveObject("record.json", "runs/x/record.json", b"{}")],
        reason="down",
    )
    with SearchIndex(data / "ejv-index.sqlite") as index:
        index.commit()
    (data / "plans").mkdir(mode=0o700)
    Plan(kind="demo", body={"invoice": 1}).write(data / "plans" / "plan.json")
    assert (data / "archive").is_dir() and (data / "spool").is_dir()
    assert len(list(data.rglob("*.html"))) == 1 and (data / "ejv-index.sqlite").exists()
    assert loose_files(data) == []
