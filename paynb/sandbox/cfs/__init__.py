"""A stateful CAS/CFS server for the sandbox and the tests.

It speaks the contract of ``paybc-1.0.0.yaml`` (the sbc-pay PayBC mock) for the endpoints paynb uses —
same paths (trailing slashes included), JSON field names and status codes:

====================================================  =========================================
``POST /oauth/token``                                 Basic auth, ``grant_type=client_credentials``
``GET  /cfs/parties/{p}/accs/{a}/sites/{s}/``          site
``GET  …/sites/{s}/invs/{inv}/``                       invoice (404 when CAS never got it)
``GET  …/sites/{s}/rcpts/{rcpt}/``                     receipt (``status`` ``APP``, or ``REV`` once reversed)
``POST …/sites/{s}/rcpts/``                            create a receipt (routing slips; FAS credentials)
``POST …/sites/{s}/rcpts/{rcpt}/reverse``              reverse a receipt (sbc-pay's routing slip job)
``GET  …/sites/{s}/cms/{cm}/``                         credit memo (used by sbc-pay; not in the mock)
``GET  …/sites/{s}/cms/``                              the site's credit memos, ORDS ``items`` paging
``POST …/sites/{s}/cms/``                              create a credit memo (stateful)
====================================================  =========================================

Every API call needs a Bearer token this server issued (401 otherwise) and, when one is configured, the
``Pay-Connector`` header (403 otherwise). Errors have the spec's ``ErrorResponse`` body
(``{"code", "message"}``).

Knobs (constructor arguments, ``POST /_sandbox/knobs``, or ``RunningCfsServer.set_knobs``):
``latency_ms``, ``fault_rate`` (random 500s, seeded), ``burst_429`` (the next N calls get 429),
``retry_after_s``, ``token_ttl_s``, ``expire_tokens_after`` (revoke every token after N more calls),
``drop_rate`` (close the connection mid-response), ``fail_after_cms_create`` (create the next N memos, then
drop the connection before the answer is complete), ``fail_next`` (list of ``[path_regex, status]`` used
once each; status 0 drops the connection without acting), ``amounts_as_strings``, ``seed``.

Control endpoints (no auth; the server listens on loopback and holds synthetic data):
``GET /_sandbox/state`` (knobs, request counters, data), ``POST /_sandbox/knobs``,
``POST /_sandbox/reset`` (zero the counters), ``POST /_sandbox/reload`` (re-read the database).

Run it for ``paynb sandbox up``::

    python -m paynb.sandbox.cfs --db-url postgresql://postgres@127.0.0.1:5432/pay \\
        --port 8123 --client-id paynb-sandbox --client-secret-file .sandbox/secrets/cfs_client_secret \\
        [--fas-client-id ID --fas-client-secret-file F] [--pay-connector-file F] \\
        [--latency-ms 100] [--fault-rate 0.05] [--burst-429 N] [--token-ttl-s S] [--drop-rate F] [--seed N]

Secrets are read from files (or ``PAYNB_CFS_SANDBOX_CLIENT_SECRET``, ``…_FAS_CLIENT_SECRET``,
``…_PAY_CONNECTOR``), never from the command line.

The parts: :mod:`.state` (what CAS knows), :mod:`.loader` (fill it from pay-db), :mod:`.render` (the spec's
JSON), :mod:`.server` (HTTP, auth, knobs), ``__main__`` (the command line).
"""

from paynb.sandbox.cfs.render import encode_json
from paynb.sandbox.cfs.server import ROUTES, Knobs, RunningCfsServer, make_server, start_cfs_server
from paynb.sandbox.cfs.state import CfsState, PayloadError

__all__ = [
    "ROUTES",
    "CfsState",
    "Knobs",
    "PayloadError",
    "RunningCfsServer",
    "encode_json",
    "make_server",
    "start_cfs_server",
]
