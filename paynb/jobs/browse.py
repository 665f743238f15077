"""Reading archived runs back: ``paynb runs open`` (one run's HTML and notebook to local files).

Every object is read from the archive the run record names (the exact version the ledger recorded when
the store keeps versions) or, while it waits there, from the local spool, and its sha256 is checked
against the run record before it is written: what an auditor opens is what was archived.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paynb.canonical import sha256_hex
from paynb.errors import InputError, StoreError
from paynb.files import private_dir, write_private
from paynb.jobs.archive import HTML, NOTEBOOK, spool_root
from paynb.ledger import Ledger, LedgerEntry
from paynb.settings import Settings
from paynb.store import Store, open_store


@dataclass(frozen=True)
class OpenedRun:
    run_id: str
    notebook: str
    html_path: Path
    notebook_path: Path


def finished_entry(ledger: Ledger, run_id: str) -> LedgerEntry:
    """The record entry of a finished run (id or 8+ character prefix)."""
    group = ledger.find(run_id)
    ref = group[0].ref
    if group[0].kind != "run":
        raise InputError("is an apply of a data fix, not a run; `paynb runs show` shows it", field="RUN")
    done = [e for e in ledger.entries(ref=ref) if e.kind == "run" and e.event == "finished"]
    if not done:
        raise InputError(
            f"run {ref} never finished, so nothing of it was archived",
            field="RUN",
            hint=f"`paynb runs show {ref[:8]}` shows what is known",
        )
    return done[-1]


def read_archived(
    entry: LedgerEntry,
    name: str,
    *,
    ledger: Ledger,
    settings: Settings,
    stores: dict[str, Store] | None = None,
) -> bytes:
    """The bytes of archived object ``name`` (``notebook.html``, ``notebook.ipynb``) of a finished run,
    checked against the sha256 in its record."""
    archive = entry.record.get("archive")
    if not isinstance(archive, dict) or name not in (archive.get("objects") or {}):
        raise InputError(
            f"run {entry.ref} has no archived {name} ({entry.record.get('failure_kind') or 'nothing archived'})",
            field="RUN",
        )
    obj = archive["objects"][name]
    spooled = spool_root(settings) / entry.ref / name
    delivered = ledger.objects(entry.ref).get(name)
    if delivered is None and spooled.is_file():
        data = spooled.read_bytes()
    else:
        stores = {} if stores is None else stores
        url = archive["url"]
        if url not in stores:
            stores[url] = open_store(url, settings)
        version = delivered.version_id if delivered else obj.get("version_id")
        store = stores[url]
        # checked below against the run record (what the ledger chain vouches for), not the store's own note
        data = store.get(obj["key"], version_id=version, verify=False)
    if sha256_hex(data) != obj["sha256"]:
        raise StoreError(
            f"the archived {name} of run {entry.ref} does not match its sha256 in the run record",
            hint=f"run `paynb audit verify {entry.ref[:8]}`",
        )
    return data


def open_run(
    run_id: str, *, ledger: Ledger, settings: Settings, out_dir: str | os.PathLike | None = None
) -> OpenedRun:
    """Write a run's archived HTML and notebook to ``out_dir/<run_id>/`` (default: the data dir's
    ``opened/``), as private files, and say where."""
    entry = finished_entry(ledger, run_id)
    folder = private_dir(Path(out_dir or Path(settings.data_dir) / "opened") / entry.ref)
    stores: dict[str, Store] = {}
    paths: dict[str, Path] = {}
    for name in (HTML, NOTEBOOK):
        data = read_archived(entry, name, ledger=ledger, settings=settings, stores=stores)
        paths[name] = write_private(folder / name, data)
    notebook = str((entry.record.get("notebook") or {}).get("path", entry.subject))
    return OpenedRun(entry.ref, notebook, paths[HTML].resolve(), paths[NOTEBOOK].resolve())


def browser_available(environ: dict[str, Any] | None = None) -> bool:
    """A graphical browser can be shown: a desktop session (macOS, Windows, or a Linux display), and not
    switched off with PAYNB_NO_BROWSER (tests and CI set it; a server has no display anyway)."""
    env = os.environ if environ is None else environ
    if env.get("PAYNB_NO_BROWSER") or env.get("CI"):
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def open_in_browser(path: Path) -> bool:
    import webbrowser

    try:
        return bool(webbrowser.open(path.as_uri()))
    except webbrowser.Error:
        return False


__all__ = ["OpenedRun", "browser_available", "finished_entry", "open_in_browser", "open_run", "read_archived"]
