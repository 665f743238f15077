"""Private local files: everything paynb writes on disk is 0600 in 0700 folders.

Ledgers, indexes, spooled runs and plan files can hold operators' names, amounts and invoice numbers; other
users on a shared jump host must not read them.

Example::

    from paynb.files import private_dir, write_private
    folder = private_dir(settings.data_dir / "spool")
    write_private(folder / "manifest.json", b"{}")
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and missing parents) as 0700; tighten it if it already exists."""
    folder = Path(path)
    folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(folder, DIR_MODE)
    return folder


def write_private(
    path: str | os.PathLike[str], data: bytes | str, *, exclusive: bool = False, own_folder: bool = True
) -> Path:
    """Write ``data`` to ``path`` as a 0600 file. ``exclusive`` refuses to replace an existing file.

    ``own_folder=False`` leaves the folder alone: for a file an operator names (``--out plan.json``), whose
    folder (the current one, say) is not paynb's to make 0700.
    """
    target = Path(path)
    if own_folder:
        private_dir(target.parent)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(target, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        view = memoryview(raw)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)
    return target


def tighten(path: str | os.PathLike[str]) -> Path:
    """Make an existing file 0600 (e.g. a SQLite file a library created with the umask's mode)."""
    target = Path(path)
    if target.exists():
        os.chmod(target, FILE_MODE)
    return target


def make_private_dirs(path: str | os.PathLike[str]) -> Path:
    """Create the missing folders of ``path`` as 0700, leaving folders that already exist alone (a store
    root or a folder the operator named may be shared on purpose)."""
    folder = Path(path)
    missing = []
    for p in [folder, *folder.parents]:
        if p.exists():
            break
        missing.append(p)
    for p in reversed(missing):
        try:
            p.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(p, DIR_MODE)  # mkdir's mode is masked by the umask
    return folder


def private_file(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` empty as 0600 when missing (so SQLite, whose -wal/-shm files copy the database's
    mode, never makes it with the umask's), or tighten it when present."""
    target = Path(path)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    return tighten(target)
