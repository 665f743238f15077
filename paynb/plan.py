"""Data-fix plans: read-only ``plan(...) -> Plan``, then ``apply(plan, confirm=<sha256>)``.

A plan is canonical JSON with a schema version. Its sha256 covers everything the apply step will do,
so the apply re-plans and refuses if the fresh plan's hash differs from the confirmed one.

A plan file (:meth:`Plan.write`, 0600) also stores that sha256 next to the body, so an apply tells
"the plan file was edited" (:class:`PlanEditedError`: the body no longer hashes to the stored sha256)
from "the data changed" (:class:`StalePlanError`: re-planning now gives another plan).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paynb.canonical import canonical_json, sha256_hex
from paynb.errors import ConfirmMismatch, InputError, PlanEditedError, StalePlanError
from paynb.files import write_private

PLAN_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Plan:
    """What a data fix would do. ``body`` holds the exact changes; ``kind`` names the fix."""

    kind: str
    body: dict[str, Any]
    summary: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)
    schema_version: int = PLAN_SCHEMA_VERSION
    #: the sha256 stored in the plan file it was read from (None for a plan made in this process)
    stored_sha256: str | None = field(default=None, compare=False, repr=False)
    #: the file it was read from, for error messages
    source: str | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "kind": self.kind,
            "summary": self.summary,
            "warnings": list(self.warnings),
            "body": self.body,
        }

    def to_json(self) -> str:
        return canonical_json(self.to_dict())

    @property
    def sha256(self) -> str:
        return sha256_hex(self.to_json())

    def write(self, path: str | Path) -> Path:
        """Write the plan and its sha256 as a 0600 file (it can name accounts and amounts); InputError if
        that fails. The folder is the operator's (``--out``): left as it is."""
        path = Path(path)
        data = {**json.loads(self.to_json()), "sha256": self.sha256}
        try:
            return write_private(path, json.dumps(data, indent=2, sort_keys=True) + "\n", own_folder=False)
        except OSError as err:
            raise InputError(
                f"cannot write the plan file: {err.strerror or type(err).__name__}",
                file=str(path),
                hint="write it into a folder you own, e.g. --out ./plan.json",
            ) from None

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "plan") -> Plan:
        version = data.get("schema_version")
        if version != PLAN_SCHEMA_VERSION:
            raise InputError(
                f"plan schema_version {version!r} is not supported (expected {PLAN_SCHEMA_VERSION})",
                field="schema_version",
                file=source,
            )
        for key in ("kind", "body"):
            if key not in data:
                raise InputError("required key is missing", field=key, file=source)
        stored = data.get("sha256")
        return cls(
            kind=data["kind"],
            body=data["body"],
            summary=data.get("summary", ""),
            warnings=tuple(data.get("warnings", ())),
            stored_sha256=stored if isinstance(stored, str) else None,
            source=source,
        )

    @classmethod
    def read(cls, path: str | Path) -> Plan:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise InputError("plan file not found", file=str(path)) from None
        except json.JSONDecodeError as err:
            raise InputError(f"not valid JSON ({err.msg})", file=str(path), line=err.lineno) from None
        return cls.from_dict(data, source=str(path))


def shown_pair(a: str, b: str, *, at_least: int = 16) -> tuple[str, str]:
    """Both hashes cut where a reader can see them differ: 16 hex characters, or up to 4 past the
    first difference."""
    first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    n = max(at_least, first + 4)
    return (a[:n] + ("…" if len(a) > n else ""), b[:n] + ("…" if len(b) > n else ""))


def check_unedited(plan: Plan) -> None:
    """Refuse a plan read from a file whose body no longer hashes to the sha256 stored with it."""
    if plan.stored_sha256 is not None and plan.stored_sha256 != plan.sha256:
        stored, now = shown_pair(plan.stored_sha256, plan.sha256)
        where = plan.source or "the plan file"
        raise PlanEditedError(
            f"{where} was edited after it was made: it was saved as {stored} but its content now hashes "
            f"to {now}; nothing was applied"
        )


def check_confirm(plan: Plan, confirm: str | None) -> None:
    """Refuse an edited plan file, then anything but ``confirm`` == the plan's sha256."""
    check_unedited(plan)
    if not confirm:
        raise ConfirmMismatch(f"apply needs --confirm <sha256>; this plan's sha256 is {plan.sha256}")
    given = confirm.strip().lower()
    if given != plan.sha256:
        shown, wanted = shown_pair(given, plan.sha256)
        raise ConfirmMismatch(
            f"confirm {shown} does not match the plan's sha256 {wanted}; nothing was applied"
        )


def check_fresh(confirmed: Plan, fresh: Plan) -> None:
    """Refuse when re-planning now gives a different plan than the one confirmed ("the data changed")."""
    if fresh.sha256 != confirmed.sha256:
        before, now = shown_pair(confirmed.sha256, fresh.sha256)
        keys = sorted(set(confirmed.body) | set(fresh.body))
        changed = [k for k in keys if confirmed.body.get(k) != fresh.body.get(k)]
        if confirmed.summary != fresh.summary:
            changed.insert(0, "summary")
        what = f" (differs in: {', '.join(changed[:8])})" if changed else ""
        raise StalePlanError(
            f"the data changed since the plan was made: re-planning now gives {now}, the confirmed plan is "
            f"{before}{what}; nothing was applied"
        )
