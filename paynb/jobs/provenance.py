"""Who ran what, where, with which code: the provenance facts of a run record, and its HMAC key.

The HMAC key proves later which value a parameter had without storing the value: it comes from
``PAYNB_HMAC_KEY`` or, failing that, from ``<data_dir>/hmac.key`` (32 random bytes, created once with
mode 0600). Records name the key by ``hmac_key_id``, a hash that reveals nothing about the key.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import hmac
import os
import platform
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from paynb.canonical import canonical_json
from paynb.errors import ConfigError
from paynb.files import make_private_dirs
from paynb.settings import Settings

HMAC_KEY_FILE = "hmac.key"


def actor() -> str:
    """``PAYNB_ACTOR`` (set it to the SSO identity in schedulers), else the OS user."""
    explicit = os.environ.get("PAYNB_ACTOR", "").strip()
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return f"uid:{os.getuid()}"


def host() -> str:
    return socket.gethostname()


def python_version() -> str:
    return platform.python_version()


@functools.lru_cache(maxsize=1)
def environment_sha256() -> str:
    """sha256 of the sorted ``name==version`` lines of every installed distribution (a ``pip freeze``
    fingerprint; two runs with equal hashes ran on the same package set)."""
    lines = set()
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            lines.add(f"{name.lower().replace('_', '-')}=={dist.version}")
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def git_state(path: str | os.PathLike) -> dict[str, Any]:
    """``{"commit": sha|None, "dirty": bool|None}`` of the repository holding ``path``. Untracked files
    do not make the tree dirty; changed tracked files do."""
    folder = Path(path).resolve()
    folder = folder if folder.is_dir() else folder.parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}


def hmac_key(settings: Settings) -> bytes:
    if settings.hmac_key:
        return settings.hmac_key.reveal().encode("utf-8")
    path = Path(settings.data_dir).expanduser() / HMAC_KEY_FILE
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    make_private_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{HMAC_KEY_FILE}.")  # mode 0600
    with os.fdopen(fd, "w") as fh:
        fh.write(os.urandom(32).hex())
    try:
        os.link(tmp, path)  # never replaces: if another process won the race, its key stands
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    text = path.read_text("utf-8").strip()
    if len(text) < 32:
        raise ConfigError(f"{path} does not hold an HMAC key; delete it to have paynb make a new one")
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"{path} is readable by other users; run `chmod 600 {path}`")
    return text.encode("utf-8")


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"paynb-hmac-key-id\0" + key).hexdigest()[:16]


def hmac_values(key: bytes, values: Mapping[str, Any]) -> dict[str, str]:
    """HMAC-SHA256 of each value's canonical JSON (so ``Decimal('1.0')`` and ``'1.0'`` differ by type
    only where JSON does)."""
    return {
        name: hmac.new(key, canonical_json(v).encode(), hashlib.sha256).hexdigest()
        for name, v in values.items()
    }
