"""The CFS sandbox server moved to :mod:`paynb.sandbox.cfs` (state, loader, render, server). This name keeps
``python -m paynb.sandbox.cfs_server`` and old imports working."""

from __future__ import annotations

import sys

from paynb.sandbox.cfs import (
    ROUTES,
    CfsState,
    Knobs,
    PayloadError,
    RunningCfsServer,
    encode_json,
    make_server,
    start_cfs_server,
)
from paynb.sandbox.cfs.__main__ import build_parser, main

__all__ = [
    "ROUTES",
    "CfsState",
    "Knobs",
    "PayloadError",
    "RunningCfsServer",
    "build_parser",
    "encode_json",
    "main",
    "make_server",
    "start_cfs_server",
]

if __name__ == "__main__":
    sys.exit(main())
