"""Running a repository notebook headless in a test, and reading what it showed."""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill

from paynb.jobs.engine import ENGINE_NAME, kernel_manager_class

ROOT = Path(__file__).resolve().parents[1]


CELL_TIMEOUT_S = 180  # a stuck cell fails the test with papermill's timeout instead of hanging it
KERNEL_START_TIMEOUT_S = 120


def run_headless(path: Path, out: Path, **parameters: object) -> nbformat.NotebookNode:
    """Execute with papermill in the environment's ``python3`` kernel, from the repository root, through
    paynb's engine and kernel client (whose sliced waits survive widget cells; paynb.jobs.engine)."""
    km_class, _ = kernel_manager_class({}, "python3")
    papermill.execute_notebook(
        str(path),
        str(out),
        parameters=parameters,
        kernel_name="python3",
        progress_bar=False,
        cwd=str(ROOT),
        execution_timeout=CELL_TIMEOUT_S,
        start_timeout=KERNEL_START_TIMEOUT_S,
        engine_name=ENGINE_NAME,
        kernel_manager_class=km_class,
    )
    return nbformat.read(out, as_version=4)


def text_of(nb: nbformat.NotebookNode, *, html: bool = False) -> str:
    """Every stream, plain-text and Markdown output (and HTML with ``html=True``), joined."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            data = output.get("data", {})
            parts += [data.get("text/plain", ""), data.get("text/markdown", "")]
            if html:
                parts.append(data.get("text/html", ""))
    return "\n".join(parts)
