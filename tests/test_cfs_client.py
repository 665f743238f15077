"""CfsClient against the real sandbox CFS server over HTTP: tokens, retries, batches, secrets."""

from __future__ import annotations

import logging
import time
from decimal import Decimal

import pytest

from paynb import cfs as cfs_module
from paynb.cfs import CfsClient, CfsInvoiceRef, CfsResult, failure_summary, to_decimal
from paynb.errors import CfsError, ConfigError
from paynb.sandbox.postgres import free_port
from paynb.secrets import Secret
from paynb.settings import Settings
from tests.plugins.cfs import (
    ACCOUNT,
    CFS_CLIENT_SECRET,
    CFS_FAS_CLIENT_SECRET,
    CFS_PAY_CONNECTOR,
    CREDIT_MEMO,
    MISSING,
    PAID,
    PARTY,
    RECEIPT,
    SITE,
    UNPAID,
    cfs_control,
)

SITE_PATH = f"/cfs/parties/{PARTY}/accs/{ACCOUNT}/sites/{SITE}/"
BATCH = [f"REG0000{1000 + i}" for i in range(3, 13)]


def inv_path(number: str) -> str:
    return f"{SITE_PATH}invs/{number}/"


def ref(number: str) -> CfsInvoiceRef:
    return CfsInvoiceRef(PARTY, ACCOUNT, SITE, number)


def paths(server) -> dict[str, int]:
    return cfs_control(server, "state")["stats"]["paths"]


def cm_payload(comments: str, amount: str = "-12.50") -> dict:
    return {
        "batch_source": "MANUAL-OTHER",
        "cust_trx_type": "BC_REG_CREDIT_MEMO",
        "transaction_date": "2026-08-01T10:00:00Z",
        "gl_date": "2026-08-01T10:00:00Z",
        "comments": comments,
        "lines": [
            {
                "line_number": 1,
                "line_type": "LINE",
                "description": "Annual report",
                "unit_price": amount,
                "quantity": 1,
                "distribution": [
                    {
                        "dist_line_number": 1,
                        "amount": amount,
                        "account": "112.32041.35301.1278.3200000.000000.0000",
                    }
                ],
            }
        ],
    }


# -- reads and money ----------------------------------------------------------------------------------------
def test_reads_return_decimal_money(cfs_client: CfsClient) -> None:
    inv = cfs_client.get_invoice(PARTY, ACCOUNT, SITE, UNPAID)
    assert inv["invoice_number"] == UNPAID
    assert inv["total"] == Decimal("131.50") and isinstance(inv["amount_due"], Decimal)
    assert inv["lines"][0]["unit_price"] == Decimal("131.50")
    paid = cfs_client.get_invoice(PARTY, ACCOUNT, SITE, PAID)
    assert paid["amount_due"] == Decimal("0.00")
    assert paid["receipts"][0]["receipt_number"] == RECEIPT
    rcpt = cfs_client.get_receipt(PARTY, ACCOUNT, SITE, RECEIPT)
    assert rcpt["receipt_amount"] == Decimal("30.00") and rcpt["unapplied_amount"] == Decimal("0.00")
    assert rcpt["invoices"] == [{"invoice_number": PAID, "amount_applied": Decimal("30.00"), "lines": []}]
    cm = cfs_client.get_credit_memo(PARTY, ACCOUNT, SITE, CREDIT_MEMO)
    assert cm["amount_due"] == Decimal("-10.00")
    site = cfs_client.get_site(PARTY, ACCOUNT, SITE)
    assert site["site_number"] == SITE and site["receipt_method"] == "BCR-PAD Daily"


def test_amounts_sent_as_strings_also_become_decimal(cfs_server, cfs_client: CfsClient) -> None:
    cfs_server.set_knobs(amounts_as_strings=True)
    inv = cfs_client.get_invoice(PARTY, ACCOUNT, SITE, UNPAID)
    assert inv["amount_due"] == Decimal("131.50")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0, Decimal("0.00")),
        ("$9.5", Decimal("9.50")),
        ("1,234.5", Decimal("1234.50")),
        (Decimal("-5.255"), Decimal("-5.26")),
    ],
)
def test_to_decimal(raw, expected) -> None:
    assert to_decimal(raw) == expected


def test_to_decimal_leaves_odd_values_alone() -> None:
    assert to_decimal("n/a") == "n/a" and to_decimal(None) is None


# -- tokens -------------------------------------------------------------------------------------------------
def test_token_is_cached(cfs_server, cfs_client: CfsClient) -> None:
    for _ in range(3):
        cfs_client.get_invoice(PARTY, ACCOUNT, SITE, UNPAID)
    assert cfs_control(cfs_server, "state")["stats"]["tokens_issued"] == 1
    assert cfs_client.token_requests == 1


def test_token_expiring_mid_batch_is_refreshed_once(cfs_server, make_cfs_client) -> None:
    client = make_cfs_client(concurrency=4)
    client.get_site(PARTY, ACCOUNT, SITE)  # token 1
    cfs_server.set_knobs(expire_tokens_after=3)  # token 1 dies after 3 more calls, in the middle of the batch
    results = client.get_invoices([ref(n) for n in BATCH])
    assert all(r.ok for r in results.values()), results
    stats = cfs_control(cfs_server, "state")["stats"]
    assert stats["tokens_issued"] == 2 and client.token_requests == 2
    assert stats["rejected_auth"] >= 1


def test_revoked_token_gets_a_new_one(cfs_server, cfs_client: CfsClient) -> None:
    cfs_client.get_site(PARTY, ACCOUNT, SITE)
    cfs_server.expire_tokens()
    assert cfs_client.get_invoice(PARTY, ACCOUNT, SITE, PAID)["amount_due"] == 0
    assert cfs_client.token_requests == 2


def test_token_expiring_before_its_advertised_time(cfs_server, cfs_client: CfsClient) -> None:
    cfs_server.set_knobs(token_ttl_s=0.2)  # the server says expires_in=1 but lets it die after 0.2 s
    cfs_client.get_site(PARTY, ACCOUNT, SITE)
    time.sleep(0.3)
    assert cfs_client.get_invoice(PARTY, ACCOUNT, SITE, PAID)["amount_due"] == 0
    stats = cfs_control(cfs_server, "state")["stats"]
    assert stats["tokens_issued"] == 2 and stats["rejected_auth"] == 1


def test_second_401_is_an_error_not_a_loop(cfs_server, cfs_client: CfsClient) -> None:
    cfs_server.set_knobs(fail_next=[[f"invs/{UNPAID}/", 401], [f"invs/{UNPAID}/", 401]])
    with pytest.raises(CfsError) as info:
        cfs_client.get_invoice(PARTY, ACCOUNT, SITE, UNPAID)
    assert info.value.status == 401
    assert paths(cfs_server)[f"GET {inv_path(UNPAID)}"] == 2
    assert cfs_client.token_requests == 2


def test_wrong_secret_is_refused_without_retry(cfs_server, make_cfs_client) -> None:
    client = make_cfs_client(client_secret=Secret("not-the-secret-value"))
    with pytest.raises(CfsError) as info:
        client.get_invoice(PARTY, ACCOUNT, SITE, UNPAID)
    assert info.value.status == 401
    assert "not-the-secret-value" not in str(info.value)
    assert paths(cfs_server)["POST /oauth/token"] == 1


def test_fas_credentials_are_a_separate_set(cfs_server, make_cfs_client) -> None:
    fas = make_cfs_client(credential="FAS")
    assert fas.get_site(PARTY, ACCOUNT, SITE)["site_number"] == SITE
    crossed = make_cfs_client(credential="FAS", client_secret=Secret(CFS_CLIENT_SECRET))
    with pytest.raises(CfsError):
        crossed.get_site(PARTY, ACCOUNT, SITE)


def test_pay_connector_header_is_sent_on_every_call(cfs_server, make_cfs_client) -> None:
    good = make_cfs_client()
    good.get_invoices([ref(n) for n in BATCH[:3]])
    good.get_site(PARTY, ACCOUNT, SITE)
    assert cfs_control(cfs_server, "state")["stats"]["rejected_pay_connector"] == 0
    bad = make_cfs_client(pay_connector=Secret("wrong-connector"))
    with pytest.raises(CfsError) as info:
        bad.get_site(PARTY, ACCOUNT, SITE)
    assert info.value.status == 403
    assert cfs_control(cfs_server, "state")["stats"]["rejected_pay_connector"] == 1


# -- retries ------------------------------------------------------------------------------------------------
def test_500_then_success(cfs_server, cfs_client: CfsClient) -> None:
    cfs_server.set_knobs(fail_next=[[f"invs/{UNPAID}/", 500], [f"invs/{UNPAID}/", 503]])
    assert cfs_client.get_invoice(PARTY, ACCOUNT, SITE, UNPAID)["total"] == Decimal("131.50")
    assert paths(cfs_server)[f"GET {inv_path(UNPAID)}"] == 3


def test_500_until_retries_run_out(cfs_server, make_cfs_client) -> None:
    client = make_cfs_client(max_retries=2)
    cfs_server.set_knobs(fail_next=[[f"invs/{UNPAID}/", 500]] * 5)
    with pytest.raises(CfsError) as info:
        client.get_invoice(PARTY, ACCOUNT, SITE, UNPAID)
    assert info.value.status == 500
    assert paths(cfs_server)[f"GET {inv_path(UNPAID)}"] == 3


def test_429_burst_is_waited_out(cfs_server, cfs_client: CfsClient) -> None:
    cfs_client.get_site(PARTY, ACCOUNT, SITE)
    cfs_server.set_knobs(burst_429=3, retry_after_s=0)
    assert cfs_client.get_invoice(PARTY, ACCOUNT, SITE, PAID)["amount_due"] == 0
    stats = cfs_control(cfs_server, "state")["stats"]
    assert stats["statuses"]["429"] == 3
    assert stats["paths"][f"GET {inv_path(PAID)}"] == 4


def test_long_retry_after_is_reported_not_waited(cfs_server, cfs_client: CfsClient) -> None:
    cfs_client.get_site(PARTY, ACCOUNT, SITE)
    cfs_server.set_knobs(burst_429=1, retry_after_s=600)
    with pytest.raises(CfsError) as info:
        cfs_client.get_invoice(PARTY, ACCOUNT, SITE, PAID)
    assert info.value.status == 429
    assert paths(cfs_server)[f"GET {inv_path(PAID)}"] == 1


def test_dropped_connection_then_success(cfs_server, cfs_client: CfsClient) -> None:
    cfs_client.get_site(PARTY, ACCOUNT, SITE)
    cfs_server.set_knobs(fail_next=[[f"invs/{UNPAID}/", 0]])  # hang up without answering
    assert cfs_client.get_invoice(PARTY, ACCOUNT, SITE, UNPAID)["invoice_number"] == UNPAID
    assert paths(cfs_server)[f"GET {inv_path(UNPAID)}"] == 2


def test_connection_cut_mid_response_is_retried(cfs_server, make_cfs_client) -> None:
    client = make_cfs_client(max_retries=12)
    client.get_site(PARTY, ACCOUNT, SITE)
    cfs_server.set_knobs(drop_rate=0.4, seed=7)
    results = client.get_invoices([ref(n) for n in BATCH])
    assert all(r.ok for r in results.values())
    assert cfs_control(cfs_server, "state")["stats"]["dropped"] > 0


def test_random_faults_are_absorbed(cfs_server, make_cfs_client) -> None:
    client = make_cfs_client(max_retries=10)
    cfs_server.set_knobs(fault_rate=0.25, seed=3)
    results = client.get_invoices([ref(n) for n in BATCH])
    assert failure_summary(results) == {"ok": len(BATCH), "not_found": 0, "error": 0}


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_other_4xx_are_never_retried(cfs_server, cfs_client: CfsClient, status: int) -> None:
    cfs_server.set_knobs(fail_next=[[f"invs/{UNPAID}/", status]])
    with pytest.raises(CfsError) as info:
        cfs_client.get_invoice(PARTY, ACCOUNT, SITE, UNPAID)
    assert info.value.status == status
    assert paths(cfs_server)[f"GET {inv_path(UNPAID)}"] == 1


def test_unknown_invoice_is_a_404_without_retry(cfs_server, cfs_client: CfsClient) -> None:
    with pytest.raises(CfsError) as info:
        cfs_client.get_invoice(PARTY, ACCOUNT, SITE, MISSING)
    assert info.value.status == 404
    assert str(info.value).splitlines()[0] == f"GET {inv_path(MISSING)} -> 404"
    assert paths(cfs_server)[f"GET {inv_path(MISSING)}"] == 1


def test_unreachable_cfs_is_a_clear_error() -> None:
    client = CfsClient(
        base_url=f"http://127.0.0.1:{free_port()}",
        client_id="x",
        client_secret=Secret("y" * 8),
        pay_connector=Secret(""),
        max_retries=1,
        backoff_s=0.01,
        timeout_s=2,
    )
    with pytest.raises(CfsError) as info:
        client.get_site(PARTY, ACCOUNT, SITE)
    assert info.value.status is None
    assert "POST /oauth/token: no answer from CFS" in str(info.value)
    assert info.value.__context__ is None  # the requests exception (and its headers) is not kept


# -- batches ------------------------------------------------------------------------------------------------
def test_batch_reports_failures_as_data(cfs_server, cfs_client: CfsClient) -> None:
    cfs_server.set_knobs(fail_next=[[f"invs/{BATCH[0]}/", 400]])
    refs = [ref(UNPAID), ref(PAID), ref(MISSING), ref(BATCH[0])]
    results = cfs_client.get_invoices(refs)
    assert set(results) == set(refs)
    assert results[ref(UNPAID)].ok and results[ref(UNPAID)].amount_due == Decimal("131.50")
    assert results[ref(PAID)].amount_due == Decimal("0.00")
    missing = results[ref(MISSING)]
    assert (missing.ok, missing.status, missing.http_status, missing.data) == (False, "not_found", 404, None)
    bad = results[ref(BATCH[0])]
    assert (bad.status, bad.http_status, bad.error_class) == ("error", 400, "CfsError")
    assert bad.message == f"GET {inv_path(BATCH[0])} -> 400"
    assert failure_summary(results) == {"ok": 2, "not_found": 1, "error": 1}


def test_batch_fetches_each_cfs_invoice_once(cfs_server, cfs_client: CfsClient) -> None:
    # 30 pay-db invoices rolled up into 3 CFS invoices
    refs = [ref(n) for n in (UNPAID, PAID, BATCH[1]) for _ in range(10)]
    results = cfs_client.get_invoices(refs, progress=True)
    assert len(results) == 3 and all(r.ok for r in results.values())
    counted = paths(cfs_server)
    assert [counted[f"GET {inv_path(n)}"] for n in (UNPAID, PAID, BATCH[1])] == [1, 1, 1]


def test_batch_concurrency_is_bounded(cfs_server, make_cfs_client) -> None:
    client = make_cfs_client(concurrency=3)
    client.get_site(PARTY, ACCOUNT, SITE)
    cfs_server.reset_stats()
    cfs_server.set_knobs(latency_ms=60)
    results = client.get_invoices([ref(n) for n in BATCH])
    assert all(r.ok for r in results.values())
    assert 2 <= cfs_control(cfs_server, "state")["stats"]["max_inflight"] <= 3


def test_empty_batch() -> None:
    client = CfsClient(base_url="http://127.0.0.1:9", client_id="x", client_secret=Secret("y" * 8))
    assert client.get_invoices([]) == {}


def test_refs_are_hashable_values() -> None:
    assert ref("A") == CfsInvoiceRef(PARTY, ACCOUNT, SITE, "A") and len({ref("A"), ref("A")}) == 1
    result = CfsResult(True, "ok", 200, None, None, {"amount_due": Decimal("1.00")})
    assert result.amount_due == Decimal("1.00")


# -- credit memos -------------------------------------------------------------------------------------------
def test_create_credit_memo_is_stateful(cfs_server, cfs_client: CfsClient) -> None:
    key = "paynb:key:7f3a"
    created = cfs_client.create_credit_memo(
        PARTY, ACCOUNT, SITE, cm_payload(f"Partial invoice credit for 42 {PAID} {key}"), idempotency_key=key
    )
    number = created["credit_memo_number"]
    assert created["amount_due"] == Decimal("-12.50") and "_recovered" not in created
    assert cfs_client.get_credit_memo(PARTY, ACCOUNT, SITE, number)["amount_due"] == Decimal("-12.50")
    invoice = cfs_client.get_invoice(PARTY, ACCOUNT, SITE, PAID)
    assert [m["credit_memo_number"] for m in invoice["credit_memos"]] == [number]
    assert [
        m["credit_memo_number"]
        for m in cfs_client.find_credit_memos(PARTY, ACCOUNT, SITE, comment_contains=key)
    ] == [number]
    assert [
        m["credit_memo_number"] for m in cfs_client.list_credit_memos_for_invoice(PARTY, ACCOUNT, SITE, PAID)
    ] == [number]
    assert cfs_server.state.site_credit(PARTY, ACCOUNT, SITE) == Decimal("22.50")  # 10.00 older + 12.50


def test_lost_cms_response_is_recovered_by_key_not_posted_twice(cfs_server, cfs_client: CfsClient) -> None:
    key = "paynb:key:lost"
    cfs_server.set_knobs(fail_after_cms_create=1)
    created = cfs_client.create_credit_memo(
        PARTY, ACCOUNT, SITE, cm_payload(f"credit {key}"), idempotency_key=key
    )
    assert created["_recovered"] is True
    assert len(cfs_client.find_credit_memos(PARTY, ACCOUNT, SITE, comment_contains=key)) == 1
    assert paths(cfs_server)[f"POST {SITE_PATH}cms/"] == 1


def test_cms_500_before_creation_is_posted_again_after_a_look(cfs_server, cfs_client: CfsClient) -> None:
    key = "paynb:key:500"
    cfs_server.set_knobs(fail_next=[["cms/$", 500]])
    created = cfs_client.create_credit_memo(
        PARTY, ACCOUNT, SITE, cm_payload(f"credit {key}"), idempotency_key=key
    )
    assert "_recovered" not in created
    assert len(cfs_client.find_credit_memos(PARTY, ACCOUNT, SITE, comment_contains=key)) == 1
    assert paths(cfs_server)[f"POST {SITE_PATH}cms/"] == 2


def test_cms_post_without_key_is_not_retried_when_outcome_unknown(cfs_server, cfs_client: CfsClient) -> None:
    cfs_server.set_knobs(fail_after_cms_create=1)
    with pytest.raises(CfsError) as info:
        cfs_client.create_credit_memo(PARTY, ACCOUNT, SITE, cm_payload("no key"))
    assert info.value.outcome_unknown is True  # type: ignore[attr-defined]
    assert paths(cfs_server)[f"POST {SITE_PATH}cms/"] == 1


def test_cms_post_is_retried_after_429(cfs_server, cfs_client: CfsClient) -> None:
    cfs_client.get_site(PARTY, ACCOUNT, SITE)
    cfs_server.set_knobs(burst_429=1)
    cfs_client.create_credit_memo(PARTY, ACCOUNT, SITE, cm_payload("after 429"))
    assert paths(cfs_server)[f"POST {SITE_PATH}cms/"] == 2
    assert len(cfs_client.find_credit_memos(PARTY, ACCOUNT, SITE, comment_contains="after 429")) == 1


def test_bad_cms_payload_is_a_400(cfs_server, cfs_client: CfsClient) -> None:
    with pytest.raises(CfsError) as info:
        cfs_client.create_credit_memo(PARTY, ACCOUNT, SITE, {"comments": "no lines"})
    assert info.value.status == 400 and info.value.outcome_unknown is False  # type: ignore[attr-defined]
    assert paths(cfs_server)[f"POST {SITE_PATH}cms/"] == 1


def test_key_must_be_in_comments(cfs_client: CfsClient) -> None:
    with pytest.raises(CfsError, match="idempotency key"):
        cfs_client.create_credit_memo(PARTY, ACCOUNT, SITE, cm_payload("other"), idempotency_key="k-1")


def test_credit_memo_list_is_paged(cfs_server, cfs_client: CfsClient, monkeypatch) -> None:
    monkeypatch.setattr(cfs_module, "CM_PAGE_SIZE", 4)
    for i in range(9):
        cfs_server.state.add_credit_memo(PARTY, ACCOUNT, SITE, "1.00", comments=f"bulk {i}")
    memos = list(cfs_client.iter_credit_memos(PARTY, ACCOUNT, SITE))
    assert len(memos) == 10  # 9 + the fixture's older memo
    assert paths(cfs_server)[f"GET {SITE_PATH}cms/"] == 3


# -- configuration and secrets ------------------------------------------------------------------------------
def test_missing_settings_name_the_setting_not_the_value() -> None:
    secret = "s3cr3t-value-123"
    with pytest.raises(ConfigError, match="PAYNB_CFS_BASE_URL"):
        CfsClient(Settings(cfs_client_id="id", cfs_client_secret=Secret(secret)))
    with pytest.raises(ConfigError, match="PAYNB_CFS_FAS_CLIENT_ID") as info:
        CfsClient(
            Settings(cfs_base_url="http://x", cfs_client_id="id", cfs_client_secret=Secret(secret)),
            credential="FAS",
        )
    assert secret not in str(info.value)
    with pytest.raises(ConfigError, match="PAYNB_CFS_CLIENT_SECRET"):
        CfsClient(Settings(cfs_base_url="http://x", cfs_client_id="id"))


def test_settings_supply_the_defaults(cfs_server) -> None:
    settings = Settings(
        cfs_base_url=cfs_server.url,
        cfs_fas_client_id="paynb-test-fas",
        cfs_fas_client_secret=Secret(CFS_FAS_CLIENT_SECRET),
        pay_connector_auth=Secret(CFS_PAY_CONNECTOR),
        cfs_concurrency=2,
        cfs_timeout_s=3.0,
    )
    client = CfsClient(settings, credential="FAS")
    assert (client.concurrency, client.timeout_s) == (2, 3.0)
    assert client.get_site(PARTY, ACCOUNT, SITE)["site_number"] == SITE


def test_no_secret_in_messages_logs_or_repr(cfs_server, make_cfs_client, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_cfs_client(max_retries=1)
    client.get_site(PARTY, ACCOUNT, SITE)
    token = client._token
    assert token
    messages: list[str] = [repr(client), str(client)]
    cfs_server.set_knobs(fail_next=[["invs/", 500]] * 3 + [["invs/", 401]] * 2 + [["sites/", 0]] * 3)
    for number in (UNPAID, PAID, MISSING):
        try:
            client.get_invoice(PARTY, ACCOUNT, SITE, number)
        except CfsError as err:
            messages.append(str(err))
            messages.append(repr(err))
    for r in client.get_invoices([ref(n) for n in BATCH[:4]]).values():
        messages.append(repr(r))
    bad = make_cfs_client(client_secret=Secret("wrong-" + CFS_CLIENT_SECRET), max_retries=0)
    with pytest.raises(CfsError) as info:
        bad.get_site(PARTY, ACCOUNT, SITE)
    messages.append(str(info.value))
    assert info.value.__cause__ is None and info.value.__context__ is None
    for rec in caplog.records:
        messages.append(rec.getMessage())
    text = "\n".join(messages)
    assert len(messages) > 8
    for secret in (token, client._token, CFS_CLIENT_SECRET, CFS_FAS_CLIENT_SECRET, CFS_PAY_CONNECTOR):
        assert secret and secret not in text
