"""Status and method codes of pay-db. Values equal the seeded code tables exactly
(tests compare them with ``paynb/sandbox/code_tables/*.csv``)."""

from __future__ import annotations

from enum import StrEnum


class InvoiceStatus(StrEnum):
    APPROVED = "APPROVED"
    CANCELLED = "CANCELLED"
    CHARGEBACK = "CHARGEBACK"
    CREATED = "CREATED"
    CREDITED = "CREDITED"
    DELETED = "DELETED"
    DELETE_ACCEPTED = "DELETE_ACCEPTED"
    GL_UPDATED = "GL_UPDATED"
    GL_UPDATED_REFUND = "GL_UPDATED_REFUND"
    MANUALLY_REFUNDED = "MANUALLY_REFUNDED"
    OVERDUE = "OVERDUE"
    PAID = "PAID"
    PARTIAL_PAID = "PARTIAL_PAID"
    REFUNDED = "REFUNDED"
    REFUND_REQUESTED = "REFUND_REQUESTED"
    SETTLEMENT_SCHED = "SETTLEMENT_SCHED"

    @classmethod
    def full_refund_statuses(cls) -> frozenset[InvoiceStatus]:
        return frozenset({cls.REFUNDED, cls.CREDITED, cls.MANUALLY_REFUNDED})


class PaymentMethod(StrEnum):
    CASH = "CASH"
    CC = "CC"
    CHEQUE = "CHEQUE"
    DIRECT_PAY = "DIRECT_PAY"
    DRAWDOWN = "DRAWDOWN"  # BC Online; there is no "BCOL" payment method
    EFT = "EFT"
    EJV = "EJV"
    INTERNAL = "INTERNAL"  # routing slip
    ONLINE_BANKING = "ONLINE_BANKING"
    PAD = "PAD"
    WIRE = "WIRE"


# payment_methods.partial_refund / full_refund_statuses, as seeded
PARTIAL_REFUND_ALLOWED: dict[PaymentMethod, bool] = {
    PaymentMethod.CASH: False,
    PaymentMethod.CC: False,
    PaymentMethod.CHEQUE: False,
    PaymentMethod.DIRECT_PAY: True,
    PaymentMethod.DRAWDOWN: False,
    PaymentMethod.EFT: True,
    PaymentMethod.EJV: True,
    PaymentMethod.INTERNAL: False,
    PaymentMethod.ONLINE_BANKING: True,
    PaymentMethod.PAD: True,
    PaymentMethod.WIRE: False,
}
REFUNDABLE_STATUSES: dict[PaymentMethod, frozenset[InvoiceStatus]] = {
    PaymentMethod.DIRECT_PAY: frozenset({InvoiceStatus.PAID}),
    PaymentMethod.DRAWDOWN: frozenset({InvoiceStatus.PAID}),
    PaymentMethod.EFT: frozenset({InvoiceStatus.APPROVED, InvoiceStatus.PAID}),
    PaymentMethod.EJV: frozenset({InvoiceStatus.APPROVED, InvoiceStatus.PAID}),
    PaymentMethod.INTERNAL: frozenset({InvoiceStatus.PAID}),
    PaymentMethod.ONLINE_BANKING: frozenset({InvoiceStatus.PAID}),
    PaymentMethod.PAD: frozenset({InvoiceStatus.APPROVED, InvoiceStatus.PAID}),
}


class DisbursementStatus(StrEnum):
    """``disbursement_status_codes``. CANCELLED/WAITING_FOR_JOB live only in partner_disbursements."""

    ACKNOWLEDGED = "ACKNOWLEDGED"
    COMPLETED = "COMPLETED"
    ERRORED = "ERRORED"
    REVERSED = "REVERSED"
    UPLOADED = "UPLOADED"


class PartnerDisbursementStatus(StrEnum):
    """``partner_disbursements.status_code`` (no FK)."""

    WAITING_FOR_JOB = "WAITING_FOR_JOB"
    UPLOADED = "UPLOADED"
    COMPLETED = "COMPLETED"
    ERRORED = "ERRORED"
    REVERSED = "REVERSED"
    CANCELLED = "CANCELLED"


class CfsAccountStatus(StrEnum):
    ACTIVE = "ACTIVE"
    FREEZE = "FREEZE"
    INACTIVE = "INACTIVE"
    PENDING = "PENDING"
    PENDING_PAD_ACTIVATION = "PENDING_PAD_ACTIVATION"


class InvoiceReferenceStatus(StrEnum):
    ACTIVE = "ACTIVE"
    CANCELLED = "CANCELLED"
    COMPLETED = "COMPLETED"


class RoutingSlipStatus(StrEnum):
    ACTIVE = "ACTIVE"
    COMPLETE = "COMPLETE"
    CORRECTION = "CORRECTION"
    HOLD = "HOLD"
    LAST = "LAST"
    LINKED = "LINKED"
    NSF = "NSF"
    REFUND_AUTHORIZED = "REFUND_AUTHORIZED"
    REFUND_PROCESSED = "REFUND_PROCESSED"
    REFUND_REJECTED = "REFUND_REJECTED"
    REFUND_REQUESTED = "REFUND_REQUESTED"
    REFUND_UPLOADED = "REFUND_UPLOADED"
    VOID = "VOID"
    WRITE_OFF_AUTHORIZED = "WRITE_OFF_AUTHORIZED"
    WRITE_OFF_COMPLETED = "WRITE_OFF_COMPLETED"
    WRITE_OFF_REQUESTED = "WRITE_OFF_REQUESTED"


class PaymentStatus(StrEnum):
    COMPLETED = "COMPLETED"
    CREATED = "CREATED"
    DELETED = "DELETED"
    DELETE_ACCEPTED = "DELETE_ACCEPTED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"


class PaymentSystem(StrEnum):
    BCOL = "BCOL"
    CGI = "CGI"
    FAS = "FAS"
    INTERNAL = "INTERNAL"
    PAYBC = "PAYBC"


class LineItemStatus(StrEnum):
    ACTIVE = "ACTIVE"
    CANCELLED = "CANCELLED"


class NotificationStatus(StrEnum):
    FAILED = "FAILED"
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    SKIP = "SKIP"
    SUCCESS = "SUCCESS"


class StatementFrequency(StrEnum):
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"


class RefundsPartialType(StrEnum):
    BASE_FEES = "BASE_FEES"
    FUTURE_EFFECTIVE_FEES = "FUTURE_EFFECTIVE_FEES"
    PRIORITY_FEES = "PRIORITY_FEES"
    SERVICE_FEES = "SERVICE_FEES"


class RefundsPartialStatus(StrEnum):
    REFUND_REQUESTED = "REFUND_REQUESTED"
    REFUND_PROCESSING = "REFUND_PROCESSING"
    REFUND_PROCESSED = "REFUND_PROCESSED"
    REFUND_DECLINED = "REFUND_DECLINED"


class EjvFileType(StrEnum):
    PAYMENT = "PAYMENT"
    DISBURSEMENT = "DISBURSEMENT"
    REFUND = "REFUND"
    EFT_REFUND = "EFT_REFUND"
    NON_GOV_DISBURSEMENT = "NON_GOV_DISBURSEMENT"
    TRANSFER = "TRANSFER"


class EjvLinkType(StrEnum):
    INVOICE = "invoice"
    PARTIAL_REFUND = "partial_refund"
