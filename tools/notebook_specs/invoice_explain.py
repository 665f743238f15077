CELLS = [
    (
        "markdown",
        """
# What happened to this invoice?

Give an invoice's pay-db id, its REG number or its CFS number. paynb reads pay-db (read-only), CFS (GETs
only) and the pay bucket's FEEDBACK/INBOX files and settlement CSVs, then shows a **diagnosis** with the
exact paynb command to run next, the evidence, and a **timeline** of every date with what it means.

`payment_date` and `refund_date` are when pay-db *heard* of the money (a CSV, a FEEDBACK file), not when
the money moved.
""",
    ),
    (
        "parameters",
        """
invoice: str = ""
use_cfs: bool = True
use_files: bool = True
""",
    ),
    (
        "code",
        """
from IPython.display import HTML, display

from paynb.ops.invoice import explain_invoices
from paynb.ops.invoice.view import diagnosis_lines, headline, plot_timeline, section_frames, timeline_frame
""",
    ),
    (
        "markdown",
        """
## Pick the invoice

In JupyterLab, type an id in the box and press **Explain**. Headless (`paynb run … -p invoice 12345`) the
parameter is used.
""",
    ),
    (
        "code",
        """
import ipywidgets as widgets

box = widgets.Text(value=invoice, description="invoice", placeholder="12345 or REG00012345")
button = widgets.Button(description="Explain")
out = widgets.Output()


def render(value):
    if not value.strip():
        print("Type an invoice id, REG number or CFS number.")
        return
    report = explain_invoices([value], use_cfs=use_cfs, use_files=use_files)
    for e in report.explanations:
        print(headline(e))
        print("\\n".join(diagnosis_lines(e)))
        for name, frame in section_frames(e).items():
            display(HTML(f"<h4>{name}</h4>"), frame)
        display(timeline_frame(e))
        plot_timeline(e)
    if report.unknown:
        print("not found in pay-db:", ", ".join(report.unknown))


def on_click(_):
    out.clear_output()
    with out:
        render(box.value)


button.on_click(on_click)
display(widgets.HBox([box, button]), out)
if invoice:
    render(invoice)  # headless runs show the parameter's invoice in the cell itself
""",
    ),
    (
        "markdown",
        """
## What to do next

Each diagnosis line names a runbook situation and the command for it. Data-fix commands print a plan and
its sha256 first; nothing changes until you apply that plan with `--confirm`. "No trouble found" means
pay-db, CFS and the files agree.
""",
    ),
]
