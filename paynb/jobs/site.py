"""``paynb runs site``: a static HTML index of the runs for auditors, by day and by notebook.

Plain HTML and one small stylesheet, no JavaScript: it opens from a folder, a file share or a bucket
served as a website. Each run shows its status, operator, redacted parameters (the run record keeps no
other kind), the state ``paynb audit verify`` gives it, and a link to its archived HTML.

Layout (``--out DIR``; with ``--archive`` the same pages go under ``site/`` in the archive)::

    index.html                      days, newest first, and notebooks, with counts
    days/2026-03-14.html            that day's runs
    notebooks/stale_invoices.html   that notebook's runs
    runs/2026/03/14/<nb>/<id>/notebook.html   (--out only) the archived HTML, copied and sha-checked

Inside the archive the links point at the archived objects themselves (``runs/...`` beside ``site/``).
"""

from __future__ import annotations

import html
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from paynb import __version__
from paynb.errors import PaynbError
from paynb.files import private_dir
from paynb.jobs.archive import HTML, safe_name
from paynb.jobs.browse import read_archived
from paynb.ledger import Ledger
from paynb.ledger.history import Activity, activities
from paynb.settings import Settings
from paynb.store import Store, open_store

SITE_PREFIX = "site"
STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;
vertical-align:top}th{background:#f4f4f4}code{font-size:12px}.ok,.succeeded{color:#126b12}
.failed,.tampered,.chain_broken,.killed{color:#a11;font-weight:bold}.missing,.unknown,.running{color:#a60}
nav a{margin-right:1em}.params{font-family:monospace;font-size:12px}"""


@dataclass
class SiteRun:
    """One run as the index shows it."""

    run_id: str
    day: str
    notebook: str
    started_at: str
    status: str
    operator: str
    parameters: dict[str, Any]
    verify_state: str
    verify_detail: str
    archive_key: str | None  # the archived HTML's key, relative to the archive root
    rows_affected: int | None = None
    applies: list[str] = field(default_factory=list)

    @property
    def notebook_page(self) -> str:
        return safe_name(Path(self.notebook).stem)


@dataclass(frozen=True)
class SiteResult:
    pages: list[str]
    runs: int
    copied: int
    where: str
    problems: list[str]


def collect_runs(ledger: Ledger, settings: Settings, *, verify_runs: bool = True) -> list[SiteRun]:
    """Every run in the ledger, newest first, with its verify state (``audit verify --all``)."""
    found = activities(ledger)
    states: dict[str, tuple[str, str]] = {}
    if verify_runs:
        from paynb.jobs.audit import verify

        for result in verify(all=True, settings=settings, ledger=ledger):
            if result.kind == "run":
                states[result.run_id] = (result.state, result.detail)
    applies: dict[str, list[str]] = defaultdict(list)
    for a in found:
        if a.type == "apply" and a.run_id:
            applies[a.run_id].append(f"{a.what} {a.status}")
    return [_site_run(a, states, applies) for a in found if a.type == "run"]


def _site_run(a: Activity, states: dict[str, tuple[str, str]], applies: dict[str, list[str]]) -> SiteRun:
    rec = a.entries[-1].record
    archive = rec.get("archive") if isinstance(rec.get("archive"), dict) else None
    key = ((archive or {}).get("objects") or {}).get(HTML, {}).get("key")
    state, detail = states.get(a.id, ("not checked", ""))
    return SiteRun(
        run_id=a.id,
        day=a.started_at[:10],
        notebook=a.what,
        started_at=a.started_at,
        status=a.status,
        operator=a.by,
        parameters=dict(rec.get("parameters") or {}),
        verify_state=state,
        verify_detail=detail,
        archive_key=key,
        rows_affected=a.rows_affected,
        applies=applies.get(a.id, []),
    )


# -- rendering ------------------------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _page(title: str, body: str, *, up: str) -> str:
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>\n"
        f"<nav><a href='{up}index.html'>all runs</a></nav>\n<h1>{_e(title)}</h1>\n{body}\n"
        f"<p><small>Built by paynb {__version__} at {generated} from the ledger. Parameters are shown as "
        "recorded (redacted). Verify states come from <code>paynb audit verify --all</code>.</small></p>"
        "\n</body></html>\n"
    )


def _run_table(runs: Iterable[SiteRun], *, up: str, link_root: str, show_day: bool) -> str:
    head = ["started (UTC)", "notebook", "status", "operator", "parameters", "verify", "rows", "archived"]
    rows = []
    for r in runs:
        params = ", ".join(f"{k}={v}" for k, v in r.parameters.items()) or "(defaults)"
        link = (
            f"<a href='{link_root}{_e(r.archive_key)}'>HTML</a>" if r.archive_key else "<em>not archived</em>"
        )
        when = r.started_at[:19].replace("T", " ")
        if show_day:
            when = f"<a href='{up}days/{_e(r.day)}.html'>{_e(r.day)}</a> {_e(when[11:])}"
        else:
            when = _e(when)
        extra = "".join(f"<br><small>apply {_e(x)}</small>" for x in r.applies)
        rows.append(
            "<tr>"
            f"<td>{when}<br><small><code>{_e(r.run_id)}</code></small></td>"
            f"<td><a href='{up}notebooks/{_e(r.notebook_page)}.html'>{_e(r.notebook)}</a></td>"
            f"<td class='{_e(r.status)}'>{_e(r.status)}{extra}</td>"
            f"<td>{_e(r.operator)}</td>"
            f"<td class='params'>{_e(params)}</td>"
            f"<td class='{_e(r.verify_state)}' title='{_e(r.verify_detail)}'>{_e(r.verify_state)}</td>"
            f"<td>{_e(r.rows_affected if r.rows_affected is not None else '')}</td>"
            f"<td>{link}</td></tr>"
        )
    header = "".join(f"<th>{h}</th>" for h in head)
    return f"<table><thead><tr>{header}</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>"


def render_pages(runs: list[SiteRun], *, link_root: str) -> dict[str, str]:
    """Path (relative to the site root) -> HTML. ``link_root`` is how a page at the site root reaches
    the archive root (``""`` when the archived HTML is copied beside the pages, ``"../"`` inside the
    archive)."""
    by_day: dict[str, list[SiteRun]] = defaultdict(list)
    by_notebook: dict[str, list[SiteRun]] = defaultdict(list)
    for r in runs:
        by_day[r.day].append(r)
        by_notebook[r.notebook_page].append(r)
    pages: dict[str, str] = {}
    for day, items in by_day.items():
        body = f"<p>{len(items)} run(s)</p>" + _run_table(
            items, up="../", link_root="../" + link_root, show_day=False
        )
        pages[f"days/{day}.html"] = _page(f"Runs on {day}", body, up="../")
    for name, items in by_notebook.items():
        body = f"<p>{len(items)} run(s) of <code>{_e(items[0].notebook)}</code></p>" + _run_table(
            items, up="../", link_root="../" + link_root, show_day=True
        )
        pages[f"notebooks/{name}.html"] = _page(f"Runs of {name}", body, up="../")
    bad = [r for r in runs if r.status != "succeeded" or r.verify_state not in ("ok", "not checked")]
    days = "".join(
        f"<li><a href='days/{_e(d)}.html'>{_e(d)}</a>: {len(items)} run(s)"
        + (
            f", <span class='failed'>{n} need a look</span>"
            if (n := sum(1 for r in items if r in bad))
            else ""
        )
        + "</li>"
        for d, items in sorted(by_day.items(), reverse=True)
    )
    notebooks = "".join(
        f"<li><a href='notebooks/{_e(n)}.html'>{_e(items[0].notebook)}</a>: {len(items)} run(s)</li>"
        for n, items in sorted(by_notebook.items())
    )
    body = (
        f"<p>{len(runs)} run(s); {len(bad)} failed, unfinished or not verified ok.</p>"
        f"<h2>By day</h2><ul>{days or '<li>no runs</li>'}</ul>"
        f"<h2>By notebook</h2><ul>{notebooks or '<li>no runs</li>'}</ul>"
        "<h2>Latest runs</h2>" + _run_table(runs[:50], up="", link_root=link_root, show_day=True)
    )
    pages["index.html"] = _page("paynb runs", body, up="")
    return pages


# -- writing --------------------------------------------------------------------------------------------
def build_site(
    *,
    ledger: Ledger,
    settings: Settings,
    out_dir: str | os.PathLike | None = None,
    archive_url: str | None = None,
    verify_runs: bool = True,
) -> list[SiteResult]:
    """Write the pages to ``out_dir`` (with copies of the archived HTML), and/or into the archive at
    ``archive_url`` under ``site/`` (linking to the archived objects in place)."""
    runs = collect_runs(ledger, settings, verify_runs=verify_runs)
    results = []
    if out_dir is not None:
        results.append(_write_local(Path(out_dir), runs, ledger=ledger, settings=settings))
    if archive_url is not None:
        results.append(_write_archive(archive_url, runs, settings=settings))
    return results


def _write_local(out: Path, runs: list[SiteRun], *, ledger: Ledger, settings: Settings) -> SiteResult:
    private_dir(out)
    stores: dict[str, Store] = {}
    problems: list[str] = []
    copied = 0
    for r in runs:
        if not r.archive_key:
            continue
        target = out / r.archive_key
        entry = next(e for e in ledger.entries(ref=r.run_id) if e.kind == "run" and e.event == "finished")
        try:
            data = read_archived(entry, HTML, ledger=ledger, settings=settings, stores=stores)
        except PaynbError as err:
            problems.append(f"{r.run_id}: {str(err).splitlines()[0]}")
            r.archive_key = None
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        copied += 1
    pages = render_pages(runs, link_root="")
    for rel, text in pages.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return SiteResult(sorted(pages), len(runs), copied, str(out.resolve() / "index.html"), problems)


def _write_archive(url: str, runs: list[SiteRun], *, settings: Settings) -> SiteResult:
    store = open_store(url, settings)
    pages = render_pages(runs, link_root="../")
    for rel, text in pages.items():
        store.put(
            f"{SITE_PREFIX}/{rel}",
            text.encode("utf-8"),
            content_type="text/html; charset=utf-8",
            overwrite=True,  # the index is rebuilt; the runs it links to are never rewritten
        )
    return SiteResult(sorted(pages), len(runs), 0, store.url_for(f"{SITE_PREFIX}/index.html"), [])


__all__ = ["SiteResult", "SiteRun", "build_site", "collect_runs", "render_pages"]
