"""`paynb run` and the ledger, with real kernels: a killed run shows as killed, a data fix's rows come from
its applies (not the notebook's say-so), a wrong confirm fails the run, and a run refused for a secret
keeps a redacted record that `runs show --json` prints without the secret."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from paynb.cli import exits, main
from paynb.errors import SecretLeak
from paynb.jobs import run_notebook
from paynb.ledger import newest_anchor, open_ledger
from paynb.settings import Settings
from tests.toy_fix import create_table, read_note, role_urls

pytestmark = pytest.mark.notebook
ROOT = Path(__file__).parents[1]
NOTEBOOKS = Path(__file__).parent / "notebooks"
SECRET = "cfs-client-secret-for-ledger-tests-01"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def _notebook(path: Path, parameters: str, *cells: str, kind: str = "report") -> Path:
    nb = new_notebook(
        cells=[new_code_cell(parameters, metadata={"tags": ["parameters"]}), *map(new_code_cell, cells)],
        metadata={"kernelspec": KERNELSPEC, "paynb": {"kind": kind}},
    )
    nbformat.write(nb, path)
    return path


def test_a_killed_run_shows_as_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "PAYNB_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from paynb.cli import main; sys.exit(main(sys.argv[1:]))",
            "run",
            str(NOTEBOOKS / "timeout.ipynb"),
            "-p",
            "seconds",
            "120",
        ],
        env=env,
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    settings = Settings.load(env={"PAYNB_DATA_DIR": str(tmp_path / "data")}, dotenv=None)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            # wait for the anchor too: a kill between chaining and anchoring is a real gap that verify reports
            ledger_file = tmp_path / "data" / "ledger.sqlite"
            if ledger_file.exists() and open_ledger(settings).entries(kind="run"):
                if newest_anchor(open_ledger(settings), settings).document is not None:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("paynb run chained and anchored no run-started entry within 60 s")
        monkeypatch.setenv("PAYNB_DATA_DIR", str(tmp_path / "data"))
        assert main(["runs", "list", "--json"]) == 0
        [running] = json.loads(capsys.readouterr().out)
        assert running["status"] == "running"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its kernel, mid-cell
        proc.wait(timeout=30)
    assert main(["runs", "list", "--status", "killed", "--json"]) == 0
    [killed] = json.loads(capsys.readouterr().out)
    assert killed["type"] == "run" and killed["what"].endswith("timeout.ipynb")
    assert main(["runs", "show", killed["id"]]) == 0
    assert "killed (never finished)" in capsys.readouterr().out
    assert main(["audit", "verify", "--all"]) == 0  # a killed run is not tampering


def _toy_fix_notebook(path: Path) -> Path:
    return _notebook(
        path,
        'dry_run: bool = True\nconfirm: str = ""\nnote: str = "from a run"',
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        "import paynb.jobs\n"
        "from paynb.context import Env\n"
        "from paynb.fixes.widgets import show_plan\n"
        "from tests.toy_fix import toy_fix\n"
        "env = Env()\nfix = toy_fix()\nplan = fix.plan(env, row_id=1, note=note)",
        "decision = show_plan(fix, plan, dry_run=dry_run, confirm=confirm, env=env, ticket='OPS-9', reason='run')",
        "paynb.jobs.record(rows_affected=99, dry_run=True, plan_sha256=plan.sha256)",
        kind="datafix",  # only a data fix's kernel gets the writer (docs/roles.md)
    )


def test_a_data_fix_run_counts_its_applies_and_fails_on_a_wrong_confirm(
    empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_table(empty_db_url, {1: "old"})
    for name, value in role_urls(empty_db_url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PAYNB_DATA_DIR", str(tmp_path / "data"))
    settings = Settings.load(dotenv=None)
    nb = _toy_fix_notebook(tmp_path / "toy_fix.ipynb")

    dry = run_notebook(nb, {}, settings=settings, cwd=tmp_path)
    assert dry.ok and dry.record["rows_affected"] == 0
    sha = dry.record["plan_sha256"]
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(nb), "-p", "dry_run", "False", "-p", "confirm", "0" * 64]) == exits.REFUSED
    wrong = open_ledger(settings).runs()[-1].record  # recorded refused by the runner, not as a crash
    assert (wrong["status"], wrong["failure_kind"]) == ("refused", "refused")
    assert wrong["failure_detail"]["ename"] == "ConfirmMismatch"

    done = run_notebook(nb, {"dry_run": "False", "confirm": sha}, settings=settings, cwd=tmp_path)
    assert done.ok, done.message
    assert done.record["rows_affected"] == 1 and done.record["dry_run"] is False
    assert done.record["reported"]["claimed_rows_affected"] == 99
    [finished] = open_ledger(settings).entries(kind="apply", event="finished")
    assert finished.run_id == done.run_id and finished.record["ticket"] == "OPS-9"
    from paynb.context import Env

    assert read_note(Env(settings=settings), 1) == "from a run"


def test_a_run_refused_for_a_secret_keeps_a_redacted_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PAYNB_CFS_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("PAYNB_DATA_DIR", str(tmp_path / "data"))
    nb = _notebook(
        tmp_path / "leaky.ipynb",
        'label: str = "x"',
        "import os\nimport paynb.jobs\nsecret = os.environ['PAYNB_CFS_CLIENT_SECRET']\n"
        "paynb.jobs.record(summary={'token': secret}, note=f'used {secret}')\nprint(secret)",
    )
    with pytest.raises(SecretLeak):
        run_notebook(nb, settings=Settings.load(dotenv=None), cwd=tmp_path)
    [run] = open_ledger(Settings.load(dotenv=None)).runs()
    assert run.record["failure_kind"] == "secret_leak" and SECRET not in run.raw_record
    assert main(["runs", "show", run.ref, "--json"]) == 0
    out = capsys.readouterr().out
    assert SECRET not in out and json.loads(out)["record"]["summary"] == {"token": "***"}
    assert not any(SECRET.encode() in p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file())
