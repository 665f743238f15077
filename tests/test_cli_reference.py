"""docs/cli.md is generated from the click tree; it must match the commands as they are now."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location(
        "gen_cli_reference", ROOT / "tools" / "gen_cli_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_current():
    gen = _generator()
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert gen.generate() == current, f"docs/cli.md is not current; regenerate it with: {gen.REGENERATE}"


def test_cli_reference_lists_every_command():
    gen = _generator()
    from paynb.cli import cli

    text = gen.generate()
    for path, _command, _ctx in gen.walk(cli, ("paynb",)):
        assert f"## `{' '.join(path)}`" in text


def test_cli_reference_is_deterministic():
    gen = _generator()
    assert gen.generate() == gen.generate()


def test_check_mode_reports_a_stale_file(tmp_path, capsys):
    gen = _generator()
    stale = tmp_path / "cli.md"
    stale.write_text("# old\n", encoding="utf-8")
    assert gen.main(["--check", str(stale)]) == 1
    assert "make docs" in capsys.readouterr().err
    assert gen.main([str(stale)]) == 0
    assert gen.main(["--check", str(stale)]) == 0
