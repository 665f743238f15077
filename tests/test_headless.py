"""paynb.headless: batch runs are told apart from a person at a notebook by the environment alone."""

from __future__ import annotations

import pytest

from paynb.headless import is_headless


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"PAYNB_RUN_ID": "01JDRUN"}, True),  # set by paynb run in the kernel
        ({"PAYNB_HEADLESS": "1"}, True),  # a scheduler running papermill or the CLI itself
        ({"PAYNB_RUN_ID": "", "PAYNB_HEADLESS": ""}, False),
    ],
)
def test_is_headless(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: bool) -> None:
    for name in ("PAYNB_RUN_ID", "PAYNB_HEADLESS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert is_headless() is expected
