"""CFS fixtures: a running sandbox CFS server per test (real HTTP on loopback) and clients for it.

The state is small and known: one PAD site with an unpaid invoice, a paid one, one CAS never got,
a receipt, and an open credit memo.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from paynb.cfs import CfsClient
from paynb.sandbox.cfs_server import CfsState, RunningCfsServer, start_cfs_server
from paynb.secrets import Secret

CFS_CLIENT_ID = "paynb-test"
CFS_CLIENT_SECRET = "cfs-test-secret-3c1f9a7e"
CFS_FAS_CLIENT_ID = "paynb-test-fas"
CFS_FAS_CLIENT_SECRET = "cfs-test-fas-secret-81d2c4b0"
CFS_PAY_CONNECTOR = "pay-connector-test-5e0a2d"

PARTY, ACCOUNT, SITE = "10001", "20001", "30001"
UNPAID, PAID, MISSING = "REG00001001", "REG00001002", "REG00009999"
RECEIPT, CREDIT_MEMO = "RCPT00000042", "800001"


def small_cfs_state() -> CfsState:
    state = CfsState()
    state.add_site(PARTY, ACCOUNT, SITE, payment_method="PAD")
    state.add_site("10002", "20002", "30002", payment_method="ONLINE_BANKING")
    state.add_invoice(PARTY, ACCOUNT, SITE, UNPAID, "131.50")
    state.add_invoice(PARTY, ACCOUNT, SITE, PAID, "30.00", "0")
    state.add_invoice(PARTY, ACCOUNT, SITE, MISSING, "12.00", present=False)
    state.add_receipt(PARTY, ACCOUNT, SITE, RECEIPT, "30.00", applied={PAID: "30.00"})
    state.add_credit_memo(
        PARTY, ACCOUNT, SITE, "25.00", remaining="10.00", comments="older credit", number=CREDIT_MEMO
    )
    for i in range(3, 13):  # more invoices for batch tests
        state.add_invoice(PARTY, ACCOUNT, SITE, f"REG0000{1000 + i}", f"{i}.25")
    return state


@pytest.fixture
def cfs_state() -> CfsState:
    return small_cfs_state()


@pytest.fixture
def cfs_server(cfs_state: CfsState) -> Iterator[RunningCfsServer]:
    server = start_cfs_server(
        cfs_state,
        credentials={CFS_CLIENT_ID: CFS_CLIENT_SECRET, CFS_FAS_CLIENT_ID: CFS_FAS_CLIENT_SECRET},
        pay_connector=CFS_PAY_CONNECTOR,
    )
    yield server
    server.stop()


@pytest.fixture
def make_cfs_client(cfs_server: RunningCfsServer) -> Iterator[Callable[..., CfsClient]]:
    """``make_cfs_client(**overrides)``: a CfsClient for the test server (fast backoff for tests)."""
    made: list[CfsClient] = []

    def make(**overrides: Any) -> CfsClient:
        fas = overrides.get("credential") == "FAS"
        kwargs: dict[str, Any] = {
            "base_url": cfs_server.url,
            "client_id": CFS_FAS_CLIENT_ID if fas else CFS_CLIENT_ID,
            "client_secret": Secret(CFS_FAS_CLIENT_SECRET if fas else CFS_CLIENT_SECRET),
            "pay_connector": Secret(CFS_PAY_CONNECTOR),
            "timeout_s": 5.0,
            "backoff_s": 0.01,
            "concurrency": 4,
        }
        kwargs.update(overrides)
        client = CfsClient(**kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def cfs_client(make_cfs_client: Callable[..., CfsClient]) -> CfsClient:
    return make_cfs_client()


def cfs_control(server: RunningCfsServer, path: str, body: dict | None = None) -> dict:
    """Call a ``/_sandbox/...`` control endpoint over HTTP (GET without body, POST with one)."""
    url = f"{server.url}/_sandbox/{path}"
    resp = requests.post(url, json=body, timeout=5) if body is not None else requests.get(url, timeout=5)
    resp.raise_for_status()
    return resp.json()
