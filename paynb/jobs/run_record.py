"""The run record: a versioned JSON document (``run_record.schema.json``) checked on write and on read.

Two stages share one schema. The *execution* record is what is known when the kernel stops; it goes
into the output notebook as ``metadata.paynb``. The *complete* record adds what depends on the finished
notebook bytes and on the ledger (``output``, ``archive``, ``idempotency_duplicate_of``,
``previous_record_hash``); it is stored as ``record.json`` and in the ledger. Its canonical JSON is the
``record.json`` object byte for byte, so ``sha256(record.json) == record_hash`` in the ledger.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from paynb.canonical import canonical_json, canonical_sha256
from paynb.errors import JobError

SCHEMA_VERSION = 1
SCHEMA_FILE = "run_record.schema.json"
COMPLETE_FIELDS = ("output", "archive", "idempotency_duplicate_of", "previous_record_hash")


@functools.lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(resources.files("paynb.jobs").joinpath(SCHEMA_FILE).read_text("utf-8"))


@functools.lru_cache(maxsize=2)
def _validator(complete: bool):  # type: ignore[no-untyped-def]
    from jsonschema import Draft202012Validator

    doc = schema()
    if complete:
        doc = {**doc, "required": doc["required"] + list(COMPLETE_FIELDS)}
    return Draft202012Validator(doc, format_checker=Draft202012Validator.FORMAT_CHECKER)


def validate_record(record: dict[str, Any], *, complete: bool = True) -> dict[str, Any]:
    """Raise JobError naming the first field that breaks the schema (never the value in it)."""
    version = record.get("schema_version") if isinstance(record, dict) else None
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise JobError(
            f"run record schema version {version} is newer than this paynb understands; upgrade paynb"
        )
    errors = sorted(_validator(complete).iter_errors(record), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise JobError(
            f"run record field {where} breaks schema v{SCHEMA_VERSION}: {first.validator} check{more}"
        )
    return record


def record_bytes(record: dict[str, Any]) -> bytes:
    return canonical_json(record).encode("utf-8")


def record_hash(record: dict[str, Any]) -> str:
    return canonical_sha256(record)


def read_record(data: bytes | str) -> dict[str, Any]:
    """Parse and validate a complete record (e.g. a ``record.json`` fetched from the archive)."""
    try:
        record = json.loads(data)
    except ValueError:
        raise JobError("the run record is not valid JSON") from None
    return validate_record(record, complete=True)


def execution_part(record: dict[str, Any]) -> dict[str, Any]:
    """The record without the fields that depend on the finished notebook or on the ledger."""
    return {k: v for k, v in record.items() if k not in COMPLETE_FIELDS}
