"""``paynb.jobs.record``: validation, exact conversion, and collection from notebook outputs."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from paynb.errors import InputError
from paynb.jobs import record
from paynb.jobs.report import MIMETYPE, build_report, collect_reports


def test_record_is_the_paynb_jobs_attribute_and_returns_the_payload() -> None:
    import paynb.jobs
    import paynb.jobs.run_record  # importing a submodule must not shadow the function

    assert paynb.jobs.record is record
    payload = record(rows_affected=2, plan_sha256="a" * 64, dry_run=False, idempotency_key="fix:1", note="x")
    assert payload == {
        "rows_affected": 2,
        "plan_sha256": "a" * 64,
        "dry_run": False,
        "idempotency_key": "fix:1",
        "extra": {"note": "x"},
    }


def test_summary_frames_keep_money_exact_and_are_capped() -> None:
    frame = pd.DataFrame(
        {
            "method": ["PAD", "EFT"],
            "total": [Decimal("10.10"), Decimal("0.05")],
            "share": [0.25, float("nan")],
        }
    )
    out = build_report(summary=frame.set_index("method"))["summary"]
    assert out["columns"] == ["method", "total", "share"]
    assert out["rows"] == [["PAD", "10.10", "0.25"], ["EFT", "0.05", None]]
    assert out["row_count"] == 2 and out["truncated"] is False
    big = build_report(summary=pd.DataFrame({"n": range(500)}))["summary"]
    assert len(big["rows"]) == 200 and big["row_count"] == 500 and big["truncated"] is True


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rows_affected": -1}, "rows_affected"),
        ({"rows_affected": True}, "rows_affected"),
        ({"plan_sha256": "ABC"}, "plan_sha256"),
        ({"dry_run": "yes"}, "dry_run"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"summary": 3}, "summary"),
        ({"BadName": 1}, "BadName"),
    ],
)
def test_bad_reports_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(InputError) as info:
        build_report(**kwargs)
    assert info.value.field == field


def test_collect_merges_in_order_and_skips_damaged_outputs() -> None:
    def shown(payload: object) -> dict:
        return new_output("display_data", data={MIMETYPE: payload, "text/plain": "r"})

    nb = new_notebook(
        cells=[
            new_code_cell("a", outputs=[shown({"dry_run": True, "rows_affected": 1, "extra": {"a": 1}})]),
            new_code_cell("b", outputs=[shown({"rows_affected": "many"})]),
            new_code_cell("c", outputs=[shown({"rows_affected": 5, "summary": {"n": 1}, "extra": {"b": 2}})]),
        ]
    )
    merged, problems = collect_reports(nb)
    assert merged == {"dry_run": True, "rows_affected": 5, "summary": {"n": 1}, "extra": {"a": 1, "b": 2}}
    assert len(problems) == 1 and problems[0].startswith("cell 1:")
