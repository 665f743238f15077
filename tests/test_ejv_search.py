"""``search_feedback``: the right file, line, batch, journal and return code for invoices in success and error
FEEDBACK files of both layouts; the local index means unchanged files are never read twice."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import pytest
from click.testing import CliRunner

from paynb.errors import InputError
from paynb.formats.feedback import parse_feedback
from paynb.ops.ejv.search import EJV_FOLDERS, Source, normalise_invoice_ids, search_feedback
from paynb.settings import Settings
from tests.test_ejv_support import CountingStore, EjvSandbox, make_ejv_sandbox, query, scenario


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


def _expected(ejv: EjvSandbox, invoice_id: int) -> set[tuple]:
    """(location, file name, line, batch, journal, C/D, rc, message) per FEEDBACK line, by the strict parser."""
    out = set()
    for key, data in ejv.objects.items():
        name = PurePosixPath(key).name
        if not name.startswith("FEEDBACK"):
            continue
        for r in parse_feedback(data, file=key).find(invoice_id):
            where = "legacy" if key.startswith("cgi-ejv/") else key.split("/")[0]
            out.add(
                (
                    where,
                    name,
                    r.line_number,
                    r.batch_number,
                    r.journal_name,
                    r.debit_credit,
                    r.return_code,
                    r.return_message,
                )
            )
    return out


def _got(result, invoice_id: int) -> set[tuple]:
    return {
        (
            "legacy" if "legacy" in m.location else m.location,
            m.name,
            m.line,
            m.batch_number,
            m.journal_name,
            m.debit_credit,
            m.return_code,
            m.return_message,
        )
        for m in result.for_invoice(invoice_id)
        if m.kind == "FEEDBACK"
    }


def _invoice_in(ejv: EjvSandbox, prefix: str) -> int:
    """An invoice whose successful FEEDBACK is under ``prefix`` (cgi_feedback/ or cgi-ejv/)."""
    for key, data in sorted(ejv.objects.items()):
        if key.startswith(prefix) and PurePosixPath(key).name.startswith("FEEDBACK"):
            parsed = parse_feedback(data, file=key)
            if not parsed.errors():
                return sorted(parsed.invoice_ids())[0]
    raise AssertionError(f"no FEEDBACK under {prefix}")


def test_search_finds_records_in_both_layouts_with_their_return_codes(ejv: EjvSandbox) -> None:
    legacy = _invoice_in(ejv, "cgi-ejv/")
    current = _invoice_in(ejv, "cgi_feedback/")
    (errored_link,) = scenario(ejv.db_url, "ejv_errored_stop_ejv", "ejv_links")
    errored = query(ejv.db_url, "SELECT link_id FROM ejv_links WHERE id = :i", i=errored_link)[0][0]
    (no_feedback,) = scenario(ejv.db_url, "ejv_no_feedback", "invoices")

    result = search_feedback([legacy, current, errored, no_feedback], settings=ejv.settings, progress=False)

    for invoice in (legacy, current, errored):
        assert _got(result, invoice) == _expected(ejv, invoice) != set()
    assert {m[0] for m in _got(result, legacy)} == {"legacy"}
    assert {m[0] for m in _got(result, current)} == {"cgi_feedback"}
    error_lines = [m for m in result.for_invoice(errored) if m.kind == "FEEDBACK"]
    assert {m.return_code for m in error_lines} == {"0155"} and all(
        m.is_success is False for m in error_lines
    )
    assert all(m.batch_return_code == "0001" and m.journal_return_code == "0150" for m in error_lines)

    # the INBOX side: the no-feedback invoice appears only in its INBOX under cgi_processed/
    (file_ref,) = query(
        ejv.db_url,
        "SELECT file_ref FROM ejv_files WHERE id = ANY(:i)",
        i=scenario(ejv.db_url, "ejv_no_feedback", "ejv_files"),
    )[0]
    inbox = result.for_invoice(no_feedback)
    assert inbox and {(m.kind, m.location, m.name) for m in inbox} == {("INBOX", "cgi_processed", file_ref)}
    assert result.without_feedback() == [no_feedback]
    outcome = result.by_invoice().set_index("invoice_id")["outcome"]
    assert outcome[no_feedback] == "INBOX sent, no FEEDBACK found"
    assert (
        outcome[errored].startswith("FEEDBACK error: 0155") and outcome[current] == "FEEDBACK 0000 (success)"
    )
    assert result.problems == () and result.warnings == ()


def test_the_index_means_unchanged_files_are_not_read_again(ejv: EjvSandbox, tmp_path: Path) -> None:
    main, legacy = CountingStore(ejv.store), CountingStore(ejv.legacy_store)
    sources = [Source(main, folder) for folder in EJV_FOLDERS] + [Source(legacy, "", False)]
    index = tmp_path / "index.sqlite"
    (invoice,) = scenario(ejv.db_url, "ejv_no_feedback", "invoices")
    ejv_files = [k for k in ejv.objects if not k.endswith(".TRG")]

    first = search_feedback([invoice], stores=sources, index_path=index, progress=False)
    assert len(main.gets) + len(legacy.gets) == len(ejv_files) == first.files_scanned == first.files_listed
    main.gets.clear()
    legacy.gets.clear()

    second = search_feedback([invoice, 1, 2], stores=sources, index_path=index, progress=False)
    assert main.gets == [] and legacy.gets == []
    assert second.files_scanned == 0 and second.files_from_index == len(ejv_files)
    assert [m.to_dict() for m in second.for_invoice(invoice)] == [
        m.to_dict() for m in first.for_invoice(invoice)
    ]

    # a new FEEDBACK naming the invoice, and a changed recent file (a warm search re-lists only the newest
    # names; an old file rewritten in place needs --reindex): only those two are read
    changed = sorted(k for k in ejv.objects if k.startswith("cgi_feedback/"))[-1]
    ejv.put(changed, ejv.objects[changed] + b"\n")
    inbox_key = next(
        k for k in ejv.objects if k.startswith("cgi_processed/") and str(invoice) in ejv.objects[k].decode()
    )
    feedback = _feedback_for_inbox(ejv.objects[inbox_key])
    ejv.put("cgi_feedback/FEEDBACK.F3505.20991231235959", feedback)
    third = search_feedback([invoice], stores=sources, index_path=index, progress=False)
    assert sorted(main.gets) == sorted([changed, "cgi_feedback/FEEDBACK.F3505.20991231235959"])
    assert any(
        m.kind == "FEEDBACK" and m.name == "FEEDBACK.F3505.20991231235959" for m in third.for_invoice(invoice)
    )


def _feedback_for_inbox(inbox_bytes: bytes) -> bytes:
    from paynb.formats.feedback import render_feedback
    from paynb.formats.inbox import parse_inbox

    return render_feedback(parse_inbox(inbox_bytes)).encode()


def test_unparseable_files_are_reported_not_fatal(ejv: EjvSandbox, tmp_path: Path) -> None:
    (invoice,) = scenario(ejv.db_url, "ejv_no_feedback", "invoices")
    inbox_key = next(
        k for k in ejv.objects if k.startswith("cgi_processed/") and str(invoice) in ejv.objects[k].decode()
    )
    good = _feedback_for_inbox(ejv.objects[inbox_key]).decode().split("\n")
    broken = "\n".join([*good[:3], "GIJD...garbage line", *good[3:]]).encode()
    ejv.put("cgi_feedback/FEEDBACK.F3505.20991231000000", broken)
    ejv.put("cgi_feedback/FEEDBACK.F3505.20991231000001", b"\xff\xfe not text")

    result = search_feedback(
        [invoice], settings=ejv.settings, index_path=tmp_path / "i.sqlite", progress=False
    )
    bad = {PurePosixPath(p.file).name: p.error for p in result.problems}
    assert set(bad) == {"FEEDBACK.F3505.20991231000000", "FEEDBACK.F3505.20991231000001"}
    assert ":4" in bad["FEEDBACK.F3505.20991231000000"]  # names the line
    # the lines that do decode are still searched, flagged as coming from a damaged file
    damaged = [m for m in result.for_invoice(invoice) if m.name == "FEEDBACK.F3505.20991231000000"]
    assert damaged and all(not m.file_ok for m in damaged)
    # the problem is remembered: the next search reports it without reading the file again
    again = search_feedback(
        [invoice], settings=ejv.settings, index_path=tmp_path / "i.sqlite", progress=False
    )
    assert again.files_scanned == 0 and len(again.problems) == 2


def test_a_missing_legacy_bucket_is_a_warning(ejv: EjvSandbox, tmp_path: Path) -> None:
    settings = Settings.load(env={**ejv.env, "PAYNB_LEGACY_EJV_BUCKET": "no-such-bucket-here"}, dotenv=None)
    result = search_feedback(["1"], settings=settings, index_path=tmp_path / "i.sqlite", progress=False)
    assert len(result.warnings) == 1 and "no-such-bucket-here" in result.warnings[0]


def test_invoice_ids_are_normalised() -> None:
    assert normalise_invoice_ids(["REG00004808", "12,13", 12, " 14 "]) == (4808, 12, 13, 14)
    with pytest.raises(InputError, match="invoice_ids"):
        normalise_invoice_ids(["abc"])
    with pytest.raises(InputError):
        normalise_invoice_ids([])


def test_cli_search(ejv: EjvSandbox) -> None:
    from paynb.cli import cli

    (invoice,) = scenario(ejv.db_url, "ejv_no_feedback", "invoices")
    runner = CliRunner()
    out = runner.invoke(cli, ["ejv", "search", str(invoice), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["schema_version"] == 1 and data["summary"]["inbox_only"] == 1
    assert data["by_invoice"][0]["outcome"] == "INBOX sent, no FEEDBACK found"
    table = runner.invoke(cli, ["ejv", "search", f"REG{invoice:08d}", "--reindex"])
    assert table.exit_code == 0, table.output
    assert "By invoice" in table.output and "cgi_processed" in table.output


def test_index_rows_survive_marker_characters(tmp_path: Path) -> None:
    from paynb.ops.ejv.index import SearchIndex, decode_row, encode_row
    from paynb.ops.ejv.scan import FileScan

    odd = (
        4,
        10,
        "JD",
        "GA",
        7,
        "0000",
        "FI00000001",
        None,
        "77",
        77,
        None,
        None,
        "D",
        "1.00",
        "2026-01-02",
        "0155",
        "bad \x1f message \x1e with \x00 markers",
    )
    plain = (
        5,
        20,
        "JD",
        "GA",
        7,
        "0000",
        "FI00000001",
        "0000",
        "77",
        77,
        None,
        None,
        "C",
        "1.00",
        "2026-01-02",
        "0000",
        "",
    )
    assert decode_row(encode_row(plain)) == plain
    assert decode_row(encode_row(odd))[:-1] == odd[:-1]
    with SearchIndex(tmp_path / "i.sqlite") as index:
        index.store("s3://b/f", "etag", 1, FileScan("FEEDBACK", (plain, odd)))
        index.commit()
        got = index.mentions([77], ["s3://b/f"])
    assert [row[0] for _, row in got] == [4, 5] and got[1][1] == plain
    assert "\ufffd" in got[0][1][-1]


def test_a_warm_search_lists_only_the_newest_names(
    ejv: EjvSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import paynb.ops.ejv.search as search_module

    monkeypatch.setattr(search_module, "RELIST_WINDOW", 2)
    calls: list[tuple[str, str | None, int]] = []

    class Spy(CountingStore):
        def list(self, prefix="", recursive=True, *, start_after=None):  # type: ignore[no-untyped-def]
            items = list(self.inner.list(prefix, recursive, start_after=start_after))
            calls.append((prefix, start_after, len(items)))
            return iter(items)

    feedback = sorted(k for k in ejv.objects if k.startswith("cgi_feedback/FEEDBACK"))
    assert len(feedback) > 3
    invoice = _invoice_in(ejv, "cgi_feedback/")
    sources = [Source(Spy(ejv.store), "cgi_feedback/")]
    index = tmp_path / "index.sqlite"
    cold = search_feedback([invoice], stores=sources, index_path=index, progress=False)
    assert calls == [("cgi_feedback/", None, len(feedback))]  # cold: the whole folder

    calls.clear()
    warm = search_feedback([invoice], stores=sources, index_path=index, progress=False)
    # FEEDBACK names after the third newest (the two newest re-listed for late arrivals); no INBOX indexed
    assert calls == [("cgi_feedback/FEEDBACK", feedback[-3], 2), ("cgi_feedback/INBOX", None, 0)]
    assert warm.files_scanned == 0 and warm.files_from_index == len(feedback)
    assert [m.to_dict() for m in warm.mentions] == [m.to_dict() for m in cold.mentions]

    # a new file is found by the next warm search; --reindex lists the whole folder again
    inbox_key = next(
        k for k in ejv.objects if k.startswith("cgi_processed/") and str(invoice) in ejv.objects[k].decode()
    )
    ejv.put("cgi_feedback/FEEDBACK.F3505.20991231235959", _feedback_for_inbox(ejv.objects[inbox_key]))
    later = search_feedback([invoice], stores=sources, index_path=index, progress=False)
    assert later.files_scanned == 1
    assert any(m.name == "FEEDBACK.F3505.20991231235959" for m in later.for_invoice(invoice))
    calls.clear()
    search_feedback([invoice], stores=sources, index_path=index, progress=False, reindex=True)
    assert calls == [("cgi_feedback/", None, len(feedback) + 1)]


def test_since_reads_only_newer_files_and_the_next_full_search_reads_the_rest(
    ejv: EjvSandbox, tmp_path: Path
) -> None:
    from datetime import datetime

    feedback = sorted(k for k in ejv.objects if k.startswith("cgi_feedback/FEEDBACK"))
    assert len(feedback) > 3
    # the stamp of the third newest file: it and the two newer ones are read, the older ones skipped
    cut = datetime.strptime(feedback[-3].rsplit(".", 1)[1], "%Y%m%d%H%M%S")
    invoice = _invoice_in(ejv, "cgi_feedback/")
    sources = [Source(CountingStore(ejv.store), "cgi_feedback/")]
    index = tmp_path / "index.sqlite"

    partial = search_feedback([invoice], stores=sources, index_path=index, progress=False, since=cut)
    assert partial.files_scanned == 3

    # without since, the skipped files are listed and read (an incremental listing would miss them)
    full = search_feedback([invoice], stores=sources, index_path=index, progress=False)
    assert full.files_scanned == len(feedback) - 3
    assert full.files_from_index == 3
    cold = search_feedback([invoice], stores=sources, index_path=tmp_path / "cold.sqlite", progress=False)
    assert _got(full, invoice) == _got(cold, invoice) and _got(cold, invoice)
    again = search_feedback([invoice], stores=sources, index_path=index, progress=False)
    assert again.files_scanned == 0


def test_search_over_an_s3_pay_bucket_named_by_the_older_setting(ejv_s3: EjvSandbox) -> None:
    current = _invoice_in(ejv_s3, "cgi_feedback/")
    assert "PAYNB_BUCKET_URL" not in ejv_s3.env
    result = search_feedback([current], settings=ejv_s3.settings, progress=False)
    assert _got(result, current) == _expected(ejv_s3, current) != set()
    assert result.sources[0] == "cgi_feedback" and result.warnings == ()
