"""Data-fix plans: read-only ``plan(...) -> Plan``, then ``apply(plan, confirm=<sha256>)``.

A plan is canonical JSON with a schema version. Its sha256 covers everything the apply step will do,
so the apply re-plans and refuses if the fresh plan's hash differs from the confirmed one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paynb.canonical import canonical_json, sha256_hex
from paynb.errors import ConfirmMismatch, InputError, StalePlanError

PLAN_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Plan:
    """What a data fix would do. ``body`` holds the exact changes; ``kind`` names the fix."""

    kind: str
    body: dict[str, Any]
    summary: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)
    schema_version: int = PLAN_SCHEMA_VERSION

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
        """Write the plan as a 0600 file (it names invoices and amounts); InputError if that fails."""
        from paynb.files import write_private

        path = Path(path)
        text = json.dumps(json.loads(self.to_json()), indent=2, sort_keys=True) + "\n"
        try:
            return write_private(path, text, own_folder=False)
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
        return cls(
            kind=data["kind"],
            body=data["body"],
            summary=data.get("summary", ""),
            warnings=tuple(data.get("warnings", ())),
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


def check_confirm(plan: Plan, confirm: str | None) -> None:
    """Refuse unless ``confirm`` is exactly the plan's sha256."""
    if not confirm:
        raise ConfirmMismatch("apply needs --confirm <sha256> from the reviewed plan")
    if confirm.strip().lower() != plan.sha256:
        raise ConfirmMismatch(f"confirm hash {confirm[:12]}… does not match the plan ({plan.sha256[:12]}…)")


def check_fresh(confirmed: Plan, fresh: Plan) -> None:
    """Refuse when re-planning now gives a different plan than the one confirmed."""
    if fresh.sha256 != confirmed.sha256:
        raise StalePlanError(
            f"the data changed since the plan was made ({confirmed.sha256[:12]}… is now {fresh.sha256[:12]}…)"
        )
