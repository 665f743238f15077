"""Test plumbing for applies: every test gets its own ledger folder (``PAYNB_DATA_DIR`` in tmp) unless it
sets one, so applies made through :func:`paynb.fixes.apply_fix` never write into the work tree; and a
``fix_ledger`` fixture to read the apply entries back."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from paynb.settings import Settings, get_settings


@dataclass
class LedgerView:
    """The apply entries of the ledger the current environment points at."""

    def settings(self) -> Settings:
        return get_settings()

    def applies(self) -> list[tuple[str, str, str]]:
        """(event, fix kind, status) of every apply entry, oldest first."""
        from paynb.ledger import missing_local_ledger, open_ledger

        settings = self.settings()
        if missing_local_ledger(settings):
            return []
        return [(e.event, e.subject, e.status) for e in open_ledger(settings).entries(kind="apply")]

    def finished(self, kind: str) -> list[str]:
        return [status for event, k, status in self.applies() if event == "finished" and k == kind]


@pytest.fixture(autouse=True)
def _private_ledger_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not os.environ.get("PAYNB_DATA_DIR"):
        monkeypatch.setenv("PAYNB_DATA_DIR", str(tmp_path / "paynb-data"))


@pytest.fixture
def fix_ledger() -> LedgerView:
    return LedgerView()


TAMPERS = ("edit its entry", "delete its entry", "delete the last two entries")


def assert_apply_is_audited(apply_id: str, kind: str, tmp_path: Path) -> None:
    """#10 Done-when for one write path: `paynb runs list` shows the apply (and `runs show` its plan);
    editing its entry, deleting it, or deleting the last two ledger entries (each on a copy of the data
    folder) fails `audit verify`."""
    import json
    import shutil
    import sqlite3

    from click.testing import CliRunner

    from paynb.cli import cli
    from paynb.jobs.audit import verify

    settings = get_settings()
    listed = CliRunner().invoke(cli, ["runs", "list", "--applies", "--kind", kind, "--json"])
    assert listed.exit_code == 0, listed.output
    assert apply_id in {row.get("id") or row.get("apply_id") for row in json.loads(listed.output)}, (
        listed.output
    )
    shown = CliRunner().invoke(cli, ["runs", "show", apply_id, "--json"])
    assert shown.exit_code == 0 and kind in shown.output and '"plan' in shown.output, shown.output
    assert [r for r in verify(all=True, settings=settings) if not r.ok] == []

    source = Path(settings.data_dir)
    for n, tamper in enumerate(TAMPERS):
        copy = tmp_path / f"tampered-{n}"
        shutil.copytree(source, copy)
        with sqlite3.connect(copy / "ledger.sqlite") as db:
            if tamper == "edit its entry":  # one more row than the apply counted
                (text,) = db.execute(
                    "SELECT record FROM paynb_ledger WHERE ref = ? AND event = 'finished'", (apply_id,)
                ).fetchone()
                record = json.loads(text)
                record["rows_affected"] = int(record.get("rows_affected") or 0) + 1
                changed = db.execute(
                    "UPDATE paynb_ledger SET record = ? WHERE ref = ? AND event = 'finished'",
                    (json.dumps(record, sort_keys=True, separators=(",", ":")), apply_id),
                ).rowcount
            elif tamper == "delete its entry":
                changed = db.execute(
                    "DELETE FROM paynb_ledger WHERE ref = ? AND event = 'finished'", (apply_id,)
                ).rowcount
            else:
                changed = db.execute(
                    "DELETE FROM paynb_ledger WHERE seq > (SELECT max(seq) - 2 FROM paynb_ledger)"
                ).rowcount
        assert changed, tamper
        moved = Settings.load(env={**os.environ, "PAYNB_DATA_DIR": str(copy)}, dotenv=None)
        assert [r for r in verify(all=True, settings=moved) if not r.ok], tamper
