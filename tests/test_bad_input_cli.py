"""Bad input becomes a clear error (exit 2, the option named), never a traceback, and writes nothing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from paynb.cli import main
from paynb.errors import InputError
from paynb.plan import Plan

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "argv",
    [
        ["stale", "--days", "2147483648"],
        ["stale", "--days", str(10**30)],
        ["pad", "triage", "--days", "2147483648"],
        ["ejv", "health", "--business-days", "2147483648"],
        [
            "pad",
            "credit",
            "plan",
            "--invoice",
            "2147483648",
            "--amount",
            "1.00",
            "--reason",
            "r",
            "--ticket",
            "T",
        ],
    ],
)
def test_huge_numbers_are_refused_before_any_work(argv: list[str], capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("days" in err or "--invoice" in err)


def test_stale_function_refuses_a_huge_days() -> None:
    from paynb.ops.stale import find_stale_invoices

    with pytest.raises(InputError, match="at most 36500"):
        find_stale_invoices(2147483648)


@pytest.mark.parametrize("where", ["missing_folder", "folder_is_a_file", "is_a_folder"])
def test_out_into_a_folder_that_cannot_hold_it(where: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = {
        "missing_folder": tmp_path / "nope" / "plan.json",
        "folder_is_a_file": blocker / "plan.json",
        "is_a_folder": tmp_path,
    }[where]
    argv = ["ejv", "redate", "plan", "INBOX.F3505.20261102200107", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "Traceback" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_out_into_a_read_only_folder(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    argv = [
        "pad",
        "credit",
        "plan",
        "--invoice",
        "1",
        "--amount",
        "1.00",
        "--reason",
        "r",
        "--ticket",
        "T",
        "--out",
        str(folder / "plan.json"),
    ]
    assert main(argv) == 2
    assert "permission denied" in capsys.readouterr().err


def test_plan_write_turns_os_errors_into_input_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    plan = Plan(kind="test", body={"x": 1})
    with pytest.raises(InputError, match="cannot write the plan file"):
        plan.write(blocker / "plan.json")
    tmp_path.chmod(0o755)
    written = plan.write(tmp_path / "plan.json")
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755  # the operator's folder is left alone


@pytest.mark.parametrize("area", ["/tmp/paynb-abs-area", "../..", "reports/../../x", "Reports", "a//b", ""])
def test_new_area_must_stay_under_notebooks(area: str, capsys) -> None:  # type: ignore[no-untyped-def]
    before = {p for p in REPO.rglob("zz_bad_area_nb.ipynb")}
    assert main(["new", "report", "zz_bad_area_nb", "--area", area]) == 2
    assert "--area" in capsys.readouterr().err
    assert {p for p in REPO.rglob("zz_bad_area_nb.ipynb")} == before == set()
    assert not Path("/tmp/paynb-abs-area").exists()
