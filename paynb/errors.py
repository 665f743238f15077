"""The one exception tree of paynb.

Every error says what went wrong and what to do next. Messages never carry secret values:
callers pass names (of settings, parameters, files), never the values behind them.
"""

from __future__ import annotations


class PaynbError(Exception):
    """Root of every error paynb raises on purpose."""

    #: short hint printed after the message by the CLI
    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base}\n  -> {self.hint}" if self.hint else base


class ConfigError(PaynbError):
    """A setting is missing or malformed."""

    hint = "set it in the environment or in a .env file (see `paynb doctor`)"


class InputError(PaynbError):
    """A user-supplied value (CLI option, parameter, file line) is invalid. Nothing was written."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        file: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        where = []
        if file:
            where.append(f"{file}:{line}" if line is not None else file)
        if field:
            where.append(f"field {field!r}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(prefix + message, hint=hint)
        self.field = field
        self.file = file
        self.line = line


class ParseError(InputError):
    """A data file (FEEDBACK, INBOX, CSV) has a malformed line."""


class DatabaseError(PaynbError):
    """pay-db could not be reached or refused a statement."""

    hint = "check PAYNB_DATABASE_URL (or the DATABASE_*/PAY_*/PG_* aliases) and run `paynb doctor`"


class ReadOnlyViolation(DatabaseError):
    """A write was attempted on a read-only connection."""

    hint = "data changes go through paynb.db.write_transaction(), behind a plan and a confirm hash"


class SandboxError(PaynbError):
    """The embedded sandbox could not be started, stopped or inspected."""


class CfsError(PaynbError):
    """CAS/CFS answered with an error, or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class StoreError(PaynbError):
    """The object store (local folder, S3/MinIO) failed."""


class PlanError(PaynbError):
    """A data-fix plan is invalid, stale, or its confirmation does not match."""


class StalePlanError(PlanError):
    """The data changed between planning and apply."""

    hint = "re-run the plan, review it again, and confirm the new sha256"


class ConfirmMismatch(PlanError):
    """The confirm hash given is not the plan's sha256."""

    hint = "pass --confirm with the sha256 printed by the plan step"


class PlanEditedError(PlanError):
    """The plan file's body no longer hashes to the sha256 stored with it: someone edited the file."""

    hint = "make a new plan with the plan command; never edit a plan file by hand"


class AfterCommitError(PaynbError):
    """An apply failed after some of its changes were committed; the message says what was committed."""


class JobError(PaynbError):
    """A notebook job failed (cell error, dead kernel, timeout) or could not be archived."""


class SecretLeak(JobError):
    """A secret pattern was found in a notebook or record that was about to leave the machine."""


class AuditError(PaynbError):
    """An archived run failed verification."""


class WarehouseError(DatabaseError):
    """The data warehouse could not be reached, or lacks a table or column a reconciliation reads."""

    hint = "check PAYNB_DW_URL (docs/reconciliation.md) and the warehouse column settings PAYNB_DW_CAS_*"
