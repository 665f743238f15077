"""CAS/CFS REST client (the calls the runbooks need), over ``requests``.

What it does for every call (docs/cfs-api.md#connection):

* a client-credentials token from ``POST {base}/oauth/token``, cached for its ``expires_in`` and
  refreshed once when CFS answers 401; the ``Pay-Connector`` header on every call;
* timeouts, and retries with exponential backoff and jitter on 5xx, 429 (``Retry-After`` honoured when
  short) and connection errors; other 4xx are never retried;
* JSON numbers and money strings come back as :class:`~decimal.Decimal`.

A ``POST`` is retried only when CFS cannot have acted on it (429, connection refused). When the outcome is
unknown (a 5xx, or the connection dropped after the request went out), :meth:`CfsClient.create_credit_memo`
looks for the memo by its idempotency key before posting again, or raises a :class:`CfsError` whose
``outcome_unknown`` attribute is true.

Batch reads (:meth:`CfsClient.get_invoices`) run on a bounded thread pool, fetch each distinct CFS
invoice once, and return failures as data (:class:`CfsResult`).

Tokens and secrets never appear in a log record, a ``repr`` or an exception message: messages carry the
method, the path and the HTTP status only.

Example::

    client = CfsClient()                      # settings from the environment / .env
    inv = client.get_invoice("12345", "67890", "11111", "REG00001234")
    inv["amount_due"]                         # Decimal('0.00')
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import quote

import requests
import urllib3
from requests.adapters import HTTPAdapter

from paynb.errors import CfsError, ConfigError
from paynb.secrets import Secret
from paynb.settings import Settings, get_settings

log = logging.getLogger(__name__)

Credential = Literal["PAYBC", "FAS"]

#: JSON keys whose values are money; numbers or strings ("10.02", "$9.5") become Decimal
MONEY_KEYS = frozenset(
    {
        "total",
        "amount_due",
        "amount_adjusted",
        "amount_adjusted_pending",
        "unit_price",
        "amount",
        "receipt_amount",
        "unapplied_amount",
        "amount_applied",
        "amount_to_apply",
        "adjustment_amount",
    }
)
CENT = Decimal("0.01")
DEFAULT_TOKEN_TTL_S = 300.0  # pay-api's CFS_TOKEN_CACHE_TIMEOUT when CFS sends no expires_in
RETRY_AFTER_CAP_S = 5.0  # a longer Retry-After ends the retries: waiting minutes helps nobody
MAX_BACKOFF_S = 5.0
CM_PAGE_SIZE = 100


# -- data --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CfsInvoiceRef:
    """One CFS invoice: the site it lives on (``cfs_accounts`` columns) and its number."""

    party: str
    account: str
    site: str
    invoice_number: str


@dataclass(frozen=True)
class CfsResult:
    """Outcome of one item of a batch. ``status`` is ``ok``, ``not_found`` (HTTP 404) or ``error``."""

    ok: bool
    status: str
    http_status: int | None
    error_class: str | None
    message: str | None
    data: dict | None

    @property
    def amount_due(self) -> Decimal | None:
        return self.data.get("amount_due") if self.data else None


def _cfs_error(message: str, status: int | None, *, outcome_unknown: bool = False, hint: str | None = None):
    err = CfsError(message, status=status, hint=hint)
    # True when a POST may or may not have been carried out by CFS (look before posting again)
    err.outcome_unknown = outcome_unknown  # type: ignore[attr-defined]
    return err


# -- money -------------------------------------------------------------------------------------------------
def to_decimal(value: Any) -> Any:
    """A CFS money value as Decimal (2 places). Strings may carry ``$`` or ``,``. Unparsable values
    (and None) are returned unchanged, so a surprising field never breaks a read."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Decimal):
        return value.quantize(CENT)
    if isinstance(value, int):
        return Decimal(value).quantize(CENT)
    if isinstance(value, float):  # only if a caller hands us one; JSON is parsed with parse_float=Decimal
        return Decimal(repr(value)).quantize(CENT)
    if isinstance(value, str):
        text = value.strip().replace("$", "").replace(",", "")
        if not text:
            return value
        try:
            return Decimal(text).quantize(CENT)
        except InvalidOperation:
            return value
    return value


def convert_money(obj: Any) -> Any:
    """Walk parsed JSON and turn every money field into Decimal."""
    if isinstance(obj, dict):
        return {k: (to_decimal(v) if k in MONEY_KEYS else convert_money(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [convert_money(v) for v in obj]
    return obj


def _never_sent(err: requests.exceptions.RequestException) -> bool:
    """True when the request cannot have reached CFS (connect refused or timed out)."""
    if isinstance(err, requests.exceptions.ConnectTimeout):
        return True
    if not isinstance(err, requests.exceptions.ConnectionError):
        return False
    inner = err.args[0] if err.args else None
    reason = getattr(inner, "reason", inner)
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # CFS accepts amounts as strings (sbc-pay sends str() of its Decimals too)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# -- client ------------------------------------------------------------------------------------------------
class CfsClient:
    """A thread-safe CFS client for one credential set (``PAYBC`` or ``FAS``).

    Explicit arguments win over ``settings``; settings are read from the environment only when an
    argument is missing.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        credential: Credential = "PAYBC",
        base_url: str | None = None,
        client_id: str | None = None,
        client_secret: Secret | None = None,
        pay_connector: Secret | None = None,
        timeout_s: float | None = None,
        max_retries: int = 4,
        backoff_s: float = 0.2,
        concurrency: int | None = None,
        session: requests.Session | None = None,
    ) -> None:
        if credential not in ("PAYBC", "FAS"):
            raise ConfigError(f"unknown CFS credential set {credential!r} (expected PAYBC or FAS)")
        if settings is None and None in (base_url, client_id, client_secret):
            settings = get_settings()
        s = settings or Settings()
        fas = credential == "FAS"
        self.credential: Credential = credential
        self.base_url = (base_url if base_url is not None else s.cfs_base_url).rstrip("/")
        self._client_id = (
            client_id if client_id is not None else (s.cfs_fas_client_id if fas else s.cfs_client_id)
        )
        secret = (
            client_secret
            if client_secret is not None
            else (s.cfs_fas_client_secret if fas else s.cfs_client_secret)
        )
        self._client_secret = secret if isinstance(secret, Secret) else Secret(str(secret))
        connector = pay_connector if pay_connector is not None else s.pay_connector_auth
        self._pay_connector = connector if isinstance(connector, Secret) else Secret(str(connector))
        prefix = "PAYNB_CFS_FAS_" if fas else "PAYNB_CFS_"
        if not self.base_url:
            raise ConfigError("PAYNB_CFS_BASE_URL is not set (the CFS API base URL)")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError("PAYNB_CFS_BASE_URL must start with http:// or https://")
        if not self._client_id:
            raise ConfigError(f"{prefix}CLIENT_ID is not set (needed for the {credential} CFS credentials)")
        if not self._client_secret:
            raise ConfigError(
                f"{prefix}CLIENT_SECRET is not set (needed for the {credential} CFS credentials)"
            )
        self.timeout_s = float(timeout_s if timeout_s is not None else s.cfs_timeout_s)
        self.max_retries = max(0, int(max_retries))
        self.backoff_s = max(0.0, float(backoff_s))
        self.concurrency = max(1, int(concurrency if concurrency is not None else s.cfs_concurrency))
        if session is None:
            session = requests.Session()
            # our own retry loop decides; urllib3 must not retry behind our back
            adapter = HTTPAdapter(
                pool_connections=4, pool_maxsize=max(10, self.concurrency * 2), max_retries=0
            )
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            # no ~/.netrc: its credentials would replace our Authorization header; proxies still apply
            session.trust_env = False
            session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
            self._owns_session = True
        else:
            self._owns_session = False
        self._session = session
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_expires = 0.0
        self._rng = random.Random()
        self._rng_lock = threading.Lock()
        self.token_requests = 0  # how many tokens this client fetched (for tests and diagnostics)

    def __repr__(self) -> str:
        return f"CfsClient(base_url={self.base_url!r}, credential={self.credential!r})"

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> CfsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- token ---------------------------------------------------------------------------------------------
    def check_credentials(self) -> None:
        """Fetch a token (or reuse the cached one): raises CfsError when CFS refuses the credentials."""
        self._current_token()

    def _current_token(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._token_expires:
                self._fetch_token_locked()
            assert self._token is not None
            return self._token

    def _refresh_token(self, stale: str) -> str:
        """Fetch a new token unless another thread already replaced ``stale``."""
        with self._lock:
            if self._token == stale or self._token is None:
                self._fetch_token_locked()
            assert self._token is not None
            return self._token

    def _fetch_token_locked(self) -> None:
        self._token = None
        resp = self._send(
            "POST",
            "/oauth/token",
            idempotent=True,  # asking twice for a token does no harm
            auth=(self._client_id, self._client_secret.reveal()),
            data={"grant_type": "client_credentials"},
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        if resp.status_code in (400, 401, 403):
            raise _cfs_error(
                f"POST /oauth/token -> {resp.status_code}: CFS refused the {self.credential} client credentials",
                resp.status_code,
                hint=f"check {'PAYNB_CFS_FAS_' if self.credential == 'FAS' else 'PAYNB_CFS_'}CLIENT_ID/"
                "CLIENT_SECRET and PAYNB_PAY_CONNECTOR_AUTH",
            )
        self._raise_for_status("POST", "/oauth/token", resp)
        try:
            body = resp.json()
            token = body["access_token"]
        except (ValueError, KeyError, TypeError):
            raise _cfs_error("POST /oauth/token -> 200 without an access_token", resp.status_code) from None
        if not isinstance(token, str) or not token:
            raise _cfs_error("POST /oauth/token -> 200 with an empty access_token", resp.status_code)
        try:
            ttl = float(body.get("expires_in") or DEFAULT_TOKEN_TTL_S)
        except (TypeError, ValueError):
            ttl = DEFAULT_TOKEN_TTL_S
        # renew a little early so a token does not expire between our check and CFS's
        margin = min(30.0, ttl * 0.1)
        self._token = token
        self._token_expires = time.monotonic() + max(0.0, ttl - margin)
        self.token_requests += 1
        log.debug("CFS %s token fetched, valid for %.0f s", self.credential, ttl)

    # -- transport -----------------------------------------------------------------------------------------
    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"Pay-Connector": self._pay_connector.reveal(), "Accept": "application/json"}
        if extra:
            headers.update(extra)
        return headers

    def _sleep_before_retry(self, attempt: int, retry_after: float | None) -> None:
        if retry_after is not None:
            delay = retry_after
        else:
            with self._rng_lock:
                jitter = 0.5 + self._rng.random()
            delay = min(MAX_BACKOFF_S, self.backoff_s * (2**attempt)) * jitter
        if delay > 0:
            time.sleep(delay)

    @staticmethod
    def _retry_after(resp: requests.Response) -> float | None:
        raw = resp.headers.get("Retry-After")
        if raw is None:
            return None
        try:
            return max(0.0, float(raw))
        except ValueError:
            return None  # an HTTP date: fall back to our own backoff

    def _send(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """One request with retries. Returns the last response (any status); raises CfsError when CFS could
        not be reached. ``kwargs`` go to ``requests`` (headers are merged with the Pay-Connector one)."""
        url = self.base_url + path
        headers = self._headers(kwargs.pop("headers", None))
        attempt = 0
        while True:
            failure: tuple[str, bool] | None = None
            try:
                resp = self._session.request(
                    method, url, params=params, headers=headers, timeout=self.timeout_s, **kwargs
                )
            except requests.exceptions.RequestException as err:
                # keep only the class: the exception holds the request, and with it the Authorization header
                failure = (type(err).__name__, _never_sent(err))
            if failure is not None:
                kind, never_sent = failure
                # connection refused / connect timeout: the request never reached CFS, so a retry is safe
                if (idempotent or never_sent) and attempt < self.max_retries:
                    log.debug("CFS %s %s: %s, retry %d/%d", method, path, kind, attempt + 1, self.max_retries)
                    self._sleep_before_retry(attempt, None)
                    attempt += 1
                    continue
                raise _cfs_error(
                    f"{method} {path}: no answer from CFS ({kind})",
                    None,
                    outcome_unknown=not idempotent and not never_sent,
                    hint="check PAYNB_CFS_BASE_URL and the network; `paynb doctor` tests the connection",
                )
            status = resp.status_code
            retryable = status == 429 or (status >= 500 and idempotent)
            if retryable and attempt < self.max_retries:
                retry_after = self._retry_after(resp) if status in (429, 503) else None
                if retry_after is not None and retry_after > RETRY_AFTER_CAP_S:
                    return resp  # CFS asks for a long pause: report it rather than block the run
                log.debug("CFS %s %s -> %d, retry %d/%d", method, path, status, attempt + 1, self.max_retries)
                resp.close()
                self._sleep_before_retry(attempt, retry_after)
                attempt += 1
                continue
            return resp

    def _raise_for_status(
        self, method: str, path: str, resp: requests.Response, *, posted: bool = False
    ) -> None:
        status = resp.status_code
        if status < 400:
            return
        hint = None
        if status == 404:
            hint = "CFS does not know this party/account/site or document number"
        elif status == 429:
            hint = "CFS is throttling; try again later or lower PAYNB_CFS_CONCURRENCY"
        elif status >= 500:
            hint = "CFS is failing; try again later"
        elif status in (401, 403):
            hint = "check the CFS credentials and PAYNB_PAY_CONNECTOR_AUTH"
        raise _cfs_error(
            f"{method} {path} -> {status}", status, outcome_unknown=posted and status >= 500, hint=hint
        )

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> dict:
        """An authenticated JSON call. One token refresh on 401, then the call is repeated once."""
        idempotent = method in ("GET", "HEAD", "PUT", "DELETE")
        data = None if body is None else json.dumps(body, default=_json_default)
        token = self._current_token()
        refreshed = False
        while True:
            headers = {"Authorization": f"Bearer {token}"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            resp = self._send(method, path, idempotent=idempotent, params=params, data=data, headers=headers)
            if resp.status_code == 401 and not refreshed:
                resp.close()
                log.debug("CFS %s %s -> 401, refreshing the token once", method, path)
                token = self._refresh_token(token)
                refreshed = True
                continue
            self._raise_for_status(method, path, resp, posted=not idempotent)
            try:
                parsed = json.loads(resp.content or b"{}", parse_float=Decimal)
            except ValueError:
                raise _cfs_error(
                    f"{method} {path} -> {resp.status_code} with a body that is not JSON",
                    resp.status_code,
                    outcome_unknown=not idempotent,
                ) from None
            if not isinstance(parsed, dict):
                raise _cfs_error(
                    f"{method} {path} -> {resp.status_code} with a JSON body that is not an object",
                    resp.status_code,
                )
            return convert_money(parsed)

    # -- paths ---------------------------------------------------------------------------------------------
    @staticmethod
    def _seg(value: str, name: str) -> str:
        text = str(value).strip()
        if not text:
            raise CfsError(f"{name} is empty; a CFS path needs party, account, site and a document number")
        return quote(text, safe="")

    def site_path(self, party: str, account: str, site: str) -> str:
        p, a, s = self._seg(party, "party"), self._seg(account, "account"), self._seg(site, "site")
        return f"/cfs/parties/{p}/accs/{a}/sites/{s}/"

    # -- reads ---------------------------------------------------------------------------------------------
    def get_site(self, party: str, account: str, site: str) -> dict:
        """``GET …/sites/{s}/``: the whole site record."""
        return self._call("GET", self.site_path(party, account, site))

    def get_invoice(self, party: str, account: str, site: str, invoice_number: str) -> dict:
        """``GET …/invs/{n}/``: ``total``, ``amount_due`` (Decimal), ``lines``, ``receipts``, ``credit_memos``.
        A 404 raises CfsError with ``status == 404``."""
        n = self._seg(invoice_number, "invoice_number")
        return self._call("GET", f"{self.site_path(party, account, site)}invs/{n}/")

    def get_receipt(self, party: str, account: str, site: str, receipt_number: str) -> dict:
        """``GET …/rcpts/{r}/``: ``receipt_amount``, ``unapplied_amount``, ``invoices[]``."""
        n = self._seg(receipt_number, "receipt_number")
        return self._call("GET", f"{self.site_path(party, account, site)}rcpts/{n}/")

    def get_credit_memo(self, party: str, account: str, site: str, credit_memo_number: str) -> dict:
        """``GET …/cms/{cm}/``: ``amount_due`` is negative while the memo has credit left."""
        n = self._seg(credit_memo_number, "credit_memo_number")
        return self._call("GET", f"{self.site_path(party, account, site)}cms/{n}/")

    def iter_credit_memos(self, party: str, account: str, site: str) -> Iterator[dict]:
        """Every credit memo of a site: ``GET …/cms/`` (the collection the invoice's ``credit_memos`` link
        names), page by page (ORDS ``items``/``hasMore``/``offset``/``limit``)."""
        path = f"{self.site_path(party, account, site)}cms/"
        offset = 0
        while True:
            page = self._call("GET", path, params={"offset": offset, "limit": CM_PAGE_SIZE})
            items = page.get("items") or []
            yield from items
            if not page.get("hasMore") or not items:
                return
            offset += len(items)

    def find_credit_memos(self, party: str, account: str, site: str, *, comment_contains: str) -> list[dict]:
        """Credit memos of a site whose ``comments`` contain ``comment_contains`` (an idempotency key).
        This is the duplicate check before posting a memo: it finds a memo even when the response of the
        POST that created it was lost."""
        needle = comment_contains.strip()
        if not needle:
            raise CfsError("comment_contains is empty; give the idempotency key to look for")
        return [
            cm
            for cm in self.iter_credit_memos(party, account, site)
            if needle in str(cm.get("comments") or "")
        ]

    def list_credit_memos_for_invoice(
        self, party: str, account: str, site: str, invoice_number: str
    ) -> list[dict]:
        """Credit memos that concern one CFS invoice: those the invoice lists in ``credit_memos[]`` and those
        of its site whose ``comments`` name the invoice number. Full memo records, one per number."""
        invoice = self.get_invoice(party, account, site, invoice_number)
        found: dict[str, dict] = {}
        listed = {
            str(cm.get("credit_memo_number"))
            for cm in invoice.get("credit_memos") or []
            if isinstance(cm, dict)
        }
        pattern = re.compile(rf"(?<![A-Za-z0-9]){re.escape(str(invoice_number))}(?![A-Za-z0-9])")
        for cm in self.iter_credit_memos(party, account, site):
            number = str(cm.get("credit_memo_number"))
            if number in listed or pattern.search(str(cm.get("comments") or "")):
                found[number] = cm
        for number in sorted(listed - set(found)):
            found[number] = self.get_credit_memo(party, account, site, number)
        return list(found.values())

    # -- writes --------------------------------------------------------------------------------------------
    def create_credit_memo(
        self,
        party: str,
        account: str,
        site: str,
        payload: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> dict:
        """``POST …/cms/`` and return CFS's answer (``credit_memo_number``, ``amount_due``…).

        With ``idempotency_key`` (which must appear in ``payload['comments']``), a POST whose outcome is
        unknown (5xx, dropped connection) is followed by a look-up of the site's memos for that key: the
        memo found is returned (with ``"_recovered": True``), and only if none exists is the POST repeated.
        Without a key such a failure raises CfsError with ``outcome_unknown = True``; check with
        :meth:`find_credit_memos` before posting again.
        """
        if idempotency_key is not None and idempotency_key not in str(payload.get("comments") or ""):
            raise CfsError(
                "the idempotency key must be part of payload['comments'] so a lost memo can be found"
            )
        path = f"{self.site_path(party, account, site)}cms/"
        attempts = 0
        while True:
            try:
                return self._call("POST", path, body=dict(payload))
            except CfsError as err:
                if not getattr(err, "outcome_unknown", False) or idempotency_key is None:
                    raise
                existing = self.find_credit_memos(party, account, site, comment_contains=idempotency_key)
                if existing:
                    log.info("CFS POST %s: outcome was unknown; the memo exists, not posting again", path)
                    return {**existing[0], "_recovered": True}
                if attempts >= self.max_retries:
                    raise
                attempts += 1
                self._sleep_before_retry(attempts, None)

    def create_receipt(self, party: str, account: str, site: str, payload: Mapping[str, Any]) -> dict:
        """``POST …/rcpts/`` (FAS credentials in sbc-pay): ``receipt_number``, ``receipt_date``,
        ``receipt_amount``, ``payment_method``, ``comments``. A receipt number is unique per site, so a POST
        whose outcome is unknown is settled by reading the receipt back before posting again."""
        number = str(payload.get("receipt_number") or "").strip()
        if not number:
            raise CfsError("payload['receipt_number'] is empty; a CFS receipt needs its number")
        path = f"{self.site_path(party, account, site)}rcpts/"
        try:
            return self._call("POST", path, body=dict(payload))
        except CfsError as err:
            if not getattr(err, "outcome_unknown", False):
                raise
            return {**self.get_receipt(party, account, site, number), "_recovered": True}

    def reverse_receipt(
        self, party: str, account: str, site: str, receipt_number: str, *, reason: str, comment: str
    ) -> dict:
        """``POST …/rcpts/{r}/reverse`` with ``reversal_reason`` and ``reversal_comment``, as sbc-pay's
        routing slip job calls it. Callers check ``get_receipt(...)["status"] == "REV"`` first and after an
        unknown outcome (docs/routing-slips.md)."""
        n = self._seg(receipt_number, "receipt_number")
        body = {"reversal_reason": reason, "reversal_comment": comment}
        return self._call("POST", f"{self.site_path(party, account, site)}rcpts/{n}/reverse", body=body)

    # -- batch ---------------------------------------------------------------------------------------------
    def _fetch_result(self, ref: CfsInvoiceRef) -> CfsResult:
        try:
            data = self.get_invoice(ref.party, ref.account, ref.site, ref.invoice_number)
        except CfsError as err:
            status = "not_found" if err.status == 404 else "error"
            return CfsResult(False, status, err.status, type(err).__name__, str(err).splitlines()[0], None)
        except Exception as err:  # a bug or an odd answer must not kill the other 600 items
            return CfsResult(False, "error", None, type(err).__name__, self._scrub(str(err))[:300], None)
        return CfsResult(True, "ok", 200, None, None, data)

    def _scrub(self, text: str) -> str:
        for value in (self._token, self._client_secret.reveal(), self._pay_connector.reveal()):
            if value and len(value) >= 4:
                text = text.replace(value, "***")
        return text

    def get_invoices(
        self,
        refs: Iterable[CfsInvoiceRef],
        *,
        progress: bool = False,
        desc: str = "CFS invoices",
    ) -> dict[CfsInvoiceRef, CfsResult]:
        """Fetch many invoices. Each distinct ref is fetched once (many pay-db invoices share one CFS
        invoice), at most ``concurrency`` at a time. Every ref gets a :class:`CfsResult`; a 404 is
        ``not_found`` and any other failure is ``error`` — never an exception."""
        unique = list(dict.fromkeys(refs))
        results: dict[CfsInvoiceRef, CfsResult] = {}
        if not unique:
            return results
        from tqdm.auto import tqdm

        workers = min(self.concurrency, len(unique))
        with (
            tqdm(total=len(unique), desc=desc, unit="inv", disable=not progress, leave=False) as bar,
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="paynb-cfs") as pool,
        ):
            futures = {pool.submit(self._fetch_result, ref): ref for ref in unique}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                bar.update(1)
        return results


def failure_summary(results: Mapping[CfsInvoiceRef, CfsResult]) -> dict[str, int]:
    """Counts by status (``ok``/``not_found``/``error``), for a one-line report."""
    counts: dict[str, int] = {"ok": 0, "not_found": 0, "error": 0}
    for r in results.values():
        counts[r.status] = counts.get(r.status, 0) + 1
    return counts
