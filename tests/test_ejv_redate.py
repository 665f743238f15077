"""INBOX re-dating: the plan changes only the name and the effective dates, refuses when FEEDBACK exists, a
file is still waiting or a copy of the batch is already out (#10's double send), moves past name
collisions, and apply uploads once (a re-run, or a resumed killed apply, changes nothing)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from paynb.errors import ConfirmMismatch, InputError, PlanError
from paynb.formats.feedback import render_feedback
from paynb.formats.inbox import parse_inbox
from paynb.ops.ejv.redate import apply_redate, default_redate_date, plan_redate
from paynb.ops.ejv.search import search_feedback
from paynb.plan import Plan
from paynb.timez import utc_today
from tests.fix_ledger import LedgerView
from tests.test_ejv_support import EjvSandbox, execute, make_ejv_sandbox, query, scenario


@pytest.fixture
def ejv(
    sandbox_db_url: str, s3_server, gcs_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> EjvSandbox:
    """The pay bucket on GCS (as in production since 2025-08), the legacy cgi-ejv bucket on S3."""
    return make_ejv_sandbox(sandbox_db_url, s3_server, tmp_path, monkeypatch, gcs_server)


@pytest.fixture
def ejv_s3(sandbox_db_url: str, s3_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EjvSandbox:
    """The older layout: the pay bucket on S3/MinIO named by PAYNB_BUCKET."""
    return make_ejv_sandbox(sandbox_db_url, s3_server, tmp_path, monkeypatch)


def _as_of(ejv: EjvSandbox) -> date:
    return date.fromisoformat(
        query(ejv.db_url, "SELECT value FROM paynb_sandbox.meta WHERE key = 'as_of'")[0][0]
    )


def _no_feedback_file(ejv: EjvSandbox) -> tuple[int, str]:
    (file_id,) = scenario(ejv.db_url, "ejv_no_feedback", "ejv_files")
    (file_ref,) = query(ejv.db_url, "SELECT file_ref FROM ejv_files WHERE id = :i", i=file_id)[0]
    return file_id, file_ref


def _plan(ejv: EjvSandbox, *names: str, **kw: object) -> Plan:
    return plan_redate(list(names), settings=ejv.settings, today=_as_of(ejv), **kw)  # type: ignore[arg-type]


def test_plan_changes_only_the_name_and_the_effective_dates(ejv: EjvSandbox) -> None:
    _file_id, file_ref = _no_feedback_file(ejv)
    source = ejv.objects[f"cgi_processed/{file_ref}"]
    day = default_redate_date(_as_of(ejv))
    plan = _plan(ejv, file_ref)  # a bare name is found under cgi_processed/

    (f,) = plan.body["files"]
    assert f["source"]["key"] == f"cgi_processed/{file_ref}"
    assert f["target"]["name"] == f"INBOX.F3505.{day:%Y%m%d}{file_ref[-6:]}"  # new day, same time of day
    assert f["target"]["key"] == f"cgi_processing/{f['target']['name']}"
    assert f["trigger"]["name"] == f["target"]["name"] + ".TRG" and f["trigger"]["size"] == 0
    old = parse_inbox(source)
    assert {c["field"] for c in f["diff"]} == {"effective_date"}
    assert [c["line"] for c in f["diff"]] == [r.line_number for r in old.details()]
    assert {(c["old"], c["new"]) for c in f["diff"]} == {
        (f"{d:%Y%m%d}", f"{day:%Y%m%d}") for d in old.effective_dates()
    }
    assert f["invoice_ids"] == scenario(ejv.db_url, "ejv_no_feedback", "invoices")
    assert plan.body["checks"]["feedback_records_found"] == 0
    assert _plan(ejv, f"cgi_processed/{file_ref}").sha256 == plan.sha256  # deterministic

    # byte level: only the 8 date characters of each JD line differ
    new = parse_inbox(source).records
    redated = apply_redate(plan, plan.sha256, settings=ejv.settings, today=_as_of(ejv))
    uploaded = ejv.store.get(f["target"]["key"])
    assert len(uploaded) == len(source)
    diff_at = [i for i, (a, b) in enumerate(zip(source, uploaded, strict=True)) if a != b]
    starts = {sum(len(r.raw.encode()) for r in new[: r.line_number - 1]) + 9 + 15 for r in old.details()}
    assert all(any(s <= i < s + 8 for s in starts) for i in diff_at)
    assert redated.uploaded == (f["target"]["key"], f["trigger"]["key"])


def test_apply_uploads_once_and_a_rerun_changes_nothing(ejv: EjvSandbox) -> None:
    _file_id, file_ref = _no_feedback_file(ejv)
    plan = _plan(ejv, f"cgi_processed/{file_ref}")
    (f,) = plan.body["files"]
    with pytest.raises(ConfirmMismatch):
        apply_redate(plan, "0" * 64, settings=ejv.settings, today=_as_of(ejv))
    assert ejv.store.stat(f["target"]["key"]) is None

    first = apply_redate(plan, plan.sha256, settings=ejv.settings, today=_as_of(ejv))
    assert first.uploaded == (f["target"]["key"], f["trigger"]["key"]) and first.already_present == ()
    assert ejv.store.get(f["trigger"]["key"]) == b""
    copy = parse_inbox(ejv.store.get(f["target"]["key"]))
    assert copy.effective_dates() == {date.fromisoformat(plan.body["new_date"])}
    assert copy.batch_numbers == tuple(f["batch_numbers"])

    # the uploaded copy does not change the plan; a second apply finds both objects with the same sha256
    assert _plan(ejv, f"cgi_processed/{file_ref}").sha256 == plan.sha256
    second = apply_redate(plan, plan.sha256, settings=ejv.settings, today=_as_of(ejv))
    assert second.uploaded == () and set(second.already_present) == {f["target"]["key"], f["trigger"]["key"]}
    assert "nothing to do" in second.message()

    # the copy is where the SFTP poller looks, and a search finds it there
    (invoice,) = f["invoice_ids"]
    found = search_feedback([invoice], settings=ejv.settings, progress=False)
    assert {(m.location, m.name) for m in found.for_invoice(invoice)} == {
        ("cgi_processed", file_ref),
        ("cgi_processing", f["target"]["name"]),
    }


def test_apply_refuses_a_different_object_at_the_key(ejv: EjvSandbox) -> None:
    _file_id, file_ref = _no_feedback_file(ejv)
    plan = _plan(ejv, f"cgi_processed/{file_ref}")
    (f,) = plan.body["files"]
    ejv.put(f["target"]["key"], b"someone else's file\n")
    with pytest.raises(PlanError, match="already exists with other content"):
        apply_redate(plan, plan.sha256, settings=ejv.settings, today=_as_of(ejv))
    assert ejv.store.stat(f["trigger"]["key"]) is None  # nothing was uploaded


def test_apply_refuses_when_the_data_changed_after_planning(ejv: EjvSandbox) -> None:
    file_id, file_ref = _no_feedback_file(ejv)
    plan = _plan(ejv, f"cgi_processed/{file_ref}")
    execute(
        ejv.db_url,
        "UPDATE ejv_files SET feedback_file_ref = 'FEEDBACK.F3505.20991231000000' WHERE id = :i",
        i=file_id,
    )
    with pytest.raises(PlanError, match="already processed FEEDBACK"):
        apply_redate(plan, plan.sha256, settings=ejv.settings, today=_as_of(ejv))


def test_plan_refuses_when_feedback_exists(ejv: EjvSandbox) -> None:
    # processed by pay-queue (ejv_files.feedback_file_ref set): the ERRORED scenario file
    (errored,) = scenario(ejv.db_url, "ejv_errored_stop_ejv", "ejv_files")
    (errored_ref,) = query(ejv.db_url, "SELECT file_ref FROM ejv_files WHERE id = :i", i=errored)[0]
    with pytest.raises(PlanError, match="already processed FEEDBACK"):
        _plan(ejv, errored_ref)

    # a FEEDBACK for the batch is in the bucket but was never processed: replay it rather than re-send
    _file_id, file_ref = _no_feedback_file(ejv)
    feedback = render_feedback(parse_inbox(ejv.objects[f"cgi_processed/{file_ref}"])).encode()
    ejv.put("cgi_feedback/FEEDBACK.F3505.20991231000000", feedback)
    with pytest.raises(PlanError, match="FEEDBACK for batch .* exists: FEEDBACK.F3505.20991231000000 line"):
        _plan(ejv, file_ref)


def test_plan_finds_feedback_in_the_legacy_bucket(ejv: EjvSandbox) -> None:
    legacy_inbox = sorted(k for k in ejv.objects if k.startswith("cgi-ejv/INBOX"))[0]
    name = legacy_inbox.split("/", 1)[1]
    execute(ejv.db_url, "UPDATE ejv_files SET feedback_file_ref = NULL WHERE file_ref = :n", n=name)
    with pytest.raises(PlanError, match="FEEDBACK for batch .* exists: FEEDBACK.F3505"):
        _plan(ejv, name)  # a bare name found in the legacy bucket; its FEEDBACK is there too


def test_plan_moves_past_name_collisions(ejv: EjvSandbox) -> None:
    _file_id, file_ref = _no_feedback_file(ejv)
    day = default_redate_date(_as_of(ejv))
    first = f"INBOX.F3505.{day:%Y%m%d}{file_ref[-6:]}"
    second = f"INBOX.F3505.{day:%Y%m%d}{int(file_ref[-6:]) + 1:06d}"
    execute(
        ejv.db_url,
        "INSERT INTO ejv_files (id, created_on, file_ref, file_type) VALUES (99999, now(), :n, 'PAYMENT')",
        n=first,
    )
    ejv.put(f"cgi_processed/{second}", b"already sent\n")
    plan = _plan(ejv, file_ref)
    (f,) = plan.body["files"]
    assert f["target"]["name"] == f"INBOX.F3505.{day:%Y%m%d}{int(file_ref[-6:]) + 2:06d}"
    assert "ejv_files.file_ref" in f["name_notes"][0] and "already sent" in f["name_notes"][1]


def test_plan_refuses_bad_input(ejv: EjvSandbox) -> None:
    _file_id, file_ref = _no_feedback_file(ejv)
    as_of = _as_of(ejv)
    with pytest.raises(InputError, match="in the past"):
        _plan(ejv, file_ref, new_date=as_of - timedelta(days=1))
    saturday = as_of + timedelta(days=(5 - as_of.weekday()) % 7 or 7)
    with pytest.raises(InputError, match="not a business day"):
        _plan(ejv, file_ref, new_date=saturday)
    with pytest.raises(InputError, match="no INBOX object found"):
        _plan(ejv, "INBOX.F3505.20000101000000")
    # still waiting for the SFTP poller: a copy would be sent next to it
    ejv.put(f"cgi_processing/{file_ref}", ejv.objects[f"cgi_processed/{file_ref}"])
    with pytest.raises(PlanError, match="still in cgi_processing"):
        _plan(ejv, f"cgi_processing/{file_ref}")


def test_cli_plan_then_apply(ejv: EjvSandbox, tmp_path: Path) -> None:
    from paynb.cli import cli

    _file_id, file_ref = _no_feedback_file(ejv)
    day = default_redate_date(utc_today())
    runner = CliRunner()
    out = tmp_path / "plan.json"
    planned = runner.invoke(
        cli,
        [
            "ejv",
            "redate",
            "plan",
            f"cgi_processed/{file_ref}",
            "--date",
            day.isoformat(),
            "--out",
            str(out),
            "--json",
        ],
    )
    assert planned.exit_code == 0, planned.output
    sha = json.loads(planned.output)["sha256"]
    assert Plan.read(out).sha256 == sha
    table = runner.invoke(cli, ["ejv", "redate", "plan", file_ref, "--date", day.isoformat()])
    assert table.exit_code == 0 and "effective_date" in table.output and f"--confirm {sha}" in table.output
    applied = runner.invoke(cli, ["ejv", "redate", "apply", "--plan", str(out), "--confirm", sha])
    assert applied.exit_code == 0, applied.output
    assert "uploaded 2 object(s)" in applied.output
    again = runner.invoke(cli, ["ejv", "redate", "apply", "--plan", str(out), "--confirm", sha])
    assert again.exit_code == 0 and "nothing to do" in again.output
    wrong = runner.invoke(cli, ["ejv", "redate", "apply", "--plan", str(out), "--confirm", "abc"])
    assert wrong.exit_code != 0


def _poller_moves(ejv: EjvSandbox, *names: str) -> None:
    """What the SFTP poller does once it sent a file: cgi_processing/<name> -> cgi_processed/<name>."""
    from minio.commonconfig import CopySource

    from tests.test_ejv_support import _client

    if ejv.gcs is not None:  # the pay bucket is on the GCS emulator
        bucket = ejv.gcs.bucket(ejv.bucket)
        for name in names:
            blob = bucket.blob(f"cgi_processing/{name}")
            bucket.copy_blob(blob, bucket, f"cgi_processed/{name}")
            blob.delete()
        return
    client = _client(ejv.settings)
    for name in names:
        client.copy_object(
            ejv.bucket, f"cgi_processed/{name}", CopySource(ejv.bucket, f"cgi_processing/{name}")
        )
        client.remove_object(ejv.bucket, f"cgi_processing/{name}")


def test_the_double_send_is_refused(ejv: EjvSandbox, fix_ledger: LedgerView) -> None:
    # #10: the first re-dated copy went out (the poller moved it to cgi_processed/), no FEEDBACK came yet;
    # a new plan used to take the next second and apply uploaded the same batch again, with only a WARNING
    _file_id, file_ref = _no_feedback_file(ejv)
    first = _plan(ejv, file_ref)
    (f,) = first.body["files"]
    apply_redate(first, first.sha256, settings=ejv.settings, today=_as_of(ejv), ticket="OPS-1")
    _poller_moves(ejv, f["target"]["name"], f["trigger"]["name"])

    with pytest.raises(PlanError, match=rf"already in cgi_processed/{f['target']['name']} .*Refusing"):
        _plan(ejv, file_ref)
    tomorrow = default_redate_date(_as_of(ejv) + timedelta(days=1))
    with pytest.raises(PlanError, match="no FEEDBACK has come"):
        _plan(ejv, file_ref, new_date=tomorrow)  # another date, another name: the same batch all the same
    with pytest.raises(InputError, match="needs --reason"):
        _plan(ejv, file_ref, resend_anyway=True)
    from paynb.cli import exits, main

    assert (
        main(["ejv", "redate", "plan", file_ref]) == exits.REFUSED
    )  # the CLI refuses too (docs/exit-codes.md)
    assert main(["ejv", "redate", "plan", file_ref, "--resend-anyway"]) == 2
    processing = [k.key for k in ejv.store.list("cgi_processing/") if f["target"]["name"][:20] in k.key]
    assert processing == []  # nothing went out a second time

    # the confirmed first plan, applied again, finds its own copy sent and uploads nothing
    again = apply_redate(first, first.sha256, settings=ejv.settings, today=_as_of(ejv))
    assert again.uploaded == () and len(again.already_present) == 2

    # CAS said it never arrived: an explicit, reasoned re-send is allowed and says so in the plan
    forced = _plan(ejv, file_ref, resend_anyway=True, reason="OPS-2: CAS has no record of the first copy")
    (g,) = forced.body["files"]
    assert g["target"]["name"] != f["target"]["name"]
    assert forced.body["params"]["reason"].startswith("OPS-2")
    assert any("RESENT ANYWAY" in w and "OPS-2" in w for w in forced.warnings)
    assert fix_ledger.finished("ejv.inbox_redate") == ["applied", "already_applied"]


def test_a_killed_apply_resumes_without_sending_twice(ejv: EjvSandbox) -> None:
    # killed after the INBOX upload and before its trigger; the poller then moved the INBOX on
    _file_id, file_ref = _no_feedback_file(ejv)
    plan = _plan(ejv, file_ref)
    (f,) = plan.body["files"]
    inbox = ejv.store.get(f"cgi_processed/{file_ref}")
    redated = parse_inbox(inbox)
    from paynb.formats.inbox import redate_inbox

    ejv.put(f["target"]["key"], redate_inbox(redated, date.fromisoformat(plan.body["new_date"])).to_bytes())
    _poller_moves(ejv, f["target"]["name"])

    resumed = apply_redate(plan, plan.sha256, settings=ejv.settings, today=_as_of(ejv))
    assert resumed.uploaded == (f["trigger"]["key"],)
    assert resumed.already_present == (f["target"]["key"],)
    assert ejv.store.stat(f["target"]["key"]) is None  # not sent a second time


def test_the_apply_is_in_the_ledger_and_audited(ejv: EjvSandbox, tmp_path: Path) -> None:
    from tests.fix_ledger import assert_apply_is_audited

    _file_id, file_ref = _no_feedback_file(ejv)
    plan = _plan(ejv, file_ref)
    result = apply_redate(plan, plan.sha256, settings=ejv.settings, today=_as_of(ejv), ticket="OPS-4")
    assert result.apply_id and len(result.uploaded) == 2
    assert_apply_is_audited(result.apply_id, "ejv.inbox_redate", tmp_path)
