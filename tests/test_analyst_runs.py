"""What an analyst sees after `paynb run` and later: the recorded result and the exact apply command of a
dry run (which then applies), `runs open` (archived HTML and notebook, sha-checked, to local files),
`runs list` filters, and `runs site` (the static index auditors read). Real kernels, real PostgreSQL, the
default file:// archive."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from paynb.cli import main
from paynb.jobs import run_notebook
from paynb.settings import Settings
from tests.toy_fix import create_table, read_note

pytestmark = pytest.mark.notebook
ROOT = Path(__file__).parents[1]
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
SENSITIVE = "Jane Q. Account-Holder"


def _toy_fix_notebook(path: Path) -> Path:
    """A dry-run-by-default fix notebook that records a summary table and its plan sha256."""
    nb = new_notebook(
        cells=[
            new_code_cell(
                'dry_run: bool = True\nconfirm: str = ""\nnote: str = "from a run"\n'
                'account_name: str = ""  # paynb: redact',
                metadata={"tags": ["parameters"]},
            ),
            new_code_cell(
                f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                "import pandas as pd\nimport paynb.jobs\nfrom paynb.context import Env\n"
                "from paynb.fixes.widgets import show_plan\nfrom tests.toy_fix import toy_fix\n"
                "env = Env()\nfix = toy_fix()\nplan = fix.plan(env, row_id=1, note=note)"
            ),
            new_code_cell("decision = show_plan(fix, plan, dry_run=dry_run, confirm=confirm, env=env)"),
            new_code_cell(
                "paynb.jobs.record(dry_run=decision.result is None, plan_sha256=plan.sha256,\n"
                "    summary=pd.DataFrame({'row': [1], 'new note': [note]}))"
            ),
        ],
        metadata={"kernelspec": KERNELSPEC},
    )
    nbformat.write(nb, path)
    return path


@pytest.fixture
def data_env(empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    create_table(empty_db_url, {1: "old"})
    monkeypatch.setenv("PAYNB_DATABASE_URL", empty_db_url)
    monkeypatch.setenv("PAYNB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PAYNB_ENV_FILE", str(tmp_path / "none.env"))
    monkeypatch.setenv("PAYNB_NO_BROWSER", "1")
    monkeypatch.chdir(tmp_path)
    return Settings.load(dotenv=None)


def test_a_dry_run_prints_its_result_and_the_command_that_applies_it(
    data_env: Settings, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    nb = _toy_fix_notebook(tmp_path / "toy_fix.ipynb")
    assert main(["run", str(nb), "-p", "note", "reviewed note", "-p", "account_name", SENSITIVE]) == 0
    out = capsys.readouterr().out
    assert "Result recorded by the notebook" in out and "reviewed note" in out  # the summary table
    sha = re.search(r"plan     sha256 ([0-9a-f]{64})", out)[1]  # type: ignore[index]
    command = next(line.strip() for line in out.splitlines() if line.strip().startswith("paynb run "))
    assert f"-p confirm {sha}" in command and "-p dry_run False" in command
    assert SENSITIVE not in out and "'<your value>'" in command  # a redacted parameter stays hidden

    # the printed command, as the operator would paste it (the redacted value typed in again)
    argv = shlex.split(command.replace("'<your value>'", shlex.quote(SENSITIVE)))[1:]
    assert main(argv) == 0
    applied = capsys.readouterr().out
    assert "rows     1 affected" in applied and "apply    after review" not in applied
    from paynb.context import Env

    assert read_note(Env(settings=data_env), 1) == "reviewed note"


def test_run_help_example_uses_the_real_parameter_name(capsys) -> None:  # type: ignore[no-untyped-def]
    from paynb.jobs.params import read_notebook_schema

    assert main(["run", "--help"]) == 0
    help_text = capsys.readouterr().out
    example = re.search(r"paynb run notebooks/reports/stale_invoices.ipynb -p days 20 (.*)", help_text)[1]  # type: ignore[index]
    names = re.findall(r"-p (\w+) ", example + " ")
    schema = read_notebook_schema(ROOT / "notebooks/reports/stale_invoices.ipynb", secret_values=[])
    assert names and set(names) <= set(schema.params), (names, list(schema.params))


def test_runs_open_fetches_the_archived_files_and_refuses_changed_ones(
    data_env: Settings, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    nb = _toy_fix_notebook(tmp_path / "toy_fix.ipynb")
    done = run_notebook(nb, {"account_name": SENSITIVE}, settings=data_env, cwd=tmp_path)
    assert done.ok, done.message
    capsys.readouterr()
    assert main(["runs", "open", done.run_id[:8], "--out", str(tmp_path / "review"), "--no-browser"]) == 0
    out = capsys.readouterr().out
    html = Path(re.search(r"html     (\S+)", out)[1])  # type: ignore[index]
    ipynb = Path(re.search(r"notebook (\S+)", out)[1])  # type: ignore[index]
    assert html.parent == tmp_path / "review" / done.run_id
    assert "from a run" in html.read_text()  # the rendered notebook, with its outputs
    assert SENSITIVE not in html.read_text() and SENSITIVE not in ipynb.read_text()
    assert nbformat.reads(ipynb.read_text(), as_version=4).metadata["paynb"]["run_id"] == done.run_id
    assert (html.stat().st_mode & 0o777) == 0o600

    # an archived HTML changed after the run: `runs open` says so instead of showing it
    archived = data_env.data_dir / "archive" / done.record["archive"]["objects"]["notebook.html"]["key"]
    archived.write_bytes(archived.read_bytes() + b"<!-- edited -->")
    assert main(["runs", "open", done.run_id, "--out", str(tmp_path / "again"), "--no-browser"]) == 1
    assert "does not match its sha256" in capsys.readouterr().err


def test_runs_list_filters_by_operator_type_and_time(
    data_env: Settings, tmp_path: Path, capsys, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import json

    nb = _toy_fix_notebook(tmp_path / "toy_fix.ipynb")
    monkeypatch.setenv("PAYNB_ACTOR", "Alice Analyst")
    first = run_notebook(nb, {}, settings=data_env, cwd=tmp_path)
    assert first.ok, first.message
    capsys.readouterr()

    def listed(*args: str) -> list[dict]:
        assert main(["runs", "list", "--json", *args]) == 0
        return json.loads(capsys.readouterr().out)

    assert [r["id"] for r in listed("--runs", "--by", "ALICE")] == [first.run_id]
    assert listed("--by", "nobody-with-this-name") == []
    assert listed("--until", "2000-01-01") == []
    assert [r["id"] for r in listed("--runs", "--since", "1h", "--until", "2999-01-01")] == [first.run_id]
    assert main(["runs", "list", "--until", "soon"]) == 2
    assert "until" in capsys.readouterr().err


def test_runs_site_lists_runs_by_day_and_notebook_with_working_links(
    data_env: Settings, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    nb = _toy_fix_notebook(tmp_path / "toy_fix.ipynb")
    done = run_notebook(nb, {"account_name": SENSITIVE}, settings=data_env, cwd=tmp_path)
    failed = run_notebook(nb, {"confirm": "0" * 64, "dry_run": "False"}, settings=data_env, cwd=tmp_path)
    assert done.ok and not failed.ok
    capsys.readouterr()
    site = tmp_path / "site"
    assert main(["runs", "site", "--out", str(site)]) == 0
    assert "2 run(s)" in capsys.readouterr().out

    index = (site / "index.html").read_text()
    assert done.run_id in index and failed.run_id in index
    assert "<script" not in index.lower()
    day = done.record["started_at"][:10]
    day_page = (site / "days" / f"{day}.html").read_text()
    nb_page = (site / "notebooks" / "toy_fix.html").read_text()
    for page in (index, day_page, nb_page):
        assert SENSITIVE not in page and "account_name=***" in page
        assert "succeeded" in page and "failed" in page and ">ok<" in page  # status and verify state
    actor = done.record["actor"]
    assert actor in day_page
    # every link resolves to a file of the site; the archived HTML is a checked copy of the archive's
    for page_path in [site / "index.html", *site.glob("days/*.html"), *site.glob("notebooks/*.html")]:
        for href in re.findall(r"href='([^']+)'", page_path.read_text()):
            assert (page_path.parent / href).resolve().is_file(), (page_path, href)
    key = done.record["archive"]["objects"]["notebook.html"]["key"]
    assert f"href='../{key}'" in day_page
    assert (site / key).read_bytes() == (data_env.data_dir / "archive" / key).read_bytes()
    assert "not archived" in index or failed.record.get("archive")  # a failed run links its archive too

    # --archive writes the same pages into the archive, linking to the archived objects in place
    assert main(["runs", "site", "--archive", "--no-verify"]) == 0
    in_archive = data_env.data_dir / "archive" / "site"
    archived_index = (in_archive / "index.html").read_text()
    assert f"href='../{key}'" in archived_index and "not checked" in archived_index
    assert (in_archive / f"../{key}").resolve().is_file()
