"""Redaction and the secret scan, on notebooks built in memory."""

from __future__ import annotations

import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from paynb.errors import SecretLeak
from paynb.jobs.params import INJECTED_TAG
from paynb.jobs.redact import check_notebook, redact_notebook, scan_notebook

SECRET = "s3cr3t-configured-value"


def notebook(*cells) -> object:  # type: ignore[no-untyped-def]
    return new_notebook(cells=list(cells), metadata={"papermill": {"parameters": {"name": "Jane"}}})


@pytest.mark.parametrize(
    ("cell", "kind"),
    [
        (new_code_cell("x", outputs=[new_output("stream", text=f"value {SECRET}\n")]), "configured secret"),
        (
            new_code_cell("x", outputs=[new_output("display_data", data={"text/html": f"<b>{SECRET}</b>"})]),
            "configured secret",
        ),
        (
            new_code_cell(
                "x",
                outputs=[
                    new_output("execute_result", data={"application/json": {"k": SECRET}}, execution_count=1)
                ],
            ),
            "configured secret",
        ),
        (
            new_code_cell(
                "x",
                outputs=[
                    new_output("error", ename="E", evalue="e", traceback=[f"\x1b[31mpw\x1b[0m {SECRET}"])
                ],
            ),
            "configured secret",
        ),
        (new_code_cell('engine = "postgresql://pay:hunter2@db:5432/pay"'), "password inside a URL"),
        (
            new_code_cell(
                "x", outputs=[new_output("stream", text="Authorization: Bearer eyJhbGciOiJIUzI1NiJ9xx\n")]
            ),
            "bearer",
        ),
        (new_code_cell("x", outputs=[new_output("stream", text="AKIAIOSFODNN7EXAMPLE\n")]), "AWS access key"),
        (new_code_cell('DB_PASSWORD = "changeme"'), "password assignment"),
        (new_code_cell("x", metadata={"note": SECRET}), "configured secret"),
    ],
)
def test_scan_finds_secrets_everywhere(cell, kind: str) -> None:  # type: ignore[no-untyped-def]
    nb = notebook(new_code_cell("ok"), cell)
    leaks = scan_notebook(nb, [SECRET])
    assert leaks and all(leak.cell_index == 1 for leak in leaks)
    assert any(kind in leak.kind for leak in leaks)
    with pytest.raises(SecretLeak, match="cell 1") as info:
        check_notebook(nb, [SECRET])
    assert SECRET not in str(info.value) and "hunter2" not in str(info.value)


def test_masked_urls_and_binary_images_are_not_leaks() -> None:
    nb = notebook(
        new_code_cell(
            "print(engine.url)", outputs=[new_output("stream", text="postgresql://pay:***@db/pay\n")]
        ),
        new_code_cell(
            "plot()", outputs=[new_output("display_data", data={"image/png": "QUtJQUlPU0ZPRE5ON0VYQU1QTEU="})]
        ),
    )
    assert scan_notebook(nb, [SECRET]) == []


def test_notebook_metadata_is_scanned_and_redaction_rewrites_both_copies() -> None:
    injected = new_code_cell("name = 'Jane Doe'\n", metadata={"tags": [INJECTED_TAG]})
    nb = notebook(new_code_cell("name: str = ''", metadata={"tags": ["parameters"]}), injected)
    assert any(
        leak.kind == "the value of a redacted parameter" for leak in scan_notebook(nb, [], ["Jane Doe"])
    )
    redact_notebook(nb, {"name": "***"}, header="redacted", input_path="nb.ipynb")
    assert nb.cells[1].source == "# redacted\nname = '***'\n"
    assert nb.metadata.papermill["parameters"] == {"name": "***"}
    assert nb.metadata.papermill["input_path"] == "nb.ipynb"
    assert scan_notebook(nb, [], ["Jane Doe"]) == []
    nb.metadata["leaky"] = SECRET
    assert [leak.cell_index for leak in scan_notebook(nb, [SECRET])] == [None]
