"""The EJV flow-through key: how a FEEDBACK/INBOX detail line points back to pay-db rows.

Forms (docs/files.md#flow-through):

==============================  ===================================================================
``1111``                        invoice (gov-account payment line, legacy partner disbursement)
``1111-2222``                   invoice + ``partner_disbursements.id``
``1111-2222-PR``                partial refund through a partner disbursement (its ``target_id``)
``1111-PR-3333``                invoice + ``refunds_partial.id`` (gov-account partial refund)
``1111-PR``                     partial refund with no id (accepted because sbc-pay accepts it)
==============================  ===================================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from paynb.errors import ParseError

_FORM = re.compile(
    r"(?P<invoice>[0-9]{1,18})"
    r"(?:-PR-(?P<refund>[0-9]{1,18})|-(?P<disbursement>[0-9]{1,18})(?P<pd_pr>-PR)?|(?P<bare_pr>-PR))?\Z"
)


@dataclass(frozen=True, slots=True)
class Flowthrough:
    text: str
    invoice_id: int
    partner_disbursement_id: int | None = None
    refunds_partial_id: int | None = None
    is_partial_refund: bool = False

    @property
    def form(self) -> str:
        """Which of the documented shapes this is (for reports)."""
        if self.refunds_partial_id is not None:
            return "invoice-PR-refund"
        if self.partner_disbursement_id is not None:
            return "invoice-disbursement-PR" if self.is_partial_refund else "invoice-disbursement"
        return "invoice-PR" if self.is_partial_refund else "invoice"


def parse_flowthrough(text: str, *, file: str | None = None, line: int | None = None) -> Flowthrough:
    """Decode a flow-through (already stripped of padding). Anything else is a ``ParseError``.

    >>> parse_flowthrough("1002-PR-7").refunds_partial_id
    7
    """
    match = _FORM.match(text)
    if match is None:
        raise ParseError(
            f"not a flow-through (<invoice>, <invoice>-<disbursement>[-PR], <invoice>-PR-<refund>): {text[:120]!r}",
            file=file,
            line=line,
            field="flowthrough",
        )
    disbursement = match["disbursement"]
    refund = match["refund"]
    return Flowthrough(
        text=text,
        invoice_id=int(match["invoice"]),
        partner_disbursement_id=int(disbursement) if disbursement is not None else None,
        refunds_partial_id=int(refund) if refund is not None else None,
        is_partial_refund=bool(refund is not None or match["pd_pr"] or match["bare_pr"]),
    )


def format_flowthrough(
    invoice_id: int,
    *,
    partner_disbursement_id: int | None = None,
    refunds_partial_id: int | None = None,
    is_partial_refund: bool = False,
) -> str:
    """The flow-through text sbc-pay writes for these ids (inverse of :func:`parse_flowthrough`)."""
    if refunds_partial_id is not None:
        if partner_disbursement_id is not None:
            raise ValueError(
                "a flow-through carries a partner disbursement id or a refunds_partial id, not both"
            )
        return f"{invoice_id}-PR-{refunds_partial_id}"
    text = str(invoice_id)
    if partner_disbursement_id is not None:
        text += f"-{partner_disbursement_id}"
    if is_partial_refund:
        text += "-PR"
    return text
