"""tests/plugins/hangs.py: only a test marked flaky_hang gets a second try after its worker crashed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # starts a whole pytest run with a worker

SUITE = """
import os
from pathlib import Path

import pytest


@pytest.mark.flaky_hang("a stall outside paynb")
def test_flaky_once(tmp_path_factory):
    flag = Path(os.environ["CRASH_FLAG"])
    if not flag.exists():
        flag.write_text("crashed once")
        os._exit(1)  # what a hang ends in: the worker dies


def test_plain_crash():
    os._exit(1)
"""


def test_only_known_flaky_tests_are_retried(tmp_path: Path) -> None:
    (tmp_path / "test_suite.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(PYTHONPATH=str(REPO), CRASH_FLAG=str(tmp_path / "flag"))
    plugins = ["-p", "tests.plugins.hangs", "-p", "no:cacheprovider"]
    args = [sys.executable, "-m", "pytest", *plugins, "-n", "1", "-o", "addopts=", "-rA", "test_suite.py"]
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    out = done.stdout
    assert done.returncode == 1, out[-3000:]
    assert "RERUN test_suite.py::test_flaky_once" in out
    assert "PASSED test_suite.py::test_flaky_once" in out
    assert "RERUN test_suite.py::test_plain_crash" not in out
    assert "FAILED test_suite.py::test_plain_crash" in out
    assert "known-flaky tests" in out
