"""Redaction and the secret scan: the last gate before a notebook leaves the machine.

1. :func:`redact_notebook` rewrites the two places papermill-style runs keep parameter values — the
   ``injected-parameters`` cell and ``metadata.papermill.parameters`` — from the redacted values.
2. :func:`scan_notebook` then reads every cell source, output (text, HTML, JSON, SVG, error
   tracebacks) and all metadata for the configured secret values and for credential patterns (bearer
   tokens, passwords in URLs, AWS keys, private keys, password assignments). Binary images are skipped.
3. :func:`check_notebook` raises SecretLeak naming the cells, never the secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import nbformat

from paynb.canonical import to_jsonable
from paynb.errors import SecretLeak
from paynb.jobs.params import INJECTED_TAG, render_parameters_source
from paynb.jobs.patterns import iter_findings

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_BINARY_MIME = re.compile(r"^(image/(png|jpeg|gif|webp|bmp)|application/(pdf|octet-stream))$")


@dataclass(frozen=True)
class Leak:
    cell_index: int | None  # None: notebook-level metadata
    where: str  # "source", "output 2 (text/html)", "metadata", ...
    kind: str  # what it looked like, never what it was

    def describe(self) -> str:
        cell = "notebook metadata" if self.cell_index is None else f"cell {self.cell_index}"
        return f"{cell} {self.where}: {self.kind}"


def redact_notebook(
    nb: nbformat.NotebookNode, values: Mapping[str, Any], *, header: str, input_path: str = "notebook"
) -> None:
    """Replace the injected-parameters cell source and ``metadata.papermill.parameters`` (in place).
    ``metadata.papermill.input_path`` becomes ``input_path``: when papermill is handed a notebook
    object instead of a path it stores the whole (unredacted) notebook there."""
    for cell in nb.cells:
        if INJECTED_TAG in cell.get("metadata", {}).get("tags", []):
            cell.source = render_parameters_source(values, header=header)
    papermill = nb.metadata.get("papermill")
    if isinstance(papermill, dict):
        papermill["parameters"] = to_jsonable(dict(values))
        papermill["input_path"] = input_path
        papermill["output_path"] = None
        papermill.pop("default_parameters", None)
        papermill["environment_variables"] = {}


def scan_text(text: str, secret_values: Iterable[str], hidden: Iterable[str] = ()) -> list[str]:
    """Kinds of secret material in ``text``. ``hidden``: values of parameters marked for redaction."""
    text = _ANSI.sub("", text)
    found = list(iter_findings(text, secret_values))
    if any(h in text for h in hidden):
        found.append("the value of a redacted parameter")
    return list(dict.fromkeys(found))


def scan_notebook(
    nb: nbformat.NotebookNode, secret_values: Iterable[str], hidden: Iterable[str] = ()
) -> list[Leak]:
    secrets = [s for s in secret_values if s]
    hidden = [h for h in hidden if h]
    leaks: list[Leak] = []

    def check(cell_index: int | None, where: str, value: Any) -> None:
        text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
        for kind in scan_text(text, secrets, hidden):
            leaks.append(Leak(cell_index, where, kind))

    check(None, "metadata", dict(nb.metadata))
    for index, cell in enumerate(nb.cells):
        check(index, "source", cell.get("source", ""))
        check(index, "metadata", dict(cell.get("metadata", {})))
        for n, output in enumerate(cell.get("outputs", [])):
            kind = output.get("output_type")
            if kind == "stream":
                check(index, f"output {n} ({output.get('name', 'stream')})", output.get("text", ""))
            elif kind == "error":
                check(index, f"output {n} (error)", [output.get("ename", ""), output.get("evalue", "")])
                check(index, f"output {n} (traceback)", "\n".join(output.get("traceback", [])))
            else:
                for mime, data in output.get("data", {}).items():
                    if not _BINARY_MIME.match(mime):
                        check(index, f"output {n} ({mime})", data)
                if output.get("metadata"):
                    check(index, f"output {n} (metadata)", dict(output["metadata"]))
        for name, attachment in (cell.get("attachments") or {}).items():
            for mime, data in attachment.items():
                if not _BINARY_MIME.match(mime):
                    check(index, f"attachment {name} ({mime})", data)
    return leaks


def leak_message(leaks: list[Leak]) -> str:
    cells = sorted({leak.cell_index for leak in leaks}, key=lambda c: -1 if c is None else c)
    names = ", ".join("notebook metadata" if c is None else f"cell {c}" for c in cells)
    shown = "; ".join(leak.describe() for leak in leaks[:5])
    more = f"; and {len(leaks) - 5} more" if len(leaks) > 5 else ""
    return f"secret material found in {names} ({shown}{more})"


def check_notebook(nb: nbformat.NotebookNode, secret_values: Iterable[str]) -> None:
    leaks = scan_notebook(nb, secret_values)
    if leaks:
        raise SecretLeak(
            leak_message(leaks) + "; nothing was archived and the executed notebook was discarded",
            hint="never print or display credentials; read them with paynb settings and pass the Secret object",
        )
