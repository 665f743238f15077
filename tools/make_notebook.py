"""Write a stripped notebook from a compact Python description (used to author notebooks/ and templates/).

Usage: python tools/make_notebook.py SPEC.py OUT.ipynb
The spec module defines CELLS = [("markdown"|"code"|"parameters", source), ...].
"""

from __future__ import annotations

import runpy
import sys

import nbformat


def build(cells: list[tuple[str, str]], kind: str = "report") -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    if (
        kind != "report"
    ):  # a data fix's kernel is the only one that gets the writer URL (paynb/jobs/kernel_env.py)
        nb.metadata["paynb"] = {"kind": kind}
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for kind, source in cells:
        source = source.strip("\n")
        if kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
        else:
            cell = nbformat.v4.new_code_cell(source)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    return nb


def main(argv: list[str]) -> int:
    spec, out = argv
    found = runpy.run_path(spec)
    nb = build(found["CELLS"], found.get("KIND", "report"))
    nbformat.write(nb, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
