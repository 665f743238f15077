"""What a credential looks like: in a parameter's name, in a value, or somewhere in notebook text.

Findings name the kind of pattern, never the text that matched, so reporting one cannot leak it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator

# parts of a parameter name (split on _ and camelCase) that mean "this is a credential"
_NAME_PARTS = frozenset(
    {
        "password",
        "passwd",
        "pass",
        "pwd",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "tokens",
        "key",
        "apikey",
        "credential",
        "credentials",
        "creds",
        "auth",
        "authorization",
        "dsn",
        "cookie",
        "jwt",
        "bearer",
        "privatekey",
        "sas",
        "otp",
        "pin",
    }
)
# substrings that mean the same wherever they appear (``dbpassword``, ``clientsecret``)
_NAME_SUBSTRINGS = ("password", "passwd", "secret", "token", "credential", "apikey", "privatekey")
# well-known names that contain a credential word but are not credentials
SAFE_NAMES = frozenset({"idempotency_key"})

_MASKS = frozenset({"*", "**", "***", "****", "xxx", "xxxx", "redacted", "<redacted>", "...", "password"})
_URL_USERINFO = re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s/@:'\"]*:([^\s/@'\"]+)@", re.IGNORECASE)
_VALUE_PATTERNS: dict[str, re.Pattern[str]] = {
    "bearer or basic auth token": re.compile(
        r"\b(?:bearer|basic)\s+[A-Za-z0-9\-._~+/]{12,}=*", re.IGNORECASE
    ),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{16}\b"),
    "AWS secret access key": re.compile(
        r"aws_?secret_?access_?key['\"]?\s*[:=]\s*['\"]?[A-Za-z0-9/+=]{40}", re.IGNORECASE
    ),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "Google service-account key": re.compile(r"\"private_key_id\"\s*:\s*\"[0-9a-f]{16,}\""),
    "password assignment": re.compile(
        r"\b\w*(?:password|passwd|pwd|secret)\w*['\"]?\s*[:=]\s*['\"]([^'\"\s]{4,})['\"]", re.IGNORECASE
    ),
}


def split_name(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return [p for p in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if p]


def name_looks_secret(name: str) -> bool:
    """True for ``db_password``, ``cfsClientSecret``, ``api_key``, ``auth_header``, ``dsn``…"""
    if name.lower() in SAFE_NAMES:
        return False
    parts = split_name(name)
    joined = "".join(parts)
    return any(p in _NAME_PARTS for p in parts) or any(s in joined for s in _NAME_SUBSTRINGS)


def shannon_bits(text: str) -> float:
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def looks_random(text: str) -> bool:
    """A long token mixing upper, lower and digits with high entropy: an API key or generated secret.
    Hex digests (plan sha256, run ids) have two character classes and are let through on purpose."""
    if len(text) < 24 or any(c.isspace() for c in text):
        return False
    # file names and keys (ar/BCR_PAYMENT_APPL_20261027.csv) are short words joined by separators;
    # a generated secret has a long unbroken run of letters and digits
    if max((len(run) for run in re.findall(r"[A-Za-z0-9]+", text)), default=0) < 16:
        return False
    classes = sum(
        (any(c.islower() for c in text), any(c.isupper() for c in text), any(c.isdigit() for c in text))
    )
    return classes == 3 and shannon_bits(text) >= 4.2


def iter_findings(text: str, secret_values: Iterable[str] = ()) -> Iterator[str]:
    """Kinds of credential found in ``text`` (each at most once)."""
    for value in secret_values:
        if value and value in text:
            yield "a configured secret value"
            break
    for m in _URL_USERINFO.finditer(text):
        if m.group(1).lower() not in _MASKS:
            yield "a password inside a URL"
            break
    for kind, pattern in _VALUE_PATTERNS.items():
        for m in pattern.finditer(text):
            if kind == "password assignment" and m.group(1).lower() in _MASKS:
                continue
            yield kind
            break


def value_looks_secret(value: str, secret_values: Iterable[str] = ()) -> str | None:
    """Why a parameter value looks like a credential, or None. Stricter than :func:`iter_findings`:
    an exact configured secret or a long random-looking token is enough."""
    secret_values = list(secret_values)
    if value in secret_values:
        return "a configured secret value"
    found = next(iter_findings(value, secret_values), None)
    if found:
        return found
    return "a long random-looking token" if looks_random(value) else None
