"""The HTTP side: routes, auth (OAuth client credentials, Bearer tokens, Pay-Connector), fault knobs,
request counters, control endpoints, and a server on a background thread."""

from __future__ import annotations

import base64
import hmac
import json
import random
import re
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from paynb.errors import SandboxError
from paynb.sandbox.cfs.render import _Render, encode_json
from paynb.sandbox.cfs.state import DEFAULT_PAGE, MAX_PAGE, CfsState, PayloadError
from paynb.secrets import Secret


# -- knobs and counters -------------------------------------------------------------------------------------
@dataclass
class Knobs:
    """Fault injection. Every field can be changed while the server runs."""

    latency_ms: int = 0
    fault_rate: float = 0.0
    burst_429: int = 0
    retry_after_s: float = 0.0
    token_ttl_s: float = 3600.0
    expire_tokens_after: int | None = None
    drop_rate: float = 0.0
    fail_after_cms_create: int = 0
    fail_next: list[list[Any]] = field(default_factory=list)
    amounts_as_strings: bool = False
    seed: int = 0

    def update(self, values: Mapping[str, Any]) -> None:
        names = {f.name for f in fields(self)}
        unknown = set(values) - names
        if unknown:
            raise PayloadError(f"unknown knob(s): {', '.join(sorted(unknown))}")
        for name, value in values.items():
            if name == "fail_next":
                value = [[str(p), int(s)] for p, s in (value or [])]
                for pattern, _ in value:
                    re.compile(pattern)
            elif name == "fail_after_cms_create" and isinstance(value, bool):
                value = int(value)
            elif name in ("fault_rate", "drop_rate") and not 0 <= float(value) <= 1:
                raise PayloadError(f"{name} must be between 0 and 1")
            setattr(self, name, value)


ROUTES: list[tuple[str, str, re.Pattern[str]]] = []
_SITE = r"/cfs/parties/([^/]+)/accs/([^/]+)/sites/([^/]+)/"
for _method, _name, _pattern in (
    ("POST", "token", r"/oauth/token"),
    ("GET", "get_site", _SITE),
    ("GET", "get_invoice", _SITE + r"invs/([^/]+)/"),
    ("GET", "get_receipt", _SITE + r"rcpts/([^/]+)/"),
    ("POST", "create_receipt", _SITE + r"rcpts/"),
    ("POST", "reverse_receipt", _SITE + r"rcpts/([^/]+)/reverse"),
    ("GET", "list_credit_memos", _SITE + r"cms/"),
    ("GET", "get_credit_memo", _SITE + r"cms/([^/]+)/"),
    ("POST", "create_credit_memo", _SITE + r"cms/"),
):
    ROUTES.append((_method, _name, re.compile(_pattern + r"\Z")))


class _CfsHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a batch opens many connections at once; a short backlog stalls them for 1 s

    def __init__(
        self,
        addr: tuple[str, int],
        state: CfsState,
        credentials: Mapping[str, str],
        pay_connector: str,
        knobs: Knobs,
        log_requests: bool,
    ) -> None:
        super().__init__(addr, _Handler)
        self.state = state
        self.credentials = dict(credentials)
        self.pay_connector = pay_connector
        self.knobs = knobs
        self.log_requests = log_requests
        self.lock = threading.Lock()
        self.rng = random.Random(knobs.seed)
        self.tokens: dict[str, tuple[str, float]] = {}
        self.reset_stats()

    @property
    def base(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def reset_stats(self) -> None:
        with self.lock:
            self.routes: Counter[str] = Counter()
            self.paths: Counter[str] = Counter()
            self.statuses: Counter[str] = Counter()
            self.tokens_issued = 0
            self.inflight = 0
            self.max_inflight = 0
            self.rejected_auth = 0
            self.rejected_connector = 0
            self.dropped = 0

    def stats(self) -> dict:
        with self.lock:
            return {
                "requests": sum(self.routes.values()),
                "routes": dict(self.routes),
                "paths": dict(self.paths),
                "statuses": dict(self.statuses),
                "tokens_issued": self.tokens_issued,
                "max_inflight": self.max_inflight,
                "rejected_auth": self.rejected_auth,
                "rejected_pay_connector": self.rejected_connector,
                "dropped": self.dropped,
            }

    def set_knobs(self, values: Mapping[str, Any]) -> None:
        with self.lock:
            self.knobs.update(values)
            if "seed" in values:
                self.rng = random.Random(self.knobs.seed)

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def handle_error(self, request, client_address) -> None:
        # a client that hangs up (or a drop we injected) is not worth a traceback on stderr
        if self.log_requests:
            super().handle_error(request, client_address)


_NO_BODY = object()  # the request body was not JSON (already answered with 400)


class _Drop(Exception):
    """Close the connection instead of answering."""


class _Handler(BaseHTTPRequestHandler):
    server: _CfsHTTPServer
    protocol_version = "HTTP/1.0"
    server_version = "paynb-cfs-sandbox"
    sys_version = ""
    _inflight = False  # this call is counted in server.inflight

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log_requests:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- plumbing ------------------------------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(
        self, status: int, obj: Any, headers: Mapping[str, str] | None = None, *, drop: bool = False
    ) -> None:
        payload = encode_json(obj, amounts_as_strings=self.server.knobs.amounts_as_strings)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        with self.server.lock:
            self.server.statuses[str(status)] += 1
        # the call ends for the client when the body arrives, so it leaves the in-flight count first
        self._leave_inflight()
        if drop:
            self.wfile.write(payload[: len(payload) // 2])
            self._hang_up()
            return
        self.wfile.write(payload)

    def _hang_up(self) -> None:
        with self.server.lock:
            self.server.dropped += 1
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _error(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, {"code": code, "message": message}, headers)

    # -- request handling ----------------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        body = self._body()
        if path.startswith("/_sandbox/"):
            self._control(method, path, body)
            return
        route, groups = self._route(method, path)
        srv = self.server
        with srv.lock:
            srv.routes[route or "unknown"] += 1
            srv.paths[f"{method} {path}"] += 1
            srv.inflight += 1
            srv.max_inflight = max(srv.max_inflight, srv.inflight)
        self._inflight = True
        try:
            self._serve(method, path, parse_qs(parts.query), body, route, groups)
        except _Drop:
            self._hang_up()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            self._leave_inflight()

    def _leave_inflight(self) -> None:
        if self._inflight:
            self._inflight = False
            with self.server.lock:
                self.server.inflight -= 1

    @staticmethod
    def _route(method: str, path: str) -> tuple[str | None, tuple[str, ...]]:
        for m, name, pattern in ROUTES:
            match = pattern.match(path)
            if match and m == method:
                return name, tuple(unquote(g) for g in match.groups())
        return None, ()

    def _faults(self, path: str) -> tuple[int | None, bool]:
        """(status to answer instead, drop the connection mid-response?)"""
        srv = self.server
        with srv.lock:
            k = srv.knobs
            for i, (pattern, status) in enumerate(k.fail_next):
                if re.search(pattern, path):
                    del k.fail_next[i]
                    if status == 0:
                        raise _Drop()
                    return status, False
            if k.burst_429 > 0:
                k.burst_429 -= 1
                return 429, False
            if k.fault_rate and srv.rng.random() < k.fault_rate:
                return 500, False
            return None, bool(k.drop_rate and srv.rng.random() < k.drop_rate)

    def _serve(self, method, path, query, body, route, groups) -> None:
        srv = self.server
        latency = srv.knobs.latency_ms
        if latency > 0:
            time.sleep(latency / 1000)
        status, drop = self._faults(path)
        if status is not None:
            headers = {"Retry-After": f"{srv.knobs.retry_after_s:g}"} if status in (429, 503) else None
            code = {429: "TOO_MANY_REQUESTS", 401: "UNAUTHORIZED"}.get(status, "SANDBOX_FAULT")
            self._error(status, code, "injected by the sandbox", headers)
            return
        if not self._connector_ok():
            with srv.lock:
                srv.rejected_connector += 1
            self._error(403, "FORBIDDEN", "missing or wrong Pay-Connector header")
            return
        if route is None:
            allowed = any(p.match(path) for _, _, p in ROUTES)
            if allowed:
                self._error(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed here")
            else:
                self._error(404, "NOT_FOUND", "no such resource")
            return
        if route == "token":
            self._token(body, drop)
            return
        if not self._bearer_ok():
            with srv.lock:
                srv.rejected_auth += 1
            self._error(401, "UNAUTHORIZED", "missing, unknown or expired token")
            return
        getattr(self, f"_api_{route}")(groups, query, body, drop)

    def _connector_ok(self) -> bool:
        expected = self.server.pay_connector
        if not expected:
            return True
        given = self.headers.get("Pay-Connector") or ""
        return hmac.compare_digest(given.encode(), expected.encode())

    def _bearer_ok(self) -> bool:
        srv = self.server
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            return False
        token = auth[len("Bearer ") :].strip()
        with srv.lock:
            k = srv.knobs
            if k.expire_tokens_after is not None:
                if k.expire_tokens_after <= 0:
                    srv.tokens.clear()
                    k.expire_tokens_after = None
                else:
                    k.expire_tokens_after -= 1
            entry = srv.tokens.get(token)
            if entry is None:
                return False
            if time.monotonic() >= entry[1]:
                del srv.tokens[token]
                return False
            return True

    def _token(self, body: bytes, drop: bool) -> None:
        srv = self.server
        auth = self.headers.get("Authorization") or ""
        client_id = secret = None
        if auth.startswith("Basic "):
            try:
                client_id, _, secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                client_id = None
        expected = srv.credentials.get(client_id or "")
        if expected is None or not hmac.compare_digest((secret or "").encode(), expected.encode()):
            with srv.lock:
                srv.rejected_auth += 1
            self._error(401, "UNAUTHORIZED", "unknown client or wrong secret")
            return
        form = parse_qs(body.decode(errors="replace"))
        if form.get("grant_type") != ["client_credentials"]:
            self._error(400, "INVALID_REQUEST", "grant_type must be client_credentials")
            return
        token = secrets.token_urlsafe(32)
        with srv.lock:
            ttl = float(srv.knobs.token_ttl_s)
            srv.tokens[token] = (client_id or "", time.monotonic() + ttl)
            srv.tokens_issued += 1
        answer = {"access_token": token, "token_type": "bearer", "expires_in": max(1, round(ttl))}
        self._send(200, answer, drop=drop)

    # -- API -----------------------------------------------------------------------------------------------
    def _render(self) -> _Render:
        return _Render(self.server.base, self.server.state)

    def _send_document(self, groups, collection: str, render: str, what: str, drop) -> None:
        """GET of one site/invoice/receipt/credit memo: 404 unless ``state.<collection>`` has it."""
        state = self.server.state
        with state.lock:
            if groups not in getattr(state, collection):
                self._error(404, "NOT_FOUND", f"no such {what}")
                return
            doc = getattr(self._render(), render)(groups)
        self._send(200, doc, drop=drop)

    def _api_get_site(self, groups, query, body, drop) -> None:
        self._send_document(groups, "sites", "site", "site", drop)

    def _api_get_invoice(self, groups, query, body, drop) -> None:
        self._send_document(groups, "invoices", "invoice", "invoice", drop)

    def _api_get_receipt(self, groups, query, body, drop) -> None:
        self._send_document(groups, "receipts", "receipt", "receipt", drop)

    def _api_get_credit_memo(self, groups, query, body, drop) -> None:
        self._send_document(groups, "credit_memos", "credit_memo", "credit memo", drop)

    def _api_list_credit_memos(self, groups, query, body, drop) -> None:
        state = self.server.state
        try:
            offset = max(0, int(query.get("offset", ["0"])[0]))
            limit = min(MAX_PAGE, max(1, int(query.get("limit", [str(DEFAULT_PAGE)])[0])))
        except ValueError:
            self._error(400, "INVALID_REQUEST", "offset and limit must be whole numbers")
            return
        with state.lock:
            if groups not in state.sites:
                self._error(404, "NOT_FOUND", "no such site")
                return
            keys = sorted((k for k in state.credit_memos if k[:3] == groups), key=lambda k: (len(k[3]), k[3]))
            page = keys[offset : offset + limit]
            render = self._render()
            items = [render.credit_memo(k) for k in page]
        url = f"{render.site_url(groups)}cms/"
        links = [{"rel": "self", "href": f"{url}?offset={offset}&limit={limit}"}]
        has_more = offset + limit < len(keys)
        if has_more:
            links.append({"rel": "next", "href": f"{url}?offset={offset + limit}&limit={limit}"})
        page_doc = {"items": items, "hasMore": has_more, "limit": limit, "offset": offset}
        self._send(200, {**page_doc, "count": len(items), "links": links}, drop=drop)

    def _api_create_credit_memo(self, groups, query, body, drop) -> None:
        srv = self.server
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            self._error(400, "INVALID_REQUEST", "the body is not JSON")
            return
        try:
            rec = srv.state.create_credit_memo(*groups, payload)
        except PayloadError as err:
            self._error(400, "INVALID_REQUEST", str(err))
            return
        except KeyError:
            self._error(404, "NOT_FOUND", "no such site")
            return
        with srv.lock:
            if srv.knobs.fail_after_cms_create > 0:
                srv.knobs.fail_after_cms_create -= 1
                drop = True
        with srv.state.lock:
            doc = self._render().credit_memo((*groups, rec["credit_memo_number"]))
        self._send(200, doc, drop=drop)

    def _json_body(self, body: bytes) -> Any:
        try:
            return json.loads(body or b"null")
        except ValueError:
            self._error(400, "INVALID_REQUEST", "the body is not JSON")
            return _NO_BODY

    def _api_create_receipt(self, groups, query, body, drop) -> None:
        payload = self._json_body(body)
        if payload is _NO_BODY:
            return
        state = self.server.state
        try:
            rec = state.create_receipt(*groups, payload)
        except PayloadError as err:
            self._error(400, "INVALID_REQUEST", str(err))
            return
        except KeyError:
            self._error(404, "NOT_FOUND", "no such site")
            return
        with state.lock:
            doc = self._render().receipt((*groups, rec["receipt_number"]))
        self._send(200, doc, drop=drop)

    def _api_reverse_receipt(self, groups, query, body, drop) -> None:
        payload = self._json_body(body)
        if payload is _NO_BODY:
            return
        state = self.server.state
        try:
            state.reverse_receipt(*groups, payload)
        except PayloadError as err:
            self._error(400, "INVALID_REQUEST", str(err))
            return
        except KeyError:
            self._error(404, "NOT_FOUND", "no such receipt")
            return
        with state.lock:
            doc = self._render().receipt(groups)
        self._send(200, doc, drop=drop)

    # -- control -------------------------------------------------------------------------------------------
    def _control(self, method: str, path: str, body: bytes) -> None:
        srv = self.server
        try:
            values = json.loads(body) if body else {}
        except ValueError:
            self._error(400, "INVALID_REQUEST", "the body is not JSON")
            return
        if method == "GET" and path == "/_sandbox/state":
            data, summary = srv.state.to_dict(), srv.state.summary()
            self._send(
                200, {"knobs": asdict(srv.knobs), "stats": srv.stats(), "data": data, "summary": summary}
            )
        elif method == "POST" and path == "/_sandbox/knobs":
            try:
                srv.set_knobs(values)
            except (PayloadError, ValueError, TypeError, re.error) as err:
                self._error(400, "INVALID_REQUEST", str(err))
                return
            self._send(200, asdict(srv.knobs))
        elif method == "POST" and path == "/_sandbox/reset":
            srv.reset_stats()
            self._send(200, srv.stats())
        elif method == "POST" and path == "/_sandbox/expire-tokens":
            srv.expire_tokens()
            self._send(200, {"tokens": 0})
        elif method == "POST" and path == "/_sandbox/reload":
            if not srv.state.db_url:
                self._error(400, "INVALID_REQUEST", "the server was not started from a database")
                return
            fresh = CfsState.from_database(srv.state.db_url)
            with srv.state.lock:
                srv.state.__dict__.update({k: v for k, v in fresh.__dict__.items() if k != "lock"})
            self._send(200, srv.state.summary())
        else:
            self._error(404, "NOT_FOUND", "unknown control endpoint")


# -- running it ----------------------------------------------------------------------------------------------
class RunningCfsServer:
    """A CFS sandbox server on a background thread."""

    def __init__(self, httpd: _CfsHTTPServer, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread
        self.state = httpd.state

    @property
    def url(self) -> str:
        return self._httpd.base

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def knobs(self) -> Knobs:
        return self._httpd.knobs

    def set_knobs(self, **values: Any) -> None:
        self._httpd.set_knobs(values)

    def stats(self) -> dict:
        return self._httpd.stats()

    def reset_stats(self) -> None:
        self._httpd.reset_stats()

    def expire_tokens(self) -> None:
        self._httpd.expire_tokens()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> RunningCfsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningCfsServer(url={self.url!r})"


def _reveal(value: str | Secret | None) -> str:
    if value is None:
        return ""
    return value.reveal() if isinstance(value, Secret) else str(value)


def make_server(
    state: CfsState | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    credentials: Mapping[str, str | Secret] | None = None,
    pay_connector: str | Secret | None = None,
    log_requests: bool = False,
    **knobs: Any,
) -> _CfsHTTPServer:
    creds = {str(k): _reveal(v) for k, v in (credentials or {}).items()}
    if not creds or not all(creds.values()):
        raise SandboxError("the CFS sandbox server needs at least one client id with a non-empty secret")
    k = Knobs()
    try:
        k.update(knobs)
    except PayloadError as err:
        raise SandboxError(str(err)) from None
    try:
        return _CfsHTTPServer(
            (host, port), state or CfsState(), creds, _reveal(pay_connector), k, log_requests
        )
    except OSError as err:
        raise SandboxError(f"the CFS sandbox server cannot listen on {host}:{port}: {err.strerror}") from None


def start_cfs_server(
    state: CfsState | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    credentials: Mapping[str, str | Secret] | None = None,
    pay_connector: str | Secret | None = None,
    log_requests: bool = False,
    **knobs: Any,
) -> RunningCfsServer:
    """Start a server on a thread (port 0 picks a free one). ``credentials`` maps client id -> secret
    (give both the PAYBC and the FAS pair if both are used). ``knobs`` are :class:`Knobs` fields."""
    auth = {"credentials": credentials, "pay_connector": pay_connector}
    httpd = make_server(state, host, port, **auth, log_requests=log_requests, **knobs)
    name = f"paynb-cfs-{httpd.server_address[1]}"
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name=name
    )
    thread.start()
    return RunningCfsServer(httpd, thread)
